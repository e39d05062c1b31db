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

import numpy as np
import numpy.typing as npt
from django.utils.html import escape, format_html, format_html_join
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
# The viewBox, in units of half a pixel of the drawn chart (about 640 × 220 px).
WIDTH, HEIGHT = 1280, 440
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 112, 24, 20, 52


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


def _arrays(curve: Mapping[str, Any]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    x = np.asarray(curve["steps"], dtype=np.float64)
    y = np.asarray([np.nan if v is None else v for v in curve["values"]], dtype=np.float64)
    return x, y


def _coordinates(
    x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], scale: tuple[float, float, float, float]
) -> list[str]:
    """The curve as SVG ``points`` lists (``"x y x y …"``: SVG takes white space between all
    numbers) in whole viewBox units (the viewBox is twice the drawn size, so a unit is half a
    pixel or less): one string per stretch between gaps (a non-finite value is a gap),
    repeated consecutive points dropped. Vectorised: a report of 10 charts over 100 runs
    draws some 1,500 curves."""
    x0, x1, y0, y1 = scale
    px = np.rint(PAD_LEFT + (x - x0) / (x1 - x0) * (WIDTH - PAD_LEFT - PAD_RIGHT)).astype(np.int64)
    py = np.rint(PAD_TOP + (1 - (np.nan_to_num(y) - y0) / (y1 - y0)) * (HEIGHT - PAD_TOP - PAD_BOTTOM)).astype(np.int64)
    finite = np.isfinite(y)
    pieces: list[str] = []
    # Stretches of finite points: split where finiteness changes.
    edges = np.flatnonzero(np.diff(finite.astype(np.int8))) + 1
    for start, stop in zip(np.r_[0, edges].tolist(), np.r_[edges, finite.size].tolist(), strict=True):
        if not finite[start]:
            continue
        sx, sy = px[start:stop], py[start:stop]
        keep = np.ones(sx.size, dtype=bool)
        keep[1:] = (sx[1:] != sx[:-1]) | (sy[1:] != sy[:-1])
        pieces.append(" ".join(map(str, np.column_stack((sx[keep], sy[keep])).ravel().tolist())))
    return pieces


def _chart_panel(key: str, curves: list[dict[str, Any]], runs: list[dict[str, Any]]) -> SafeString:
    arrays = [_arrays(curve) for curve in curves]
    finite_x = [x[np.isfinite(y)] for x, y in arrays]
    finite_y = [y[np.isfinite(y)] for _, y in arrays]
    if not any(v.size for v in finite_y):
        return format_html(
            '<figure class="report-chart-panel"><figcaption>{}</figcaption><p class="report-empty">'
            "No points logged for {} by these runs.</p></figure>",
            key,
            key,
        )
    x0 = float(min(v.min() for v in finite_x if v.size))
    x1 = float(max(v.max() for v in finite_x if v.size))
    y0 = float(min(v.min() for v in finite_y if v.size))
    y1 = float(max(v.max() for v in finite_y if v.size))
    if x1 == x0:
        x1 = x0 + 1
    if y1 == y0:
        y0, y1 = y0 - 0.5, y1 + 0.5
    lines: list[str] = []
    for curve, (x, y) in zip(curves, arrays, strict=True):
        colour, dash = _style(curve["run"])  # ours: constants
        # SECURITY: the run name is the one user-written value here: escaped once.
        name = escape(runs[curve["run"]]["name"] if curve["run"] < len(runs) else "")
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        for piece in _coordinates(x, y, (x0, x1, y0, y1)):  # whole numbers only
            if piece.count(" ") == 1:  # one point: a dot, not a line
                cx, cy = piece.split(" ")
                lines.append(f'<circle cx="{cx}" cy="{cy}" r="4" fill="{colour}"><title>{name}</title></circle>')
            else:
                lines.append(
                    f'<polyline fill="none" stroke="{colour}" stroke-width="3"{dash_attr} points="{piece}">'
                    f"<title>{name}</title></polyline>"
                )
    axis = format_html(
        '<line x1="{l}" y1="{b}" x2="{r}" y2="{b}" stroke="#888" stroke-width="2"/>'
        '<line x1="{l}" y1="{t}" x2="{l}" y2="{b}" stroke="#888" stroke-width="2"/>'
        '<text x="{tl}" y="{ty1}" text-anchor="end" class="report-tick">{ymax}</text>'
        '<text x="{tl}" y="{ty0}" text-anchor="end" class="report-tick">{ymin}</text>'
        '<text x="{l}" y="{tx}" text-anchor="start" class="report-tick">{xmin}</text>'
        '<text x="{r}" y="{tx}" text-anchor="end" class="report-tick">step {xmax}</text>',
        l=PAD_LEFT, r=WIDTH - PAD_RIGHT, t=PAD_TOP, b=HEIGHT - PAD_BOTTOM, tl=PAD_LEFT - 8,
        ty1=PAD_TOP + 16, ty0=HEIGHT - PAD_BOTTOM, tx=HEIGHT - 16,
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
        mark_safe("".join(lines)),  # noqa: S308 - numbers and constants, the run names escaped
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
    reads = resolve.Reads()
    for segment in split(body):
        if isinstance(segment, Block):
            stored = snapshot.get(str(segment.index)) if snapshot is not None else None
            if stored is not None:
                parts.append(block_html(stored, frozen=True))
            else:
                parts.append(block_html(resolve.resolve(project, segment, reads=reads), frozen=False))
        elif segment.strip():
            parts.append(markdown.render(segment))
    return mark_safe("".join(parts))  # noqa: S308 - markdown sanitised by core.markdown, blocks by format_html
