// Metric line charts and confusion-matrix heatmaps, drawn with ECharts (tree-shaken).
//
// Markup contract (see frontend/templates/frontend/run.html):
//   <div data-metric-chart data-url="/api/v1/runs/<id>/metrics/<key>/?max_points=1000" data-key="…">
//     <div data-chart-canvas></div> <p data-chart-note></p>
//   </div>
//   <div data-heatmap data-figure="<id of a json_script tag>"> <div data-chart-canvas></div> </div>
// When a chart has drawn, its container gets data-rendered="true" (the browser tests wait for it);
// when it could not, data-rendered="error" and the note says why.
//
// # SECURITY: everything users wrote (metric keys, confusion-matrix labels) reaches the page
// as text only: axis labels are drawn on the canvas, tooltips are DOM nodes filled with
// textContent, notes use textContent. Nothing here assigns innerHTML.
import { HeatmapChart, LineChart } from "echarts/charts";
import { GridComponent, TooltipComponent, VisualMapComponent } from "echarts/components";
import * as echarts from "echarts/core";
import { CanvasRenderer } from "echarts/renderers";
import { fetchPage, inertCopy } from "./live-parts.js";

echarts.use([LineChart, HeatmapChart, GridComponent, TooltipComponent, VisualMapComponent, CanvasRenderer]);

const charts = new Set(); // {chart, el, option: () => object}

function cssVar(name, fallback) {
  const value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return value || fallback;
}

function palette() {
  return {
    text: cssVar("--bs-body-color", "#212529"),
    muted: cssVar("--bs-secondary-color", "#6c757d"),
    border: cssVar("--bs-border-color", "#dee2e6"),
    background: cssVar("--bs-body-bg", "#ffffff"),
    line: cssVar("--bs-primary", "#0d6efd"),
    dark: document.documentElement.getAttribute("data-bs-theme") === "dark",
  };
}

// The API sends non-finite values as the strings "NaN", "Infinity" and "-Infinity".
function toNumber(value) {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

export function formatNumber(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "string") return value;
  if (Number.isInteger(value) && Math.abs(value) < 1e6) return String(value);
  const abs = Math.abs(value);
  if (abs !== 0 && (abs < 1e-3 || abs >= 1e6)) return Number(value.toPrecision(4)).toExponential();
  return String(Number(value.toPrecision(5)));
}

function tooltipBox(title, rows, colors) {
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
    name.textContent = label;
    const val = document.createElement("strong");
    val.textContent = value;
    row.append(name, val);
    box.appendChild(row);
  }
  box.dataset.theme = colors.dark ? "dark" : "light";
  return box;
}

function baseTooltip(colors) {
  return {
    backgroundColor: colors.background,
    borderColor: colors.border,
    textStyle: { color: colors.text, fontSize: 12 },
    confine: true,
  };
}

function lineOption(key, points) {
  const colors = palette();
  return {
    animation: false,
    grid: { left: 8, right: 16, top: 12, bottom: 4, outerBoundsMode: "same", outerBoundsContain: "axisLabel" },
    tooltip: {
      ...baseTooltip(colors),
      trigger: "axis",
      axisPointer: { type: "line", lineStyle: { color: colors.muted } },
      formatter: (params) => {
        const p = Array.isArray(params) ? params[0] : params;
        const [step, value] = p.data;
        return tooltipBox(`step ${step}`, [[key, formatNumber(value ?? "NaN/∞ (gap)"), p.color]], colors);
      },
    },
    xAxis: {
      type: "value",
      min: "dataMin",
      max: "dataMax",
      axisLine: { lineStyle: { color: colors.border } },
      axisLabel: { color: colors.muted, fontSize: 11, hideOverlap: true },
      splitLine: { show: false },
    },
    yAxis: {
      type: "value",
      scale: true,
      axisLabel: { color: colors.muted, fontSize: 11, formatter: (v) => formatNumber(v) },
      splitLine: { lineStyle: { color: colors.border, type: "dashed" } },
    },
    series: [
      {
        name: key,
        type: "line",
        data: points,
        showSymbol: points.length < 2,
        symbolSize: 5,
        connectNulls: false, // NaN and ±Inf are gaps, not zeros
        lineStyle: { width: 1.6, color: colors.line },
        itemStyle: { color: colors.line },
      },
    ],
  };
}

