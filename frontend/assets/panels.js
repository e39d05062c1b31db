// Metric panels as the run and compare pages draw them: one "board" per page holds the
// panels, the chart settings (smoothing, x axis, log scale; remembered in localStorage), the
// one legend every panel shares (hover highlights a series everywhere, a click hides it
// everywhere), the sections by key prefix and the search box.
//
// Markup contract (frontend/templates/frontend/includes/chart_toolbar.html):
//   #chart-search (regex or text) [data-search-count]
//   #smoothing-kind (ema|avg) #smoothing (range 0-0.99) [data-smoothing-value]
//   #x-axis (step|time|relative) #log-scale (checkbox)
//   <ul data-chart-legend> the shared legend, filled here
// A panel is a <figure data-panel data-key="…"> with a <div data-chart-canvas>; once drawn it
// gets data-rendered="true", its zoom is data-zoomed="true" until reset.
//
// # SECURITY: keys and run names are user-written: they reach the page through textContent
// and canvas text only; nothing here assigns innerHTML.
import { baseTooltip, echarts, formatNumber, palette, resizeWithBox, tooltipBox } from "./chart-core.js";

const STORE = "assay:chart-settings";
const DEFAULTS = { smoothing: "ema", weight: 0, x: "step", log: false };
const TOOLTIP_ROWS = 20;

// Okabe-Ito first (colour-blind friendly), then hues a golden angle apart: run i has the same
// colour in every panel, and 100 runs stay distinguishable side by side.
const FIRST = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#882255", "#999933"];
export function seriesColor(index) {
  if (index < FIRST.length) return FIRST[index];
  const hue = Math.round((index * 137.508) % 360);
  const light = 38 + ((index * 7) % 3) * 8;
  return `hsl(${hue}, 65%, ${light}%)`;
}

export function loadSettings() {
  try {
    return { ...DEFAULTS, ...JSON.parse(localStorage.getItem(STORE) || "{}") };
  } catch {
    return { ...DEFAULTS };
  }
}

function saveSettings(settings) {
  try {
    localStorage.setItem(STORE, JSON.stringify(settings));
  } catch {
    // private mode: settings last for the page
  }
}

