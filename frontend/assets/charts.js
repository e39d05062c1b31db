// The run page's charts: one panel per metric key, in sections by key prefix (system/ last and
// closed), a search box, the shared chart settings and legend (panels.js), and confusion-matrix
// heatmaps (heatmap.js, loaded only when the page has one).
//
// Markup contract (see frontend/templates/frontend/run.html):
//   <div data-testid="metric-charts"> <div class="col"> <figure data-metric-chart
//       data-url="/api/v1/runs/<id>/metrics/<key>/?max_points=1000" data-key="…">
//     <figcaption/> <div data-chart-canvas></div> <p data-chart-note></p> </figure> </div> … </div>
//   <div data-heatmap data-figure="<id of a json_script tag>"> <div data-chart-canvas></div> </div>
//   the toolbar of includes/chart_toolbar.html (data-run-name names the run in the legend)
// When a chart has drawn, its container gets data-rendered="true" (the browser tests wait for it);
// when it could not, data-rendered="error" and the note says why.
//
// # SECURITY: everything users wrote (metric keys, confusion-matrix labels) reaches the page
// as text only: axis labels are drawn on the canvas, tooltips are DOM nodes filled with
// textContent, notes use textContent. Nothing here assigns innerHTML.
import { echarts, resizeWithBox } from "./chart-core.js";
import { fetchPage, inertCopy } from "./live-parts.js";
import { Board, drawWhenVisible, Panel, Sections, seriesColor, toNumber } from "./panels.js";

let board = null;
let sections = null;
const panels = new Map(); // key -> Panel
let runEntry = { id: "run", name: "run", color: seriesColor(0) };

function fail(el, message) {
  el.dataset.rendered = "error";
  const note = el.querySelector("[data-chart-note]");
  if (note) {
    note.textContent = message;
    note.classList.add("text-danger");
  }
}

function panelFor(el) {
  let panel = panels.get(el.dataset.key);
  if (panel && panel.el === el) return panel;
  const data = { steps: [], values: [], times: [], downsampled: false };
  panel = new Panel(el, () => (data.loaded ? [{ ...runEntry, ...data }] : []));
  panel.data = data;
  panels.set(el.dataset.key, panel);
  board.add(panel);
  return panel;
}

async function drawMetric(el) {
  const panel = panelFor(el);
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
  const data = panel.data;
  data.steps = body.points.map((p) => p.step);
  data.values = body.points.map((p) => toNumber(p.value));
  data.times = body.points.map((p) => p.timestamp);
  data.downsampled = body.downsampled;
  data.loaded = true;
  const gaps = data.values.filter((v) => v === null).length;
  const notes = [];
  if (body.downsampled) notes.push(`${data.steps.length.toLocaleString()} of ${body.total.toLocaleString()} points (${body.method}; band: min–max)`);
  else notes.push(`${body.total.toLocaleString()} points`);
  if (gaps) notes.push(`${gaps.toLocaleString()} NaN/∞ shown as gaps`);
  const note = el.querySelector("[data-chart-note]");
  if (note) note.textContent = notes.join(" · ");
  panel.draw();
  const live = liveCharts.get(el.dataset.key);
  if (live) {
    live.entry = panel;
    for (const batch of live.pending.splice(0)) extend(live, batch);
  }
}

// --- live: while the run is running, new points extend the lines (see live.js) ------------------
// Points arrive per logged batch; they are appended (steps already drawn are skipped), the
// line is thinned to MAX_LIVE_POINTS by dropping every other point but the last, and each
// chart is redrawn at most once per REDRAW_MS.
const MAX_LIVE_POINTS = 4000;
const REDRAW_MS = 500;
const liveCharts = new Map(); // key -> {entry (its Panel, once loaded), pending, timer, el}

