"""A report as HTML: markdown through the one renderer (core.markdown), live blocks drawn
here on the server from their resolved data (reports.resolve), charts as inline SVG. The
same HTML serves the page and the self-contained export, so an exported report looks as it
did on screen and needs no script.

# SECURITY: every value a block shows (run names, metric keys, labels, queries, error
messages) is user-written: it goes through format_html/escape, never into markup as is.
Numbers are formatted by us. Links are site paths we build.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from accounts.models import Project
from core import markdown
from reports import resolve
from reports.blocks import Block, split

# Ten distinguishable line colours (Tableau 10); the legend names each run, so colour is
# never the only way to tell the lines apart.
PALETTE = (
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
)  # fmt: skip
DASHES = ("", "6 3", "2 2")  # with more runs than colours, the dash pattern tells them apart
WIDTH, HEIGHT = 640, 220
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 56, 12, 10, 26


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.4g}"
    return str(value)


def _style(index: int) -> tuple[str, str]:
    return PALETTE[index % len(PALETTE)], DASHES[(index // len(PALETTE)) % len(DASHES)]


def _chart_panel(key: str, curves: list[dict[str, Any]], runs: list[dict[str, Any]]) -> SafeString:
    points = [
        (s, v) for curve in curves for s, v in zip(curve["steps"], curve["values"], strict=False) if v is not None
    ]
    if not points:
        return format_html(
            '<figure class="report-chart-panel"><figcaption>{}</figcaption><p class="report-empty">'
            "No points logged for {} by these runs.</p></figure>",
            key,
            key,
        )
    xs = [float(p[0]) for p in points]
    ys = [float(p[1]) for p in points]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    if x1 == x0:
        x1 = x0 + 1
    if y1 == y0:
        y0, y1 = y0 - 0.5, y1 + 0.5
    plot_w = WIDTH - PAD_LEFT - PAD_RIGHT
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM

    def sx(x: float) -> float:
        return PAD_LEFT + (x - x0) / (x1 - x0) * plot_w

    def sy(y: float) -> float:
        return PAD_TOP + (1 - (y - y0) / (y1 - y0)) * plot_h

    lines = []
    for curve in curves:
        # A gap (a non-finite value) splits the curve into pieces.
        pieces: list[list[str]] = [[]]
        for s, v in zip(curve["steps"], curve["values"], strict=False):
            if v is None:
                pieces.append([])
            else:
                pieces[-1].append(f"{sx(s):.1f},{sy(v):.1f}")
        colour, dash = _style(curve["run"])
        name = runs[curve["run"]]["name"] if curve["run"] < len(runs) else ""
        for piece in pieces:
            if not piece:
                continue
            shape = (
                format_html(
                    '<circle cx="{}" cy="{}" r="2.5" fill="{}"><title>{}</title></circle>',
                    *piece[0].split(","),
                    colour,
                    name,
                )
                if len(piece) == 1
                else format_html(
                    '<polyline class="report-line" fill="none" stroke="{}" stroke-width="1.6"{} points="{}">'
                    "<title>{}</title></polyline>",
                    colour,
                    format_html(' stroke-dasharray="{}"', dash) if dash else "",
                    " ".join(piece),
                    name,
                )
            )
            lines.append(shape)
    axis = format_html(
        '<line x1="{l}" y1="{b}" x2="{r}" y2="{b}" stroke="#888" stroke-width="1"/>'
        '<line x1="{l}" y1="{t}" x2="{l}" y2="{b}" stroke="#888" stroke-width="1"/>'
        '<text x="{tl}" y="{ty1}" text-anchor="end" class="report-tick">{ymax}</text>'
        '<text x="{tl}" y="{ty0}" text-anchor="end" class="report-tick">{ymin}</text>'
        '<text x="{l}" y="{tx}" text-anchor="start" class="report-tick">{xmin}</text>'
        '<text x="{r}" y="{tx}" text-anchor="end" class="report-tick">step {xmax}</text>',
        l=PAD_LEFT, r=WIDTH - PAD_RIGHT, t=PAD_TOP, b=HEIGHT - PAD_BOTTOM, tl=PAD_LEFT - 4,
        ty1=PAD_TOP + 8, ty0=HEIGHT - PAD_BOTTOM, tx=HEIGHT - 8,
        ymax=_fmt(float(y1)), ymin=_fmt(float(y0)), xmin=_fmt(x0), xmax=_fmt(x1),
    )  # fmt: skip
    return format_html(
        '<figure class="report-chart-panel" data-testid="report-chart" data-metric="{}"><figcaption>{}</figcaption>'
        '<svg class="report-svg" viewBox="0 0 {} {}" role="img" aria-label="{}" preserveAspectRatio="none">{}{}</svg>'
        "</figure>",
        key,
        key,
        WIDTH,
        HEIGHT,
        f"{key} against step, {len(curves)} runs",
        axis,
        mark_safe("".join(lines)),  # noqa: S308 - each piece built by format_html above
    )


def _chart(data: Mapping[str, Any]) -> SafeString:
    runs = data["runs"]
    if not runs:
        return format_html('<p class="report-empty">No runs match {}.</p>', data.get("query") or "(all runs)")
    panels = [_chart_panel(key, data["series"].get(key, []), runs) for key in data["metrics"]]
    legend = format_html_join(
        "",
        '<li><svg width="22" height="8" aria-hidden="true"><line x1="0" y1="4" x2="22" y2="4" stroke="{}" '
        'stroke-width="2" stroke-dasharray="{}"/></svg> <a href="{}">{}</a></li>',
        ((*_style(i), run["url"], run["name"]) for i, run in enumerate(runs)),
    )
    return format_html(
        '<div class="report-chart">{}</div><ul class="report-legend">{}</ul>',
        mark_safe("".join(panels)),  # noqa: S308 - each panel built by format_html
        legend,
    )


def _runs_table(data: Mapping[str, Any]) -> SafeString:
    head = format_html_join("", "<th>{}</th>", ((c,) for c in data["columns"]))
    body = []
    for row in data["rows"]:
        cells = []
        for column, value in zip(data["columns"], row["cells"], strict=False):
            if column == "name":
                cells.append(format_html('<td><a href="{}">{}</a></td>', row["url"], value))
            else:
                cells.append(
                    format_html('<td class="{}">{}</td>', "num" if isinstance(value, float) else "", _fmt(value))
                )
        body.append(format_html("<tr>{}</tr>", mark_safe("".join(cells))))  # noqa: S308 - cells built by format_html
    if not body:
        return format_html('<p class="report-empty">No runs match {}.</p>', data.get("query") or "(all runs)")
    return format_html(
        '<table class="report-table"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>',
        head,
        mark_safe("".join(body)),  # noqa: S308 - rows built by format_html
    )


def _shade(value: Any, peak: float) -> int:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        return 0
    return round(min(max(float(value) / peak, 0.0), 1.0) * 9)


def _confusion(data: Mapping[str, Any]) -> SafeString:
    labels = data["labels"]
    matrix = data["matrix"]
    peak = max((v for row in matrix for v in row if isinstance(v, (int, float))), default=0) or 1
    rows = []
    for label, row in zip(labels, matrix, strict=False):
        cells = format_html_join(
            "",
            # Shaded by class, not a style attribute: the site's CSP allows no inline style.
            '<td class="num cm-{}">{}</td>',
            ((_shade(v, peak), _fmt(v)) for v in row),
        )
        rows.append(format_html("<tr><th>{}</th>{}</tr>", label, cells))
    return format_html(
        '<p class="report-caption"><a href="{}">{}</a> · {}{}</p>'
        '<table class="report-table report-confusion"><thead><tr><th>true ↓ / predicted →</th>{}</tr></thead>'
        "<tbody>{}</tbody></table>",
        data["run"]["url"],
        data["run"]["name"],
        data["name"],
        f" · step {data['step']}" if data.get("step") is not None else "",
        format_html_join("", "<th>{}</th>", ((label,) for label in labels)),
        mark_safe("".join(rows)),  # noqa: S308 - rows built by format_html
    )


def _diff(data: Mapping[str, Any]) -> SafeString:
    params = data.get("params") or {}
    rows = []
    for key, value in (params.get("added") or {}).items():
        rows.append(format_html("<tr><td>param</td><td>{}</td><td>—</td><td>{}</td><td>added</td></tr>", key, value))
    for key, value in (params.get("removed") or {}).items():
        rows.append(format_html("<tr><td>param</td><td>{}</td><td>{}</td><td>—</td><td>removed</td></tr>", key, value))
    for key, change in (params.get("changed") or {}).items():
        rows.append(
            format_html(
                "<tr><td>param</td><td>{}</td><td>{}</td><td>{}</td><td>changed</td></tr>",
                key,
                change.get("from"),
                change.get("to"),
            )
        )
    for row in data.get("metrics") or []:
        if row.get("status") == "same":
            continue
        delta = row.get("delta")
        rows.append(
            format_html(
                '<tr><td>metric</td><td>{}</td><td class="num">{}</td><td class="num">{}</td><td>{}</td></tr>',
                row["key"],
                _fmt(row.get("a")),
                _fmt(row.get("b")),
                f"Δ {delta:+.4g}" if isinstance(delta, float) else row.get("status", ""),
            )
        )
    caption = format_html(
        '<p class="report-caption"><a href="{}">{} v{} → v{}</a></p>',
        data["url"],
        data["model"],
        data["from"],
        data["to"],
    )
    if not rows:
        return format_html('{}<p class="report-empty">No param or metric differs.</p>', caption)
    return format_html(
        '{}<table class="report-table"><thead><tr><th>kind</th><th>key</th><th>v{}</th><th>v{}</th><th>change</th>'
        "</tr></thead><tbody>{}</tbody></table>",
        caption,
        data["from"],
        data["to"],
        mark_safe("".join(rows)),  # noqa: S308 - rows built by format_html
    )


def _review(data: Mapping[str, Any]) -> SafeString:
    checks = ", ".join(f"{n} {status}" for status, n in data["checks"].items() if n) or "no checks"
    return format_html(
        '<p class="report-review"><a href="{}">#{} {}</a> <span class="report-badge">{}</span><br>'
        "{}@{} → v{} · by {} · {} approval(s), {} request(s) for changes · checks: {}</p>",
        data["url"], data["number"], data["title"], data["state"], data["model"], data["alias"], data["candidate"],
        data["author"] or "—", data["approvals"], data["changes_requested"], checks,
    )  # fmt: skip


DRAW = {"chart": _chart, "runs": _runs_table, "confusion": _confusion, "diff": _diff, "review": _review}
TITLES = {
    "chart": "Chart",
    "runs": "Runs",
    "confusion": "Confusion matrix",
    "diff": "Version diff",
    "review": "Review request",
}


def _when(text: str) -> str:
    try:
        return datetime.fromisoformat(text).strftime("%Y-%m-%d %H:%M UTC")
    except (TypeError, ValueError):
        return ""


def block_html(resolved: Mapping[str, Any], *, frozen: bool) -> SafeString:
    kind = resolved.get("kind", "")
    params = resolved.get("params") or {}
    title = params.get("title") or TITLES.get(kind, f"assay-{kind}")
    if frozen:
        state = format_html('<span class="report-badge report-frozen">frozen {}</span>', _when(resolved.get("at", "")))
    else:
        state = mark_safe('<span class="report-badge report-live">live</span>')
    detail = params.get("query") or params.get("metrics") or ""
    if "error" in resolved:
        inner = format_html('<p class="report-error" role="alert">{}</p>', resolved["error"])
    else:
        inner = DRAW[kind](resolved["data"])
    return format_html(
        '<section class="report-block" data-testid="report-block" data-kind="{}" data-state="{}">'
        '<header class="report-block-header"><strong>{}</strong> {} <code>{}</code></header>{}</section>',
        kind,
        "frozen" if frozen else "live",
        title,
        state,
        detail,
        inner,
    )


def render_body(project: Project, body: str, *, snapshot: Mapping[str, Any] | None = None) -> SafeString:
    """The report's HTML: blocks from ``snapshot`` (a frozen revision) or resolved now."""
    parts: list[str] = []
    for segment in split(body):
        if isinstance(segment, Block):
            stored = snapshot.get(str(segment.index)) if snapshot is not None else None
            if stored is not None:
                parts.append(block_html(stored, frozen=True))
            else:
                parts.append(block_html(resolve.resolve(project, segment), frozen=False))
        elif segment.strip():
            parts.append(markdown.render(segment))
    return mark_safe("".join(parts))  # noqa: S308 - markdown sanitised by core.markdown, blocks by format_html
