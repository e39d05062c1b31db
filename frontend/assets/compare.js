// The compare page's charts. One request (/api/v1/compare/) brings every run's downsampled
// histories; the panels (panels.js) redraw locally when smoothing, the x axis, the log scale,
// the legend or the grouping change, and each is drawn when it nears the viewport.
//
// Markup contract (frontend/templates/frontend/compare.html):
//   <script type="application/json" id="compare-config">{dataUrl, keys, runs, parallel}</script>
//   the toolbar of includes/chart_toolbar.html, with #group-by (a config or param key, or none)
//   <ul data-chart-legend></ul>   the one legend of every chart (filled here; never paginates)
//   <div data-compare-charts> … one <figure data-compare-chart data-key="…"> per key … </div>
//   <form data-key-picker>  checkboxes name=keys, [data-key-search], [data-key-select], [data-key-count]
//   <div data-parallel> <div data-chart-canvas></div> </div>
//   <figure data-scatter> #scatter-x #scatter-y <div data-chart-canvas></div> </figure>
// Containers get data-rendered="true" once drawn (the browser tests wait for it).
//
// # SECURITY: run names and keys are user-written: legends are textContent, axis names canvas
// text; nothing assigns innerHTML.
import { echarts, resizeWithBox } from "./chart-core.js";
import { Board, drawWhenVisible, Panel, Sections, seriesColor, smoothed, toNumber, xValues } from "./panels.js";

const BINS = 200;

export function initKeyPicker() {
  const form = document.querySelector("[data-key-picker]");
  if (!form) return;
  const search = form.querySelector("[data-key-search]");
  const count = form.querySelector("[data-key-count]");
  const options = [...form.querySelectorAll("[data-key-option]")];
  const max = Number(form.dataset.max || 20);
  const boxes = () => options.map((o) => o.querySelector("input"));
  const update = () => {
    const ticked = boxes().filter((b) => b.checked).length;
    const over = ticked > max ? ` — only the first ${max} are charted` : "";
    count.textContent = `${ticked} of ${options.length} selected (at most ${max} charts)${over}`;
  };
  search?.addEventListener("input", () => {
    const text = search.value.trim().toLowerCase();
    for (const option of options) option.hidden = Boolean(text) && !option.dataset.keyOption.toLowerCase().includes(text);
  });
  search?.addEventListener("keydown", (event) => {
    if (event.key === "Enter") event.preventDefault(); // Enter in the search box does not submit
  });
  for (const button of form.querySelectorAll("[data-key-select]")) {
    button.addEventListener("click", () => {
      const shown = button.dataset.keySelect === "shown";
      for (const option of options) {
        if (shown && option.hidden) continue;
        option.querySelector("input").checked = shown;
      }
      update();
    });
  }
  form.addEventListener("change", update);
  update();
}

// Groups of runs by the text of one config or param key ("(none)" when a run lacks it).
function groupRuns(runs, groupKey) {
  const colon = groupKey.indexOf(":");
  const kind = groupKey.slice(0, colon);
  const key = groupKey.slice(colon + 1);
  const groups = new Map();
  for (const run of runs) {
    const value = (run[kind] || {})[key];
    const label = value === undefined || value === null ? "(none)" : String(value);
    if (!groups.has(label)) groups.set(label, []);
    groups.get(label).push(run);
  }
  return [...groups.entries()].map(([label, members], index) => ({
    id: `group:${label}`,
    name: `${key} = ${label} (${members.length} run${members.length === 1 ? "" : "s"})`,
    color: seriesColor(index),
    runs: members,
  }));
}

// The mean and min–max of a group's runs in BINS bins of the x axis: each run's (smoothed)
// points are averaged per bin, then the runs are combined per bin.
function aggregate(histories, settings) {
  const curves = histories.map((s) => {
    const xs = xValues(s, settings.x);
    return { xs, ys: smoothed(s.values, settings) || s.values };
  });
  let lo = Infinity;
  let hi = -Infinity;
  for (const { xs } of curves) {
    if (!xs.length) continue;
    lo = Math.min(lo, xs[0]);
    hi = Math.max(hi, xs[xs.length - 1]);
  }
  if (lo === Infinity) return { xs: [], mean: [], min: [], max: [] };
  const width = hi > lo ? (hi - lo) / BINS : 1;
  const sum = new Float64Array(BINS);
  const count = new Uint32Array(BINS);
  const min = new Array(BINS).fill(null);
  const max = new Array(BINS).fill(null);
  const runSum = new Float64Array(BINS);
  const runCount = new Uint32Array(BINS);
  const xSum = new Float64Array(BINS); // a bin's x: the mean x of its points (steps stay steps)
  const xCount = new Uint32Array(BINS);
  for (const { xs, ys } of curves) {
    runSum.fill(0);
    runCount.fill(0);
    for (let i = 0; i < xs.length; i += 1) {
      if (ys[i] === null) continue;
      const b = Math.min(BINS - 1, Math.floor((xs[i] - lo) / width));
      runSum[b] += ys[i];
      runCount[b] += 1;
      xSum[b] += xs[i];
      xCount[b] += 1;
    }
    for (let b = 0; b < BINS; b += 1) {
      if (!runCount[b]) continue;
      const v = runSum[b] / runCount[b];
      sum[b] += v;
      count[b] += 1;
      if (min[b] === null || v < min[b]) min[b] = v;
      if (max[b] === null || v > max[b]) max[b] = v;
    }
  }
  const out = { xs: [], mean: [], min: [], max: [] };
  for (let b = 0; b < BINS; b += 1) {
    if (!count[b]) continue;
    out.xs.push(xSum[b] / xCount[b]);
    out.mean.push(sum[b] / count[b]);
    out.min.push(min[b]);
    out.max.push(max[b]);
  }
  return out;
}

