"""Has this configuration been tried? (``POST /projects/{team}/{project}/tried/``).

``assay.init(config=...)`` asks in a daemon thread after the run is created, with a short
timeout, and prints one line; the training loop never waits for it. With
``if_tried="skip"`` it asks first, synchronously but bounded by the same timeout, and
starts no run when an identical one exists. ``assay tried`` asks from the shell.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from assay import env
from assay.client import Client

DEFAULT_TIMEOUT = 3.0  # seconds; ASSAY_TRIED_TIMEOUT
IF_TRIED = ("warn", "skip", "ignore")


def tried_timeout() -> float:
    return env.number(env.TRIED_TIMEOUT, DEFAULT_TIMEOUT)


def ask(
    url: str,
    token: str | None,
    project: str,
    config: dict[str, Any],
    *,
    exclude_run: str | None = None,
    timeout: float | None = None,
) -> dict[str, Any]:
    """The server's answer; raises an ``AssayError`` (unreachable, slow, refused)."""
    with Client(url, token, timeout=timeout if timeout is not None else tried_timeout()) as client:
        return client.tried(project, config, exclude_run=exclude_run)


def ask_bounded(
    url: str, token: str | None, project: str, config: dict[str, Any], *, timeout: float | None = None
) -> dict[str, Any] | None:
    """:func:`ask` under a hard wall-clock bound (a thread joined with a timeout, since a
    server trickling bytes could hold one httpx read for longer); None when the server did
    not answer in time or could not answer."""
    bound = timeout if timeout is not None else tried_timeout()
    result: list[dict[str, Any]] = []

    def work() -> None:
        # "Could not tell" is an answer too: any failure leaves ``result`` empty.
        with contextlib.suppress(Exception):
            result.append(ask(url, token, project, config, timeout=bound))

    thread = threading.Thread(target=work, name="assay-tried-check", daemon=True)
    thread.start()
    thread.join(bound + 0.5)
    return result[0] if result else None


def _ago(iso: str | None, now: datetime | None = None) -> str:
    if not iso:
        return "?"
    try:
        when = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    seconds = max(0, int(((now or datetime.now(timezone.utc)) - when).total_seconds()))
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    return "just now"


def _metric(run: dict[str, Any]) -> str:
    metric = run.get("metric")
    if isinstance(metric, dict) and metric.get("value") is not None:
        return f", {metric.get('key')}={metric.get('value')}"
    return ""


def describe(answer: dict[str, Any]) -> str | None:
    """One line for the answer, or None when nothing like it ran."""
    identical = answer.get("identical") or []
    if identical:
        first = identical[0]
        more = int(answer.get("identical_count") or len(identical)) - 1
        others = f" (and {more} more)" if more > 0 else ""
        return (
            f"this configuration already ran: {first.get('name')} by {first.get('author') or '?'}, "
            f"{_ago(first.get('start_time'))}, {first.get('status')}{_metric(first)}{others}: {first.get('url')}"
        )
    near = answer.get("near") or []
    if near:
        parts = []
        for run in near[:3]:
            changes = ", ".join(
                f"{d.get('key')}={d.get('value')}" for d in run.get("differences") or [] if isinstance(d, dict)
            )
            parts.append(f"{run.get('name')} ({changes}{_metric(run)})")
        return "not tried yet; nearest runs: " + "; ".join(parts)
    return None


def warn_in_background(
    url: str,
    token: str | None,
    project: str,
    config: dict[str, Any],
    *,
    exclude_run: str | None,
    say: Callable[[str], None],
) -> threading.Thread:
    """Ask in a daemon thread and print the answer's line; failures are silent (a
    warning about duplicate work must never disturb the run)."""

    def work() -> None:
        try:
            line = describe(ask(url, token, project, config, exclude_run=exclude_run))
        except Exception:  # noqa: BLE001 - best effort: the run goes on whatever happens here
            return
        if line:
            say(line)

    thread = threading.Thread(target=work, name="assay-tried", daemon=True)
    thread.start()
    return thread
