// The compare page's charts. One request (/api/v1/compare/) brings every run's downsampled
// histories; charts redraw locally when smoothing, the x axis or the log scale change.
//
// Markup contract (frontend/templates/frontend/compare.html):
//   <script type="application/json" id="compare-config">{dataUrl, keys, runs, parallel}</script>
//   <ul data-compare-legend></ul>   the one legend of every chart (filled here; never paginates)
//   <div data-compare-charts> … one <div data-compare-chart data-key="…"> per key … </div>
//   <form data-key-picker>  checkboxes name=keys, [data-key-search], [data-key-select], [data-key-count]
//   controls: #smoothing (range 0-0.99), #x-axis (step|time|relative), #log-scale (checkbox)
//   <div data-parallel> <div data-chart-canvas></div> </div>
// Containers get data-rendered="true" once drawn (the browser tests wait for it).
//
// # SECURITY: run names and keys are user-written: legends and axis names are canvas text,
// notes use textContent; nothing assigns innerHTML.
import { LineChart, ParallelChart } from "echarts/charts";
import { GridComponent, ParallelComponent, TooltipComponent } from "echarts/components";
import * as echarts from "echarts/core";
import { CanvasRenderer } from "echarts/renderers";

echarts.use([LineChart, ParallelChart, GridComponent, ParallelComponent, TooltipComponent, CanvasRenderer]);

// Colour-blind-friendly (Okabe-Ito plus greys); the legend also names every run.
const COLORS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000", "#999999", "#882255"];
const DASHES = ["solid", "dashed", "dotted"];

function cssVar(name, fallback) {
  const value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return value || fallback;
}