export function toNumber(value) {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

// --- smoothing: gaps (NaN/±Inf) stay gaps -------------------------------------------------------

export function ema(values, weight) {
  // Exponential moving average debiased as TensorBoard's.
  let last = 0;
  let count = 0;
  return values.map((v) => {
    if (v === null) return null;
    last = last * weight + (1 - weight) * v;
    count += 1;
    return last / (1 - Math.pow(weight, count));
  });
}

export function runningAverage(values, window) {
  const out = new Array(values.length);
  const kept = [];
  let sum = 0;
  for (let i = 0; i < values.length; i += 1) {
    const v = values[i];
    if (v === null) {
      out[i] = null;
      continue;
    }
    kept.push(v);
    sum += v;
    if (kept.length > window) sum -= kept.shift();
    out[i] = sum / kept.length;
  }
  return out;
}

export function smoothed(values, settings) {
  if (!settings.weight) return null;
  if (settings.smoothing === "avg") return runningAverage(values, averageWindow(settings.weight));
  return ema(values, settings.weight);
}

function averageWindow(weight) {
  return Math.max(2, Math.round(weight * 100));
}

// Min and max per bucket of consecutive points: the band behind a downsampled line (the
// server's MinMaxLTTB keeps each bucket's extremes, so the band spans the raw range).
export function envelope(xs, ys, buckets) {
  const lower = [];
  const upper = [];
  const size = Math.max(1, Math.ceil(xs.length / buckets));
  for (let start = 0; start < xs.length; start += size) {
    let lo = Infinity;
    let hi = -Infinity;
    const end = Math.min(start + size, xs.length);
    for (let i = start; i < end; i += 1) {
      const v = ys[i];
      if (v === null) continue;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    const x = xs[Math.floor((start + end - 1) / 2)];
    if (lo === Infinity) {
      lower.push([x, null]);
      upper.push([x, null]);
    } else {
      lower.push([x, lo]);
      upper.push([x, hi - lo]);
    }
  }
  return { lower, upper };
}

function relativeLabel(seconds) {
  const abs = Math.abs(seconds);
  if (abs < 120) return `${Number(seconds.toPrecision(3))}s`;
  if (abs < 7200) return `${Number((seconds / 60).toPrecision(3))}m`;
  return `${Number((seconds / 3600).toPrecision(3))}h`;
}

// The x values of one series in the chosen mode: steps, wall time (ms) or seconds since the
// series' first point.
export function xValues(series, mode) {
  if (mode === "time") return series.times;
  if (mode === "relative") {
    const t0 = series.start ?? (series.times.length ? series.times[0] : 0);
    return series.times.map((t) => (t - t0) / 1000);
  }
  return series.steps;
}

function windowed(points, zoom) {
  if (!zoom) return points;
  const [lo, hi] = zoom;
  let first = points.findIndex((p) => p[0] >= lo);
  if (first === -1) return [];
  let last = first;
  while (last < points.length && points[last][0] <= hi) last += 1;
  // One point beyond each edge keeps the line reaching the axis ends.
  first = Math.max(0, first - 1);
  last = Math.min(points.length, last + 1);
  return points.slice(first, last);
}

// --- one panel's option -------------------------------------------------------------------------

// A series to draw: {id, name, color, points: [[x, y]…], smooth: [[x, y]…]|null, band:
// {lower, upper}|null}. Only "main" lines (the smoothed one, or the raw one when not smoothed)
// are in the tooltip.
function lineSeries(s, { dim, width }) {
  const out = [];
  const faint = Boolean(s.smooth);
  if (s.band) {
    out.push({
      id: `band-lo:${s.id}`,
      type: "line",
      // [y, x] with encode: ECharts stacks the first numeric dimension, which must be y.
      data: s.band.lower.map(([x, y]) => [y, x]),
      encode: { x: 1, y: 0 },
      stack: `band:${s.id}`,
      symbol: "none",
      showSymbol: false,
      lineStyle: { opacity: 0 },
      silent: true,
      connectNulls: false,
      tooltip: { show: false },
    });
    out.push({
      id: `band-hi:${s.id}`,
      type: "line",
      data: s.band.upper.map(([x, y]) => [y, x]),
      encode: { x: 1, y: 0 },
      stack: `band:${s.id}`,
      symbol: "none",
      showSymbol: false,
      lineStyle: { opacity: 0 },
      areaStyle: { color: s.color, opacity: dim ? 0.03 : 0.14 },
      silent: true,
      connectNulls: false,
      tooltip: { show: false },
    });
  }
  if (s.points) {
    out.push({
      id: faint ? `raw:${s.id}` : `main:${s.id}`,
      name: s.name,
      type: "line",
      data: s.points,
      // No symbols on lines: with showSymbol false ECharts also skips diffing every point
      // against the previous draw (a third of a 100-line panel's drawing time). A lone
      // point has nothing else to show it.
      symbol: s.points.length < 2 ? "circle" : "none",
      showSymbol: s.points.length < 2,
      symbolSize: 5,
      connectNulls: false, // NaN and ±Inf are gaps, not zeros
      silent: faint,
      lineStyle: { width: faint ? 1 : width, color: s.color, opacity: dim ? 0.12 : faint ? 0.25 : 1 },
      itemStyle: { color: s.color, opacity: dim ? 0.12 : 1 },
      tooltip: faint ? { show: false } : undefined,
    });
  }
  if (s.smooth) {
    out.push({
      id: `main:${s.id}`,
      name: s.name,
      type: "line",
      data: s.smooth,
      symbol: "none",
      showSymbol: false,
      connectNulls: false,
      lineStyle: { width, color: s.color, opacity: dim ? 0.12 : 1 },
      itemStyle: { color: s.color },
    });
  }
  return out;
}

export function panelOption(key, drawn, settings, { highlight, zoom }) {
  const colors = palette();
  const many = drawn.length > 20;
  const byId = new Map(drawn.map((s) => [`main:${s.id}`, s]));
  const xLabel = settings.x === "time" ? undefined : settings.x === "relative" ? relativeLabel : (v) => formatNumber(v);
  return {
    animation: false,
    grid: { left: 8, right: 16, top: 14, bottom: 4, outerBoundsMode: "same", outerBoundsContain: "axisLabel" },
    tooltip: {
      ...baseTooltip(colors),
      trigger: "axis",
      axisPointer: { type: "line", lineStyle: { color: colors.muted } },
      formatter: (params) => {
        const list = (Array.isArray(params) ? params : [params]).filter((p) => byId.has(p.seriesId));
        if (!list.length) return "";
        const x = list[0].data[0];
        const title =
          settings.x === "time" ? new Date(x).toLocaleString() : settings.x === "relative" ? `${relativeLabel(x)} since start` : `step ${x}`;
        list.sort((a, b) => (b.data[1] ?? -Infinity) - (a.data[1] ?? -Infinity));
        const rows = list.slice(0, TOOLTIP_ROWS).map((p) => [byId.get(p.seriesId).name, formatNumber(p.data[1] ?? "NaN/∞ (gap)"), p.color]);
        return tooltipBox(title, rows, colors, Math.max(0, list.length - TOOLTIP_ROWS));
      },
    },
    xAxis: {
      type: settings.x === "time" ? "time" : "value",
      min: zoom ? zoom[0] : "dataMin",
      max: zoom ? zoom[1] : "dataMax",
      axisLine: { lineStyle: { color: colors.border } },
      axisLabel: { color: colors.muted, fontSize: 11, hideOverlap: true, formatter: xLabel },
      splitLine: { show: false },
    },
    yAxis: {
      type: settings.log ? "log" : "value",
      scale: true,
      axisLabel: { color: colors.muted, fontSize: 11, formatter: (v) => formatNumber(v) },
      splitLine: { lineStyle: { color: colors.border, type: "dashed" } },
    },
    series: drawn.flatMap((s) =>
      lineSeries(s, { dim: highlight !== null && highlight !== s.id, width: highlight === s.id ? 2.6 : many ? 1.2 : 1.6 }),
    ),
  };
}

// Turns a run's (or a group's) data into what panelOption draws under the settings.
// source: {id, name, color, steps, values, times, downsampled} (values may be null: gaps)
//      or {id, name, color, aggregate: {xs, mean, min, max}} for a group of runs.
// A band is drawn behind a downsampled run's line only when few lines share the panel (with
// many, bands would hide each other); groups always have theirs.
export const BAND_MAX_SERIES = 10;

export function prepare(source, settings, zoom, { band: withBand = true } = {}) {
  const positive = (v) => (settings.log && v !== null && v <= 0 ? null : v);
  if (source.aggregate) {
    const { xs, mean, min, max } = source.aggregate;
    const points = windowed(xs.map((x, i) => [x, positive(mean[i])]), zoom);
    const lo = xs.map((x, i) => [x, positive(min[i])]);
    const band = {
      lower: windowed(lo, zoom),
      upper: windowed(
        xs.map((x, i) => [x, lo[i][1] === null || max[i] === null ? null : max[i] - min[i]]),
        zoom,
      ),
    };
    return { id: source.id, name: source.name, color: source.color, points, smooth: null, band };
  }
  const xs = xValues(source, settings.x);
  const values = source.values.map(positive);
  const raw = xs.map((x, i) => [x, values[i]]);
  const sm = smoothed(values, settings);
  const points = windowed(raw, zoom);
  const smooth = sm ? windowed(xs.map((x, i) => [x, sm[i]]), zoom) : null;
  let band = null;
  if (withBand && source.downsampled && points.length > 40) {
    const buckets = Math.max(20, Math.floor(points.length / 8));
    band = envelope(
      points.map((p) => p[0]),
      points.map((p) => p[1]),
      buckets,
    );
  }
  return { id: source.id, name: source.name, color: source.color, points, smooth, band };
}

// --- the board: panels, settings, legend ---------------------------------------------------------

export class Board {
  constructor() {
    this.settings = loadSettings();
    this.panels = [];
    this.hidden = new Set();
    this.highlight = null;
    this.legend = []; // [{id, name, color}]
    this.bindControls();
    document.addEventListener("assay:themechange", () => this.redraw());
  }

  bindControls() {
    const kind = document.getElementById("smoothing-kind");
    const weight = document.getElementById("smoothing");
    const x = document.getElementById("x-axis");
    const log = document.getElementById("log-scale");
    if (kind) kind.value = this.settings.smoothing;
    if (weight) weight.value = String(this.settings.weight);
    if (x) x.value = this.settings.x;
    if (log) log.checked = this.settings.log;
    this.showSmoothing();
    const read = () => {
      const before = this.settings.x;
      this.settings = {
        smoothing: kind?.value || "ema",
        weight: Number(weight?.value || 0),
        x: x?.value || "step",
        log: Boolean(log?.checked),
      };
      saveSettings(this.settings);
      this.showSmoothing();
      if (before !== this.settings.x) for (const panel of this.panels) panel.zoom = null; // other units
      this.redraw();
    };
    for (const control of [kind, weight, x, log]) control?.addEventListener("input", read);
    for (const control of [kind, x, log]) control?.addEventListener("change", read);
  }

  showSmoothing() {
    const label = document.querySelector("[data-smoothing-value]");
    if (!label) return;
    const { weight, smoothing } = this.settings;
    label.textContent = smoothing === "avg" && weight ? `${averageWindow(weight)} pts` : weight.toFixed(2);
  }

  add(panel) {
    this.panels.push(panel);
    panel.board = this;
  }

  redraw() {
    for (const panel of this.panels) if (panel.chart) panel.draw();
  }

  // The legend: an HTML list (wraps; never pages). Hover highlights the series in every
  // panel, a click (or Enter/Space: they are buttons) hides or shows it in every panel.
  setLegend(entries) {
    this.legend = entries;
    const list = document.querySelector("[data-chart-legend]");
    if (!list) return;
    list.replaceChildren();
    list.hidden = entries.length === 0;
    for (const entry of entries) {
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "compare-legend-item";
      button.dataset.seriesId = entry.id;
      button.setAttribute("aria-pressed", this.hidden.has(entry.id) ? "false" : "true");
      button.title = `${entry.name}: select to hide or show it in every chart`;
      const swatch = document.createElement("span");
      swatch.className = "compare-legend-swatch";
      swatch.style.borderTop = `3px solid ${entry.color}`;
      const name = document.createElement("span");
      name.className = "compare-legend-name";
      name.textContent = entry.name;
      button.append(swatch, name);
      button.addEventListener("click", () => {
        const hide = !this.hidden.has(entry.id);
        if (hide) this.hidden.add(entry.id);
        else this.hidden.delete(entry.id);
        button.setAttribute("aria-pressed", hide ? "false" : "true");
        this.redraw();
      });
      const on = () => this.setHighlight(entry.id);
      const off = () => this.setHighlight(null);
      button.addEventListener("mouseenter", on);
      button.addEventListener("focus", on);
      button.addEventListener("mouseleave", off);
      button.addEventListener("blur", off);
      item.appendChild(button);
      list.appendChild(item);
    }
  }

  setHighlight(id) {
    if (this.highlight === id) return;
    this.highlight = id;
    this.redraw();
  }
}

// --- one panel: lazy drawing, drag zoom, keyboard zoom, full screen ------------------------------

export class Panel {
  // sources(): the series sources to draw (see prepare)
  constructor(el, sources) {
    this.el = el;
    this.key = el.dataset.key;
    this.canvas = el.querySelector("[data-chart-canvas]");
    this.sources = sources;
    this.chart = null;
    this.zoom = null;
    this.board = null;
    this.addButtons();
  }

  addButtons() {
    const caption = this.el.querySelector("figcaption");
    if (!caption || caption.querySelector(".panel-tools")) return;
    const tools = document.createElement("span");
    tools.className = "panel-tools";
    const reset = document.createElement("button");
    reset.type = "button";
    reset.className = "btn btn-link btn-sm panel-tool";
    reset.textContent = "Reset zoom";
    reset.hidden = true;
    reset.dataset.resetZoom = "";
    reset.addEventListener("click", () => this.setZoom(null));
    const full = document.createElement("button");
    full.type = "button";
    full.className = "btn btn-link btn-sm panel-tool";
    full.textContent = "Full screen";
    full.dataset.fullscreen = "";
    full.setAttribute("aria-pressed", "false");
    full.addEventListener("click", () => this.toggleFullscreen());
    tools.append(reset, full);
    caption.appendChild(tools);
    this.resetButton = reset;
    this.fullButton = full;
  }

  toggleFullscreen(force) {
    const on = force ?? !this.el.classList.contains("is-fullscreen");
    this.el.classList.toggle("is-fullscreen", on);
    document.body.classList.toggle("has-fullscreen-chart", on);
    this.fullButton.textContent = on ? "Exit full screen" : "Full screen";
    this.fullButton.setAttribute("aria-pressed", on ? "true" : "false");
    if (on) {
      this.escape = (event) => {
        if (event.key === "Escape") this.toggleFullscreen(false);
      };
      document.addEventListener("keydown", this.escape);
      this.fullButton.focus();
    } else if (this.escape) {
      document.removeEventListener("keydown", this.escape);
    }
    this.chart?.resize();
  }

  setZoom(zoom) {
    this.zoom = zoom;
    this.el.dataset.zoomed = zoom ? "true" : "false";
    if (this.resetButton) this.resetButton.hidden = !zoom;
    this.draw();
  }

  mount() {
    if (this.chart) return;
    this.chart = echarts.init(this.canvas, null, { renderer: "canvas" });
    this.chart.on("finished", () => {
      this.el.dataset.rendered = "true";
    });
    resizeWithBox(this.chart, this.canvas);
    this.bindZoom();
  }

  draw() {
    const started = performance.now();
    this.mount();
    const board = this.board;
    const settings = board.settings;
    const shown = this.sources().filter((s) => !board.hidden.has(s.id));
    const band = shown.length <= BAND_MAX_SERIES;
    const drawn = shown.map((s) => prepare(s, settings, this.zoom, { band }));
    this.chart.setOption(
      panelOption(this.key, drawn, settings, { highlight: board.highlight, zoom: this.zoom }),
      { notMerge: true, lazyUpdate: false },
    );
    // benchmarks/charts.py reads these (the time each panel's drawing took).
    performance.measure(`assay:draw ${this.key}`, { start: started });
  }

  // Drag across the plot to zoom the x axis to that range; double-click or "Reset zoom" undoes
  // it. The canvas is focusable: + and - zoom around the middle, ←/→ pan, 0 or Escape reset.
  bindZoom() {
    const box = this.canvas;
    box.tabIndex = 0;
    const band = document.createElement("div");
    band.className = "zoom-band";
    band.hidden = true;
    box.appendChild(band);
    let start = null;
    const local = (event) => {
      const rect = box.getBoundingClientRect();
      return [event.clientX - rect.left, event.clientY - rect.top];
    };
    box.addEventListener("pointerdown", (event) => {
      if (event.button !== 0) return;
      const at = local(event);
      if (!this.chart.containPixel({ gridIndex: 0 }, at)) return;
      start = at;
    });
    box.addEventListener("pointermove", (event) => {
      if (!start) return;
      const [x] = local(event);
      if (Math.abs(x - start[0]) < 4) return;
      band.hidden = false;
      band.style.left = `${Math.min(x, start[0])}px`;
      band.style.width = `${Math.abs(x - start[0])}px`;
    });
    const finish = (event) => {
      if (!start) return;
      const [x] = local(event);
      const from = start[0];
      start = null;
      band.hidden = true;
      if (Math.abs(x - from) < 6) return;
      const a = this.chart.convertFromPixel({ gridIndex: 0 }, [Math.min(x, from), 0])[0];
      const b = this.chart.convertFromPixel({ gridIndex: 0 }, [Math.max(x, from), 0])[0];
      if (Number.isFinite(a) && Number.isFinite(b) && b > a) this.setZoom([a, b]);
    };
    box.addEventListener("pointerup", finish);
    box.addEventListener("pointerleave", (event) => {
      if (start) finish(event);
    });
    box.addEventListener("dblclick", () => this.setZoom(null));
    box.addEventListener("keydown", (event) => {
      const range = this.zoom || this.extent();
      if (!range) return;
      const [lo, hi] = range;
      const width = hi - lo;
      const mid = (lo + hi) / 2;
      let next;
      if (event.key === "+" || event.key === "=") next = [mid - width / 4, mid + width / 4];
      else if (event.key === "-") next = [mid - width, mid + width];
      else if (event.key === "ArrowLeft") next = [lo - width / 4, hi - width / 4];
      else if (event.key === "ArrowRight") next = [lo + width / 4, hi + width / 4];
      else if (event.key === "0" || (event.key === "Escape" && this.zoom)) next = null;
      else return;
      event.preventDefault();
      this.setZoom(next);
    });
  }

  extent() {
    const axis = this.chart?.getModel()?.getComponent("xAxis", 0)?.axis;
    if (!axis) return null;
    const [lo, hi] = axis.scale.getExtent();
    return Number.isFinite(lo) && Number.isFinite(hi) && hi > lo ? [lo, hi] : null;
  }
}

// Draws each panel when it nears the viewport (charts below the fold, or in a closed
// section, cost nothing until seen).
export function drawWhenVisible(items, draw, margin = "400px") {
  const observer = new IntersectionObserver(
    (entries) => {
      for (const entry of entries) {
        if (!entry.isIntersecting) continue;
        observer.unobserve(entry.target);
        draw(entry.target);
      }
    },
    { rootMargin: `${margin} 0px` },
  );
  for (const el of items) observer.observe(el);
  return observer;
}

// --- sections by key prefix and the search box ------------------------------------------------------

const SYSTEM = "system";

export function prefixOf(key) {
  const slash = key.indexOf("/");
  return slash > 0 ? key.slice(0, slash) : "";
}

function sectionOrder(a, b) {
  // Keys without a prefix first, system/ last, the others alphabetically.
  const rank = (p) => (p === "" ? 0 : p === SYSTEM ? 2 : 1);
  return rank(a) - rank(b) || a.localeCompare(b);
}

// Groups the panels' columns of `root` into <details> sections by key prefix. Each column is
// an element holding one [data-key] panel. system/ comes last and starts closed.
export class Sections {
  constructor(root, { columnClass }) {
    this.root = root;
    this.columnClass = columnClass;
    this.sections = new Map(); // prefix -> {details, grid, count}
    root.classList.add("chart-sections");
    const columns = [...root.children];
    for (const column of columns) this.place(column);
    this.bindSearch();
  }

  section(prefix) {
    let section = this.sections.get(prefix);
    if (section) return section;
    const details = document.createElement("details");
    details.className = "chart-section";
    details.dataset.section = prefix;
    details.open = prefix !== SYSTEM;
    const summary = document.createElement("summary");
    summary.className = "chart-section-title";
    const name = document.createElement("span");
    name.className = "mono";
    name.textContent = prefix ? `${prefix}/` : "(no prefix)";
    const count = document.createElement("span");
    count.className = "chart-section-count text-body-secondary";
    summary.append(name, " ", count);
    const grid = document.createElement("div");
    grid.className = this.columnClass;
    details.append(summary, grid);
    section = { details, grid, count, prefix };
    this.sections.set(prefix, section);
    // Keep the sections in order.
    const after = [...this.sections.keys()].sort(sectionOrder);
    const next = after.slice(after.indexOf(prefix) + 1).map((p) => this.sections.get(p).details);
    const before = next.find((d) => d.parentNode === this.root);
    this.root.insertBefore(details, before || null);
    return section;
  }

  place(column) {
    const panel = column.matches("[data-key]") ? column : column.querySelector("[data-key]");
    if (!panel) return;
    const section = this.section(prefixOf(panel.dataset.key));
    section.grid.appendChild(column);
    this.count();
    if (this.filter) this.apply();
  }

  count() {
    for (const section of this.sections.values()) {
      const all = section.grid.children.length;
      const shown = [...section.grid.children].filter((c) => !c.hidden).length;
      section.count.textContent = shown === all ? `(${all})` : `(${shown} of ${all})`;
    }
  }

  bindSearch() {
    const input = document.getElementById("chart-search");
    if (!input) return;
    this.input = input;
    input.addEventListener("input", () => {
      const text = input.value.trim();
      if (!text) this.filter = null;
      else {
        try {
          this.filter = new RegExp(text, "i");
          input.setCustomValidity("");
        } catch {
          const lower = text.toLowerCase();
          this.filter = { test: (key) => key.toLowerCase().includes(lower) }; // not a regex: plain text
        }
      }
      this.apply();
    });
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter") event.preventDefault();
    });
  }

  // Hides the panels whose key does not match; while searching, the sections holding a
  // match open (and their earlier state comes back when the search is cleared).
  apply() {
    let shown = 0;
    let all = 0;
    for (const section of this.sections.values()) {
      let matches = 0;
      for (const column of section.grid.children) {
        const key = (column.matches("[data-key]") ? column : column.querySelector("[data-key]")).dataset.key;
        const ok = !this.filter || this.filter.test(key);
        column.hidden = !ok;
        matches += ok;
        all += 1;
      }
      shown += matches;
      section.details.hidden = matches === 0;
      if (this.filter) {
        if (section.wasOpen === undefined) section.wasOpen = section.details.open;
        section.details.open = matches > 0;
      } else if (section.wasOpen !== undefined) {
        section.details.open = section.wasOpen;
        section.wasOpen = undefined;
      }
    }
    this.count();
    const note = document.querySelector("[data-search-count]");
    if (note) note.textContent = this.filter ? `${shown} of ${all} panels match` : "";
  }
}