function extend(live, batch) {
  if (!live.entry) {
    live.pending.push(batch); // the history is still loading: apply after it
    return;
  }
  const data = live.entry.data;
  const lastStep = data.steps.length ? data.steps[data.steps.length - 1] : -Infinity;
  const now = Date.now();
  batch.steps.forEach((step, i) => {
    if (step <= lastStep) return;
    data.steps.push(step);
    data.values.push(toNumber(batch.values[i]));
    data.times.push(batch.timestamps ? batch.timestamps[i] : now);
  });
  if (data.steps.length > MAX_LIVE_POINTS) {
    // Every other point, and the last one: the line keeps its shape at half the points.
    const keep = (_, i) => i % 2 === 0 || i === data.steps.length - 1;
    data.steps = data.steps.filter(keep);
    data.values = data.values.filter(keep);
    data.times = data.times.filter(keep);
  }
  if (live.timer) return;
  live.timer = setTimeout(() => {
    live.timer = null;
    live.entry.draw();
    live.el.dataset.livePoints = String(data.steps.length);
    const note = live.el.querySelector("[data-chart-note]");
    if (note) note.textContent = `${data.steps.length.toLocaleString()} points · live`;
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
    sections = makeSections(grid);
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
    liveCharts.set(el.dataset.key, { entry: null, pending: [], timer: null, el });
    if (sections) sections.place(column);
    else grid.appendChild(column);
    drawMetric(el);
  }
}

export function initLiveCharts() {
  const header = document.querySelector("[data-live-topic^='run:']");
  const section = document.querySelector("[data-live-charts]");
  if (!header || !section) return;
  const topic = header.dataset.liveTopic;
  for (const el of document.querySelectorAll("[data-metric-chart]")) {
    liveCharts.set(el.dataset.key, { entry: null, pending: [], timer: null, el });
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

async function drawHeatmap(el) {
  const source = document.getElementById(el.dataset.figure);
  let figure;
  try {
    figure = JSON.parse(source.textContent);
  } catch {
    fail(el, "This figure's data could not be read.");
    return;
  }
  const { heatmapOption } = await import("./heatmap.js");
  // Square-ish cells: the height follows the number of labels, within bounds.
  const canvas = el.querySelector("[data-chart-canvas]");
  const size = figure.labels.length;
  canvas.style.height = `${Math.min(720, Math.max(260, 60 + size * 36))}px`;
  const chart = echarts.init(canvas, null, { renderer: "canvas" });
  chart.on("finished", () => {
    el.dataset.rendered = "true";
  });
  chart.setOption(heatmapOption(figure));
  resizeWithBox(chart, canvas);
  document.addEventListener("assay:themechange", () => chart.setOption(heatmapOption(figure), { notMerge: true }));
}

function makeSections(grid) {
  const columnClass = grid.className;
  grid.className = "";
  return new Sections(grid, { columnClass });
}

export function initCharts() {
  const metricCharts = document.querySelectorAll("[data-metric-chart]");
  const heatmaps = document.querySelectorAll("[data-heatmap]");
  if (!board && (metricCharts.length || document.querySelector("[data-live-charts]"))) {
    const toolbar = document.querySelector("[data-chart-toolbar]");
    runEntry = { id: "run", name: toolbar?.dataset.runName || "this run", color: seriesColor(0) };
    board = new Board();
    board.setLegend([runEntry]);
    const grid = document.querySelector("[data-live-charts] [data-testid=metric-charts]");
    if (grid) sections = makeSections(grid);
    const count = document.querySelector("[data-panel-count]");
    if (count && sections) {
      const system = sections.sections.get("system");
      count.textContent =
        `${metricCharts.length} chart${metricCharts.length === 1 ? "" : "s"} in ${sections.sections.size} section${sections.sections.size === 1 ? "" : "s"}, every key logged more than once; each is drawn as it scrolls into view` +
        (system ? ` (system/ starts closed)` : "");
    }
  }
  // A run may log hundreds of keys: fetch each history only when its chart nears the viewport.
  drawWhenVisible(metricCharts, drawMetric);
  // Confusion matrices carry their data in the page: drawn well before they are reached.
  drawWhenVisible(heatmaps, drawHeatmap, "2000px");
}