function groupOptions(select, runs) {
  if (!select) return;
  for (const kind of ["config", "params"]) {
    const keys = new Set();
    for (const run of runs) for (const key of Object.keys(run[kind] || {})) keys.add(key);
    for (const key of [...keys].sort()) {
      const distinct = new Set(runs.map((r) => String((r[kind] || {})[key])));
      if (distinct.size < 2 || distinct.size === runs.length) continue; // one group, or one per run
      const option = document.createElement("option");
      option.value = `${kind}:${key}`;
      option.textContent = `${kind === "config" ? "config" : "param"} ${key} (${distinct.size} groups)`;
      select.appendChild(option);
    }
  }
}

// Each panel's histories come in a request of its own (only=series), sent when the panel
// nears the viewport: the server reads (and downsamples) one key of every run at a time, its
// workers answer several panels in parallel, and the first panels draw before the last are
// read. The page itself brings the runs' ids, names and start times (the lines and the
// legend); one more request (only=runs) brings their params, config and summaries, for the
// grouping choices, parallel coordinates and the scatter.
// The URLs are built as frontend/search_views.py builds the preloaded ones (same string).
function keyUrl(config, key) {
  const url = new URL(config.dataUrl, window.location.href);
  url.searchParams.set("keys", key);
  url.searchParams.set("only", "series");
  return url.toString();
}

function runsUrl(config) {
  const url = new URL(config.dataUrl, window.location.href);
  url.searchParams.set("only", "runs");
  return url.toString();
}

export async function initCompare() {
  initKeyPicker();
  const source = document.getElementById("compare-config");
  const container = document.querySelector("[data-compare-charts]");
  if (!source) return;
  const config = JSON.parse(source.textContent);
  const note = document.querySelector("[data-compare-note]");
  const board = new Board();
  const groupSelect = document.getElementById("group-by");
  const series = {}; // run id -> key -> history
  // The runs as the page lists them (id, name, start_time); their details join later.
  const runs = config.runs.map((run) => ({ ...run }));
  const colors = runs.map((_, index) => seriesColor(index));
  const runEntries = runs.map((run, index) => ({ id: run.id, name: run.name, color: colors[index] }));
  const starts = new Map(runs.map((run) => [run.id, Date.parse(run.start_time)]));
  let groups = null;
  let downsampled = false;

  const history = (run, key) => {
    const s = series[run.id] && series[run.id][key];
    if (!s) return null;
    if (!s.parsed) s.parsed = { steps: s.steps, values: s.values.map(toNumber), times: s.timestamps, downsampled: s.downsampled, start: starts.get(run.id) };
    return s.parsed;
  };
  const sourcesFor = (key) => {
    if (!groups) {
      return runEntries
        .map((entry, index) => {
          const s = history(runs[index], key);
          return s ? { ...entry, ...s } : null;
        })
        .filter(Boolean);
    }
    return groups
      .map((group) => {
        const members = group.runs.map((run) => history(run, key)).filter(Boolean);
        if (!members.length) return null;
        return { id: group.id, name: group.name, color: group.color, aggregate: aggregate(members, board.settings) };
      })
      .filter(Boolean);
  };
  const setGroups = () => {
    const value = groupSelect?.value || "";
    groups = value ? groupRuns(runs, value) : null;
    board.hidden.clear();
    board.highlight = null;
    board.setLegend(groups || runEntries);
    if (container) container.dataset.grouped = value ? "true" : "false";
    board.redraw();
  };
  groupSelect?.addEventListener("change", setGroups);

  board.setLegend(runEntries);
  const getJson = async (url) => {
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    return response.json();
  };
  // The runs' details: grouping, parallel coordinates, the scatter.
  const details = async () => {
    if (!runs.length) return;
    try {
      const body = await getJson(runsUrl(config));
      const byId = new Map(body.runs.map((run) => [run.id, run]));
      for (const run of runs) Object.assign(run, byId.get(run.id) || {});
      groupOptions(groupSelect, runs);
      drawExtras(config, { ...body, runs }, colors);
    } catch {
      // the tables above still say everything; the charts do not need the details
    }
  };
  const failed = (message) => {
    if (container) container.dataset.rendered = "error";
    if (note) note.textContent = `Could not load the runs' histories (${message}).`;
  };
  const load = async (key) => {
    const body = await getJson(keyUrl(config, key));
    for (const [runId, byKey] of Object.entries(body.series)) {
      series[runId] = series[runId] || {};
      Object.assign(series[runId], byKey);
      downsampled = downsampled || Object.values(byKey).some((s) => s.downsampled);
    }
    if (note && downsampled) note.textContent = `Long histories are downsampled on the server (${body.method}); the CSV export has every point.`;
  };

  const figures = container ? [...container.querySelectorAll("[data-compare-chart]")] : [];
  if (!figures.length) {
    await details(); // no chart: the runs still feed parallel coordinates and the scatter
    return;
  }
  const panels = new Map();
  for (const el of figures) {
    const panel = new Panel(el, () => sourcesFor(el.dataset.key));
    board.add(panel);
    panels.set(el, panel);
  }
  const columnClass = container.className;
  container.className = "";
  new Sections(container, { columnClass });
  // The details are asked for once the panels in view are drawn: until then the server
  // answers their histories, and the browser draws them, without the details' query, the
  // parallel-coordinates chunk and the two charts below competing.
  let detailsAsked = false;
  const askDetails = () => {
    if (detailsAsked) return;
    detailsAsked = true;
    details();
  };
  const started = new WeakSet();
  let pending = 0;
  const start = (el) => {
    if (started.has(el)) return;
    started.add(el);
    pending += 1;
    load(el.dataset.key)
      .then(() => panels.get(el).draw())
      .catch((error) => failed(error.message))
      .finally(() => {
        pending -= 1;
        if (!pending) askDetails();
      });
  };
  // The panels in view now are asked for at once: the IntersectionObserver reports them only
  // after the next frame, which the layout of a 100-run page delays by up to half a second
  // while the server, done with the preloaded panels, would wait.
  for (const el of figures) {
    const box = el.getBoundingClientRect();
    if (box.height > 0 && box.top < window.innerHeight && box.bottom > 0) start(el);
  }
  drawWhenVisible(figures, start);
  if (!pending) askDetails(); // no panel in view (all filtered or folded away)
  container.dataset.rendered = "true";
}

