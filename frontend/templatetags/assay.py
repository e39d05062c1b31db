"""Template helpers for the dashboard: relative times, durations, numbers, status badges.

Everything here returns escaped text or ``format_html`` output: user-written strings are
never marked safe.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from django import template
from django.contrib.humanize.templatetags.humanize import naturaltime
from django.utils.html import format_html
from django.utils.safestring import SafeString

register = template.Library()

STATUS_CLASSES = {
    "running": "text-bg-primary",
    "finished": "text-bg-success",
    "failed": "text-bg-danger",
    "killed": "text-bg-secondary",
}


@register.simple_tag
def reltime(value: datetime | None) -> SafeString | str:
    """``3 hours ago``, with the exact UTC time on hover and in a machine-readable attribute."""
    if value is None:
        return "—"
    exact = value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return format_html('<time datetime="{}" title="{}">{}</time>', value.isoformat(), exact, naturaltime(value))


@register.filter
def duration(seconds: float | timedelta | None) -> str:
    """``2h 05m``, ``4m 12s``, ``12.3s``; an em dash when unknown."""
    if seconds is None:
        return "—"
    if isinstance(seconds, timedelta):
        seconds = seconds.total_seconds()
    if seconds < 0:
        return "—"
    if seconds < 10:
        return f"{seconds:.1f}s"
    total = round(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


@register.filter
def metric(value: float | None) -> str:
    """A metric value in at most five significant digits; NaN and ±Inf spelled out."""
    if value is None:
        return "—"
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == int(value) and abs(value) < 1e6:
        return str(int(value))
    magnitude = abs(value)
    if magnitude < 1e-3 or magnitude >= 1e6:
        return f"{value:.3e}"
    return f"{value:.5g}"


@register.filter
def metric_exact(value: float | None) -> str:
    """The full ``repr`` of a value, for the hover title next to :func:`metric`."""
    if value is None:
        return ""
    return repr(value)


@register.filter
def num(value: object) -> SafeString | object:
    """A float shortened as :func:`metric` does (``0.9916434540389972`` → ``0.99164``) with
    its full value on hover (a ``title``); anything else (ints, strings, None) unchanged.
    One filter for every page that shows values of metrics and params."""
    if isinstance(value, bool) or not isinstance(value, float):
        return value
    return format_html('<span class="num-value" title="{}">{}</span>', metric_exact(value), metric(value))


@register.simple_tag
def status_badge(status: str) -> SafeString:
    """A badge with the status as text (colour is never the only signal)."""
    css = STATUS_CLASSES.get(status, "text-bg-light")
    return format_html(
        '<span class="badge status-badge status-{} {}" data-status="{}">{}</span>', status, css, status, status
    )