function heatmapOption(figure) {
  const colors = palette();
  const labels = figure.labels.map(String);
  let max = 0;
  for (const row of figure.matrix) for (const count of row) if (count > max) max = count;
  const cells = [];
  figure.matrix.forEach((row, i) => {
    row.forEach((count, j) => {
      // x = predicted (column), y = true label (row). The count's colour flips with the
      // cell's darkness so that it keeps its contrast.
      const strong = max > 0 && count / max > 0.5;
      cells.push({ value: [j, i, count], label: { color: strong || colors.dark ? "#ffffff" : "#212529" } });
    });
  });
  const many = labels.length > 12;
  return {
    animation: false,
    grid: { left: 8, right: 8, top: 28, bottom: 8, outerBoundsMode: "same", outerBoundsContain: "all" },
    tooltip: {
      ...baseTooltip(colors),
      formatter: (p) => {
        const [j, i, count] = p.value;
        return tooltipBox(
          `true ${labels[i]} → predicted ${labels[j]}`,
          [["count", formatNumber(count), null]],
          colors,
        );
      },
    },
    xAxis: {
      type: "category",
      data: labels,
      position: "top",
      name: "predicted",
      nameLocation: "middle",
      nameGap: 22,
      nameTextStyle: { color: colors.muted },
      axisLabel: { color: colors.text, fontSize: 11, interval: 0, rotate: many ? 45 : 0, width: 90, overflow: "truncate" },
      axisLine: { lineStyle: { color: colors.border } },
      axisTick: { show: false },
      splitArea: { show: false },
    },
    yAxis: {
      type: "category",
      data: labels,
      inverse: true,
      name: "true",
      nameLocation: "middle",
      nameRotate: 90,
      nameGap: 0,
      nameTextStyle: { color: colors.muted, padding: [0, 0, 8, 0] },
      axisLabel: { color: colors.text, fontSize: 11, interval: 0, width: 100, overflow: "truncate" },
      axisLine: { lineStyle: { color: colors.border } },
      axisTick: { show: false },
    },
    visualMap: {
      show: false,
      min: 0,
      max: Math.max(max, 1),
      inRange: { color: colors.dark ? ["#1b2430", "#3d8bfd"] : ["#f4f8ff", "#0a58ca"] },
    },
    series: [
      {
        type: "heatmap",
        data: cells,
        label: {
          show: !many || labels.length <= 30,
          fontSize: many ? 9 : 12,
          formatter: (p) => formatNumber(p.value[2]),
        },
        itemStyle: { borderColor: colors.background, borderWidth: 1 },
        emphasis: { itemStyle: { borderColor: colors.text, borderWidth: 1 } },
      },
    ],
  };
}

function mount(el, option) {
  const target = el.querySelector("[data-chart-canvas]") || el;
  const chart = echarts.init(target, null, { renderer: "canvas" });
  chart.on("finished", () => {
    el.dataset.rendered = "true";
  });
  chart.setOption(option());
  const entry = { chart, option };
  charts.add(entry);
  new ResizeObserver(() => chart.resize()).observe(target);
  return entry;
}

function fail(el, message) {
  el.dataset.rendered = "error";
  const note = el.querySelector("[data-chart-note]");
  if (note) {
    note.textContent = message;
    note.classList.add("text-danger");
  }
}

async function drawMetric(el) {
  let body;
  try {
    const response = await fetch(el.dataset.url, {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    });
    if (!response.ok) {
      fail(el, `Could not load this metric (HTTP ${response.status}).`);
      return;
    }
    body = await response.json();
  } catch (error) {
    fail(el, "Could not load this metric (network error).");
    return;
  }
  const points = body.points.map((p) => [p.step, toNumber(p.value)]);
  const live = liveCharts.get(el.dataset.key);
  const gaps = points.filter((p) => p[1] === null).length;
  const notes = [];
  if (body.downsampled) notes.push(`${points.length.toLocaleString()} of ${body.total.toLocaleString()} points (${body.method})`);
  else notes.push(`${body.total.toLocaleString()} points`);
  if (gaps) notes.push(`${gaps.toLocaleString()} NaN/∞ shown as gaps`);
  const note = el.querySelector("[data-chart-note]");
  if (note) note.textContent = notes.join(" · ");
  if (!live) {
    mount(el, () => lineOption(el.dataset.key, points));
    return;
  }
  live.points = points;
  if (live.entry) live.entry.chart.setOption(live.entry.option(), { notMerge: true }); // caught up after a reset
  else live.entry = mount(el, () => lineOption(el.dataset.key, live.points));
  for (const batch of live.pending.splice(0)) extend(live, batch);
}

// --- live: while the run is running, new points extend the lines (see live.js) ------------------
// Points arrive per logged batch; they are appended (steps already drawn are skipped), the
// line is thinned to MAX_LIVE_POINTS by dropping every other point but the last, and each
// chart is redrawn at most once per REDRAW_MS.
const MAX_LIVE_POINTS = 4000;
const REDRAW_MS = 500;
const liveCharts = new Map(); // key -> {points, entry, pending, timer, el}

function extend(live, batch) {
  if (!live.entry) {
    live.pending.push(batch); // the history is still loading: apply after it
    return;
  }
  const lastStep = live.points.length ? live.points[live.points.length - 1][0] : -Infinity;
  batch.steps.forEach((step, i) => {
    if (step > lastStep) live.points.push([step, toNumber(batch.values[i])]);
  });
  if (live.points.length > MAX_LIVE_POINTS) {
    const last = live.points[live.points.length - 1];
    live.points = live.points.filter((_, i) => i % 2 === 0);
    if (live.points[live.points.length - 1] !== last) live.points.push(last);
  }
  if (live.timer) return;
  live.timer = setTimeout(() => {
    live.timer = null;
    live.entry.chart.setOption({ series: [{ data: live.points, showSymbol: live.points.length < 2 }] });
    live.el.dataset.livePoints = String(live.points.length);
    const note = live.el.querySelector("[data-chart-note]");
    if (note) note.textContent = `${live.points.length.toLocaleString()} points · live`;
  }, REDRAW_MS);
}