async function drawExtras(config, data, colors) {
  const parallel = document.querySelector("[data-parallel]");
  const scatter = document.querySelector("[data-scatter]");
  if (!parallel && !scatter) return;
  const extra = await import("./compare-extra.js");
  const mountChart = (figure, option) => {
    const canvas = figure.querySelector("[data-chart-canvas]");
    const chart = echarts.getInstanceByDom(canvas) || echarts.init(canvas, null, { renderer: "canvas" });
    if (!figure.dataset.bound) {
      figure.dataset.bound = "true";
      chart.on("finished", () => {
        figure.dataset.rendered = "true";
      });
      resizeWithBox(chart, canvas);
      document.addEventListener("assay:themechange", () => chart.setOption(figure.currentOption(), { notMerge: true }));
    }
    figure.currentOption = option;
    chart.setOption(option(), { notMerge: true });
  };
  if (parallel && (config.parallel.params.length || config.parallel.metrics.length)) {
    mountChart(parallel, () => extra.parallelOption(config, data, colors));
  }
  if (scatter) initScatter(scatter, data, colors, extra, mountChart);
}

function initScatter(figure, data, colors, extra, mountChart) {
  const columns = [];
  for (const kind of ["config", "params"]) {
    const keys = new Set();
    for (const run of data.runs) for (const key of Object.keys(run[kind] || {})) keys.add(key);
    for (const key of [...keys].sort()) columns.push({ kind, key, label: `${kind === "config" ? "config" : "param"} ${key}` });
  }
  const metricKeys = new Set();
  for (const run of data.runs) for (const key of Object.keys(run.metrics)) metricKeys.add(key);
  for (const key of [...metricKeys].sort()) columns.push({ kind: "metrics", key, label: `${key} (last)` });
  const xSelect = figure.querySelector("#scatter-x");
  const ySelect = figure.querySelector("#scatter-y");
  if (!xSelect || !ySelect || columns.length < 1) return;
  columns.forEach((column, index) => {
    for (const select of [xSelect, ySelect]) {
      const option = document.createElement("option");
      option.value = String(index);
      option.textContent = column.label;
      select.appendChild(option);
    }
  });
  // Default: the first param or config column against the first metric.
  const firstMetric = columns.findIndex((c) => c.kind === "metrics");
  xSelect.value = "0";
  ySelect.value = String(firstMetric >= 0 ? firstMetric : Math.min(1, columns.length - 1));
  const draw = () => mountChart(figure, () => extra.scatterOption(data, colors, columns[Number(xSelect.value)], columns[Number(ySelect.value)]));
  xSelect.addEventListener("change", draw);
  ySelect.addEventListener("change", draw);
  draw();
}