function toNumber(value) {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

function smooth(values, weight) {
  // Exponential moving average with debiasing (as TensorBoard); gaps stay gaps.
  if (!weight) return values;
  let last = 0;
  let count = 0;
  return values.map((v) => {
    if (v === null) return null;
    last = last * weight + (1 - weight) * v;
    count += 1;
    return last / (1 - Math.pow(weight, count));
  });
}

function lineStyle(index) {
  return { color: COLORS[index % COLORS.length], type: DASHES[Math.floor(index / COLORS.length) % DASHES.length] };
}

function lineOption(key, runs, series, settings, hidden) {
  const text = cssVar("--bs-body-color", "#212529");
  const muted = cssVar("--bs-secondary-color", "#6c757d");
  const border = cssVar("--bs-border-color", "#dee2e6");
  const xName = { step: "step", time: "time", relative: "seconds since start" }[settings.x];
  return {
    animation: false,
    color: COLORS,
    grid: { left: 8, right: 16, top: 16, bottom: 4, outerBoundsMode: "same", outerBoundsContain: "axisLabel" },
    tooltip: { trigger: "axis", confine: true, valueFormatter: (v) => (v === null || v === undefined ? "—" : Number(v).toPrecision(5)) },
    xAxis: {
      type: settings.x === "time" ? "time" : "value",
      name: xName,
      nameLocation: "end",
      nameTextStyle: { color: muted, fontSize: 11 },
      min: "dataMin",
      max: "dataMax",
      axisLabel: { color: muted, fontSize: 11, hideOverlap: true },
      axisLine: { lineStyle: { color: border } },
      splitLine: { show: false },
    },
    yAxis: {
      type: settings.log ? "log" : "value",
      scale: true,
      axisLabel: { color: muted, fontSize: 11 },
      splitLine: { lineStyle: { color: border, type: "dashed" } },
    },
    series: runs
      .map((run, index) => {
        const s = series[run.id] && series[run.id][key];
        if (!s || hidden.has(run.id)) return null;
        const values = smooth(s.values.map(toNumber), settings.smoothing).map((v) => (settings.log && v !== null && v <= 0 ? null : v));
        const t0 = s.timestamps.length ? s.timestamps[0] : 0;
        const xs = settings.x === "step" ? s.steps : settings.x === "time" ? s.timestamps : s.timestamps.map((t) => (t - t0) / 1000);
        return {
          name: run.name,
          type: "line",
          data: xs.map((x, i) => [x, values[i]]),
          showSymbol: xs.length < 2,
          connectNulls: false,
          itemStyle: { color: lineStyle(index).color },
          lineStyle: { width: 1.5, ...lineStyle(index) },
        };
      })
      .filter(Boolean),
  };
}

function parallelOption(config, data) {
  const text = cssVar("--bs-body-color", "#212529");
  const muted = cssVar("--bs-secondary-color", "#6c757d");
  const dims = [
    ...config.parallel.params.map((p) => ({ kind: p.source === "config" ? "config" : "params", key: p.key })),
    ...config.parallel.metrics.map((key) => ({ kind: "metrics", key })),
  ];
  const axes = dims.map((d, dim) => {
    const values = data.runs.map((r) => (d.kind === "metrics" ? r.metrics[d.key] && r.metrics[d.key].last : (r[d.kind] || {})[d.key]));
    const numeric = values.every((v) => v === undefined || v === null || (d.kind === "metrics" ? typeof v === "number" : !Number.isNaN(Number(v)) && v !== ""));
    const axis = { dim, name: `${{ params: "p:", config: "c:", metrics: "m:" }[d.kind]}${d.key}`, nameTextStyle: { color: text, fontSize: 11 }, axisLabel: { color: muted, fontSize: 10 } };
    if (!numeric) {
      axis.type = "category";
      axis.data = [...new Set(values.filter((v) => v !== undefined && v !== null).map(String))];
    } else {
      // Each run is its own series; the axis range must cover all of them.
      const present = values.filter((v) => v !== undefined && v !== null).map(Number).filter(Number.isFinite);
      if (present.length) {
        const lo = Math.min(...present);
        const hi = Math.max(...present);
        const pad = hi > lo ? (hi - lo) * 0.05 : Math.abs(hi) * 0.05 || 1;
        axis.min = lo - pad;
        axis.max = hi + pad;
        axis.axisLabel.formatter = (v) => Number(v.toPrecision(3)).toString();
      }
    }
    return { axis, numeric, values };
  });
  return {
    animation: false,
    color: COLORS,
    parallel: { left: 60, right: 80, top: 40, bottom: 30 },
    parallelAxis: axes.map((a) => a.axis),
    tooltip: { trigger: "item", confine: true },
    series: data.runs.map((run, index) => ({
      name: run.name,
      type: "parallel",
      lineStyle: { width: 2, opacity: 0.8, ...lineStyle(index) },
      data: [axes.map((a) => (a.values[index] === undefined || a.values[index] === null ? null : a.numeric ? Number(a.values[index]) : String(a.values[index])))],
    })),
  };
}

// One legend for every chart, as HTML: it wraps (and scrolls past a few lines) instead of
// paging, and a click hides or shows a run in every chart.
function buildLegend(list, runs, hidden, redraw) {
  if (!list) return;
  list.replaceChildren();
  runs.forEach((run, index) => {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "compare-legend-item";
    button.setAttribute("aria-pressed", "true");
    button.title = `${run.name}: select to hide or show it in the charts`;
    const swatch = document.createElement("span");
    swatch.className = "compare-legend-swatch";
    const style = lineStyle(index);
    swatch.style.borderTop = `3px ${style.type} ${style.color}`;
    const name = document.createElement("span");
    name.className = "compare-legend-name";
    name.textContent = run.name;
    button.append(swatch, name);
    button.addEventListener("click", () => {
      const hide = !hidden.has(run.id);
      if (hide) hidden.add(run.id);
      else hidden.delete(run.id);
      button.setAttribute("aria-pressed", hide ? "false" : "true");
      redraw();
    });
    item.appendChild(button);
    list.appendChild(item);
  });
}

// The key picker: find keys by text, select the shown ones or none, count what is ticked.
function initKeyPicker() {
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

function settingsFromControls() {
  return {
    smoothing: Number(document.getElementById("smoothing")?.value || 0),
    x: document.getElementById("x-axis")?.value || "step",
    log: Boolean(document.getElementById("log-scale")?.checked),
  };
}

export async function initCompare() {
  initKeyPicker();
  const source = document.getElementById("compare-config");
  const container = document.querySelector("[data-compare-charts]");
  if (!source || !container) return;
  const config = JSON.parse(source.textContent);
  const note = document.querySelector("[data-compare-note]");
  let data;
  try {
    const response = await fetch(config.dataUrl, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    data = await response.json();
  } catch (error) {
    container.dataset.rendered = "error";
    if (note) note.textContent = `Could not load the runs' histories (${error.message}).`;
    return;
  }
  const charts = [];
  for (const el of container.querySelectorAll("[data-compare-chart]")) {
    const canvas = el.querySelector("[data-chart-canvas]");
    const chart = echarts.init(canvas, null, { renderer: "canvas" });
    chart.on("finished", () => {
      el.dataset.rendered = "true";
    });
    new ResizeObserver(() => chart.resize()).observe(canvas);
    charts.push({ el, chart, key: el.dataset.key });
  }
  const hidden = new Set();
  const draw = () => {
    const settings = settingsFromControls();
    const label = document.querySelector("[data-smoothing-value]");
    if (label) label.textContent = settings.smoothing.toFixed(2);
    for (const { chart, key } of charts) chart.setOption(lineOption(key, data.runs, data.series, settings, hidden), { notMerge: true });
  };
  buildLegend(document.querySelector("[data-compare-legend]"), data.runs, hidden, draw);
  draw();
  container.dataset.rendered = "true";
  for (const id of ["smoothing", "x-axis", "log-scale"]) document.getElementById(id)?.addEventListener("input", draw);
  document.addEventListener("assay:themechange", draw);
  if (note) {
    const down = Object.values(data.series).some((byKey) => Object.values(byKey).some((s) => s.downsampled));
    note.textContent = down ? `Long histories are downsampled on the server (${data.method}); the CSV export has every point.` : "";
  }

  const parallel = document.querySelector("[data-parallel]");
  if (parallel && (config.parallel.params.length || config.parallel.metrics.length)) {
    const canvas = parallel.querySelector("[data-chart-canvas]");
    const chart = echarts.init(canvas, null, { renderer: "canvas" });
    chart.on("finished", () => {
      parallel.dataset.rendered = "true";
    });
    new ResizeObserver(() => chart.resize()).observe(canvas);
    chart.setOption(parallelOption(config, data));
  }
}
