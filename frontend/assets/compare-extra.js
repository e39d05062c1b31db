// The compare page's rarer charts, loaded on demand: parallel coordinates of the differing
// params and the summary metrics, and a scatter of any two columns.
//
// # SECURITY: run names, param values and keys are user-written: axis names and labels are
// canvas text, tooltips DOM nodes filled with textContent.
import { install as ParallelChart } from "echarts/lib/chart/parallel/install.js";
import { install as ScatterChart } from "echarts/lib/chart/scatter/install.js";
import { install as ParallelComponent } from "echarts/lib/component/parallel/install.js";
import { baseTooltip, echarts, formatNumber, palette, tooltipBox } from "./chart-core.js";

echarts.use([ParallelChart, ParallelComponent, ScatterChart]);

export function parallelOption(config, data, colors) {
  const { text, muted } = palette();
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
    parallel: { left: 60, right: 80, top: 40, bottom: 30 },
    parallelAxis: axes.map((a) => a.axis),
    tooltip: { trigger: "item", confine: true },
    series: data.runs.map((run, index) => ({
      name: run.name,
      type: "parallel",
      lineStyle: { width: data.runs.length > 30 ? 1 : 2, opacity: 0.8, color: colors[index] },
      data: [axes.map((a) => (a.values[index] === undefined || a.values[index] === null ? null : a.numeric ? Number(a.values[index]) : String(a.values[index])))],
    })),
  };
}

// A column of the runs: {label, kind: params|config|metrics, key}; its value per run (a
// metric's last value, a param's or config's text as a number when it is one).
export function columnValue(run, column) {
  if (column.kind === "metrics") {
    const m = run.metrics[column.key];
    return m && typeof m.last === "number" ? m.last : null;
  }
  const text = (run[column.kind] || {})[column.key];
  if (text === undefined || text === null || text === "") return null;
  const n = Number(text);
  return Number.isFinite(n) ? n : String(text);
}

export function scatterOption(data, colors, xColumn, yColumn) {
  const c = palette();
  const categories = (column) => {
    const values = data.runs.map((r) => columnValue(r, column)).filter((v) => v !== null);
    return values.some((v) => typeof v === "string") ? [...new Set(values.map(String))] : null;
  };
  const xCats = categories(xColumn);
  const yCats = categories(yColumn);
  const axis = (column, cats) => ({
    type: cats ? "category" : "value",
    data: cats || undefined,
    scale: true,
    name: column.label,
    nameLocation: "middle",
    nameGap: 28,
    nameTextStyle: { color: c.muted, fontSize: 11 },
    axisLabel: { color: c.muted, fontSize: 11, formatter: cats ? undefined : (v) => formatNumber(v) },
    axisLine: { lineStyle: { color: c.border } },
    splitLine: { lineStyle: { color: c.border, type: "dashed" } },
  });
  const points = [];
  data.runs.forEach((run, index) => {
    let x = columnValue(run, xColumn);
    let y = columnValue(run, yColumn);
    if (x === null || y === null) return;
    if (xCats) x = String(x);
    if (yCats) y = String(y);
    points.push({ value: [x, y], name: run.name, itemStyle: { color: colors[index] } });
  });
  return {
    animation: false,
    grid: { left: 16, right: 24, top: 16, bottom: 36, outerBoundsMode: "same", outerBoundsContain: "axisLabel" },
    tooltip: {
      ...baseTooltip(c),
      trigger: "item",
      formatter: (p) =>
        tooltipBox(
          p.name,
          [
            [xColumn.label, String(typeof p.value[0] === "number" ? formatNumber(p.value[0]) : p.value[0]), null],
            [yColumn.label, String(typeof p.value[1] === "number" ? formatNumber(p.value[1]) : p.value[1]), null],
          ],
          c,
        ),
    },
    xAxis: axis(xColumn, xCats),
    yAxis: axis(yColumn, yCats),
    series: [{ type: "scatter", data: points, symbolSize: 9, itemStyle: { opacity: 0.85 } }],
  };
}
