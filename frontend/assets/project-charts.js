// The project page's charts: the runs listed on the table's page, overlaid, one panel per
// metric key (the project's key registry, /api/v1/projects/<team>/<project>/keys/), in
// sections by key prefix with the shared toolbar and legend (panels.js). Each panel's
// histories are one request to /api/v1/compare/ when the panel nears the viewport.
//
// Markup contract (frontend/templates/frontend/includes/project_charts.html):
//   <section data-project-charts data-keys-url data-compare-url> [data-project-charts-note]
//     the toolbar, <ul data-chart-legend>, <div data-project-chart-grid></div> </section>
//   rows of the runs table: <tr data-run-id="…"> with the run's link in it
//
// # SECURITY: keys and run names are user-written: they reach the page through textContent.
import { Board, drawWhenVisible, Panel, Sections, seriesColor, toNumber } from "./panels.js";
import { ready } from "./ready.js";

const MAX_KEYS = 100; // panels built at most (each is drawn only when seen)
const MAX_RUNS = 100; // the compare API's limit
const POINTS = 300;

function figure(key, index) {
  const column = document.createElement("div");
  column.className = "col";
  const el = document.createElement("figure");
  el.className = "card chart-card h-100 mb-0";
  el.dataset.key = key;
  el.dataset.testid = "project-chart";
  el.id = `project-chart-${index}`;
  el.setAttribute("aria-labelledby", `${el.id}-title`);
  const caption = document.createElement("figcaption");
  caption.className = "card-header bg-transparent";
  caption.id = `${el.id}-title`;
  const name = document.createElement("span");
  name.className = "mono";
  name.textContent = key;
  caption.appendChild(name);
  const canvas = document.createElement("div");
  canvas.className = "chart-canvas";
  canvas.dataset.chartCanvas = "";
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", `${key} of each run on this page, overlaid`);
  el.append(caption, canvas);
  column.appendChild(el);
  return column;
}

async function getJson(url) {
  const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  return response.json();
}

async function initProjectCharts() {
  const section = document.querySelector("[data-project-charts]");
  const grid = section?.querySelector("[data-project-chart-grid]");
  if (!section || !grid) return;
  const note = section.querySelector("[data-project-charts-note]");
  const rows = [...document.querySelectorAll("[data-testid=runs-table] tr[data-run-id]")];
  const runs = rows.slice(0, MAX_RUNS).map((row, index) => ({
    id: row.dataset.runId,
    name: row.querySelector(".run-link, a")?.textContent.trim() || row.dataset.runId,
    color: seriesColor(index),
  }));
  if (!runs.length) {
    section.hidden = true;
    return;
  }
  let keys;
  try {
    keys = await getJson(`${section.dataset.keysUrl}?limit=${MAX_KEYS}`);
  } catch (error) {
    note.textContent = `Could not load the project's metric keys (${error.message}).`;
    section.dataset.rendered = "error";
    return;
  }
  const metricKeys = keys.metrics || [];
  if (!metricKeys.length) {
    note.textContent = "No metrics logged yet.";
    return;
  }
  note.textContent =
    (keys.truncated
      ? `Charting the first ${metricKeys.length} metric keys (alphabetical; the project has more): compare runs to choose others. `
      : `${metricKeys.length} metric key${metricKeys.length === 1 ? "" : "s"}, `) +
    `${runs.length} run${runs.length === 1 ? "" : "s"} of this page overlaid${rows.length > MAX_RUNS ? ` (the first ${MAX_RUNS})` : ""}; each chart is drawn as it scrolls into view.`;
  const board = new Board();
  board.setLegend(runs);
  const series = {}; // key -> run id -> source
  const figures = metricKeys.map((key, index) => {
    const column = figure(key, index);
    grid.appendChild(column);
    const el = column.querySelector("figure");
    board.add(new Panel(el, () => runs.filter((run) => series[key]?.[run.id]).map((run) => ({ ...run, ...series[key][run.id] }))));
    return el;
  });
  const panels = new Map(board.panels.map((p) => [p.el, p]));
  const columnClass = grid.className;
  grid.className = "";
  new Sections(grid, { columnClass });
  const ids = runs.map((r) => r.id).join(",");
  drawWhenVisible(figures, async (el) => {
    const key = el.dataset.key;
    try {
      const url = `${section.dataset.compareUrl}?${new URLSearchParams({ runs: ids, keys: key, max_points: String(POINTS) })}`;
      const body = await getJson(url);
      const starts = new Map(body.runs.map((r) => [r.id, Date.parse(r.start_time)]));
      series[key] = {};
      for (const [runId, byKey] of Object.entries(body.series)) {
        const s = byKey[key];
        if (s) series[key][runId] = { steps: s.steps, values: s.values.map(toNumber), times: s.timestamps, downsampled: s.downsampled, start: starts.get(runId) };
      }
      panels.get(el).draw();
    } catch (error) {
      el.dataset.rendered = "error";
    }
  });
  section.dataset.rendered = "true";
}

ready(() => {
  initProjectCharts();
});
