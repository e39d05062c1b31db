// ECharts as every chart page uses it: the core, line series, a grid, the tooltip and the
// canvas renderer (tree-shaken from echarts/core). build.mjs splits the bundles (ESM), so this
// module and ECharts' core are one shared chunk for the run, compare and lineage pages; the
// heavier, rarer parts (heatmaps, parallel coordinates, scatter, graph) are loaded on demand.
// Each part is imported from its own install module, not the echarts/charts barrel: with
// esbuild's code splitting the barrel pulls every series into the shared chunk.
import { getInstanceByDom, init, use } from "echarts/core";
import { install as LineChart } from "echarts/lib/chart/line/install.js";
import { install as GridComponent } from "echarts/lib/component/grid/install.js";
import { install as TooltipComponent } from "echarts/lib/component/tooltip/install.js";
import { install as CanvasRenderer } from "echarts/lib/renderer/installCanvasRenderer.js";

use([LineChart, GridComponent, TooltipComponent, CanvasRenderer]);

// The browser tests (and anyone debugging) read a chart's drawn option through this:
// window.assayEcharts.getInstanceByDom(canvas).getOption().
window.assayEcharts = { getInstanceByDom };

// Only what the pages call: a namespace import re-exported would keep all of echarts/core.
export const echarts = { getInstanceByDom, init, use };

// Redraws `chart` when its box changes size. A ResizeObserver also reports the size a box
// already has as soon as it is observed, and chart.resize() redraws everything whether or
// not the size changed: without the check, every chart was drawn twice on first display
// (a 100-line compare panel's drawing time, again).
export function resizeWithBox(chart, box) {
  const observer = new ResizeObserver(() => {
    if (box.clientWidth !== chart.getWidth() || box.clientHeight !== chart.getHeight()) chart.resize();
  });
  observer.observe(box);
  return observer;
}

export function cssVar(name, fallback) {
  const value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return value || fallback;
}

export function palette() {
  return {
    text: cssVar("--bs-body-color", "#212529"),
    muted: cssVar("--bs-secondary-color", "#6c757d"),
    border: cssVar("--bs-border-color", "#dee2e6"),
    background: cssVar("--bs-body-bg", "#ffffff"),
    line: cssVar("--bs-primary", "#0d6efd"),
    dark: document.documentElement.getAttribute("data-bs-theme") === "dark",
  };
}

export function formatNumber(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "string") return value;
  if (Number.isInteger(value) && Math.abs(value) < 1e6) return String(value);
  const abs = Math.abs(value);
  if (abs !== 0 && (abs < 1e-3 || abs >= 1e6)) return Number(value.toPrecision(4)).toExponential();
  return String(Number(value.toPrecision(5)));
}

// # SECURITY: labels are user-written (metric keys, run names, figure labels): tooltips are
// DOM nodes filled with textContent, never HTML strings.
export function tooltipBox(title, rows, colors, more = 0) {
  const box = document.createElement("div");
  box.className = "chart-tooltip";
  const head = document.createElement("div");
  head.className = "chart-tooltip-title";
  head.textContent = title;
  box.appendChild(head);
  for (const [label, value, color] of rows) {
    const row = document.createElement("div");
    row.className = "chart-tooltip-row";
    if (color) {
      const marker = document.createElement("span");
      marker.className = "chart-tooltip-marker";
      marker.style.backgroundColor = color; // CSSOM, which the style-src CSP allows
      row.appendChild(marker);
    }
    const name = document.createElement("span");
    name.className = "chart-tooltip-name";
    name.textContent = label;
    const val = document.createElement("strong");
    val.textContent = value;
    row.append(name, val);
    box.appendChild(row);
  }
  if (more) {
    const rest = document.createElement("div");
    rest.className = "chart-tooltip-title";
    rest.textContent = `+${more} more`;
    box.appendChild(rest);
  }
  box.dataset.theme = colors.dark ? "dark" : "light";
  return box;
}

export function baseTooltip(colors) {
  return {
    backgroundColor: colors.background,
    borderColor: colors.border,
    textStyle: { color: colors.text, fontSize: 12 },
    confine: true,
  };
}