// A key logged for the first time gets its chart: the server renders the page again, the new
// figures are taken from it (live-parts.js filters them) and drawn from their histories.
let adding = null;
let newKeys = 0;

async function addCharts(section) {
  const doc = await fetchPage();
  if (!doc) return;
  // Metrics logged once are values (the server's list); one logged again becomes a chart below.
  const freshValues = doc.querySelector("[data-live-charts] [data-testid=metric-values]");
  const values = section.querySelector("[data-testid=metric-values]");
  if (freshValues && values) values.replaceWith(inertCopy(freshValues));
  else if (freshValues) section.querySelector(".section-title").after(inertCopy(freshValues));
  else if (values) values.remove();
  if (freshValues) section.querySelector("[data-no-metrics]")?.remove();
  const fresh = doc.querySelector("[data-live-charts] [data-testid=metric-charts]");
  if (!fresh) return;
  let grid = section.querySelector("[data-testid=metric-charts]");
  if (!grid) {
    grid = inertCopy(fresh);
    grid.replaceChildren();
    const empty = section.querySelector("[data-no-metrics]");
    if (empty) empty.replaceWith(grid);
    else section.appendChild(grid);
  }
  for (const figure of fresh.querySelectorAll("[data-metric-chart]")) {
    if (liveCharts.has(figure.dataset.key)) continue;
    const column = inertCopy(figure.closest(".col") || figure);
    const el = column.matches("[data-metric-chart]") ? column : column.querySelector("[data-metric-chart]");
    // The server numbers chart ids by key order; a new key shifts them: give it ids of its own.
    newKeys += 1;
    const id = `chart-live-${newKeys}`;
    el.id = id;
    el.setAttribute("aria-labelledby", `${id}-title`);
    const caption = el.querySelector("figcaption");
    if (caption) caption.id = `${id}-title`;
    liveCharts.set(el.dataset.key, { points: [], entry: null, pending: [], timer: null, el });
    grid.appendChild(column);
    drawMetric(el);
  }
}

export function initLiveCharts() {
  const header = document.querySelector("[data-live-topic^='run:']");
  const section = document.querySelector("[data-live-charts]");
  if (!header || !section) return;
  const topic = header.dataset.liveTopic;
  for (const el of document.querySelectorAll("[data-metric-chart]")) {
    liveCharts.set(el.dataset.key, { points: [], entry: null, pending: [], timer: null, el });
  }
  document.addEventListener("assay:live", (e) => {
    const { topic: from, event, data } = e.detail;
    if (from !== topic || event !== "metrics") return;
    let unknown = false;
    for (const [key, batch] of Object.entries(data.points)) {
      const live = liveCharts.get(key);
      if (live) extend(live, batch);
      else unknown = true;
    }
    if (unknown && !adding) {
      adding = addCharts(section)
        .catch(() => {})
        .finally(() => {
          adding = null;
        });
    }
  });
  // Fell behind (more missed than the server keeps): each drawn chart reads its history again.
  document.addEventListener("assay:live-reset", (e) => {
    if (e.detail.topic !== topic) return;
    for (const live of liveCharts.values()) if (live.entry) drawMetric(live.el);
  });
}

function drawHeatmap(el) {
  const source = document.getElementById(el.dataset.figure);
  let figure;
  try {
    figure = JSON.parse(source.textContent);
  } catch {
    fail(el, "This figure's data could not be read.");
    return;
  }
  // Square-ish cells: the height follows the number of labels, within bounds.
  const canvas = el.querySelector("[data-chart-canvas]");
  const size = figure.labels.length;
  canvas.style.height = `${Math.min(720, Math.max(260, 60 + size * 36))}px`;
  mount(el, () => heatmapOption(figure));
}

export function initCharts() {
  const metricCharts = document.querySelectorAll("[data-metric-chart]");
  const heatmaps = document.querySelectorAll("[data-heatmap]");
  if (!metricCharts.length && !heatmaps.length) return;

  // A run may log hundreds of keys: fetch each history only when its chart nears the viewport.
  const observer = new IntersectionObserver(
    (entries) => {
      for (const entry of entries) {
        if (!entry.isIntersecting) continue;
        observer.unobserve(entry.target);
        if (entry.target.hasAttribute("data-heatmap")) drawHeatmap(entry.target);
        else drawMetric(entry.target);
      }
    },
    { rootMargin: "600px 0px" },
  );
  for (const el of metricCharts) observer.observe(el);
  for (const el of heatmaps) observer.observe(el);

  document.addEventListener("assay:themechange", () => {
    for (const { chart, option } of charts) chart.setOption(option(), { notMerge: true });
  });
}
