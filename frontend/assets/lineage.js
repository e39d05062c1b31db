// The lineage graph of a model version (datasets → run → version → parents/children),
// drawn with ECharts' graph series in columns by kind.
//
// Markup contract (frontend/templates/registry/version.html):
//   <figure data-lineage="<id of a json_script tag with {nodes, edges}>">
//     <div data-chart-canvas></div> <figcaption data-chart-note></figcaption></figure>
// When drawn, the figure gets data-rendered="true" (the browser tests wait for it).
//
// # SECURITY: node labels are user-written (model, run and dataset names): ECharts draws them
// on the canvas; tooltips are built with textContent; nothing here assigns innerHTML.
import { install as GraphChart } from "echarts/lib/chart/graph/install.js";
import { echarts } from "./chart-core.js";

echarts.use([GraphChart]);

const COLUMN = { dataset: 0, run: 1, parent: 2, version: 3, child: 4 };
const SYMBOL = { dataset: "rect", run: "diamond", version: "roundRect" };

function cssVar(name, fallback) {
  const value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return value || fallback;
}

function column(node) {
  if (node.kind === "version") return node.role === "parent" ? COLUMN.parent : node.role === "child" ? COLUMN.child : COLUMN.version;
  return COLUMN[node.kind] ?? 0;
}

function tooltip(node) {
  const box = document.createElement("div");
  box.className = "chart-tooltip";
  for (const text of [node.label, `${node.kind}${node.role && node.role !== node.kind ? " · " + node.role : ""}`, node.hash || node.digest || ""]) {
    if (!text) continue;
    const line = document.createElement("div");
    line.textContent = text;
    box.appendChild(line);
  }
  return box;
}

export function drawLineage(figure) {
  const source = document.getElementById(figure.dataset.lineage);
  const canvas = figure.querySelector("[data-chart-canvas]");
  if (!source || !canvas) return;
  const data = JSON.parse(source.textContent);
  // Lay nodes out in columns (parents are ancestors: deeper ones further left).
  const rows = {};
  const nodes = data.nodes.map((node) => {
    const col = column(node);
    rows[col] = (rows[col] || 0) + 1;
    return { node, col, row: rows[col] - 1 };
  });
  const text = cssVar("--bs-body-color", "#212529");
  const palette = { dataset: "#6f42c1", run: "#0d6efd", version: "#198754" };
  const chart = echarts.init(canvas, null, { renderer: "canvas" });
  chart.setOption({
    animation: false,
    tooltip: { confine: true, formatter: (p) => (p.dataType === "node" ? tooltip(p.data.raw) : "") },
    series: [
      {
        type: "graph",
        layout: "none",
        roam: true,
        edgeSymbol: ["none", "arrow"],
        edgeSymbolSize: 8,
        label: { show: true, position: "bottom", color: text, fontSize: 11 },
        lineStyle: { color: cssVar("--bs-secondary-color", "#6c757d"), width: 1.5, curveness: 0.1 },
        data: nodes.map(({ node, col, row }) => ({
          id: node.id,
          name: node.label,
          x: col * 180,
          y: row * 70,
          symbol: SYMBOL[node.kind] || "circle",
          symbolSize: node.role === "this version" ? 26 : 18,
          itemStyle: { color: palette[node.kind] || "#6c757d", borderColor: node.role === "this version" ? text : undefined, borderWidth: 2 },
          raw: node,
        })),
        links: data.edges.map((e) => ({ source: e.source, target: e.target })),
      },
    ],
  });
  chart.on("click", (p) => {
    const url = p.dataType === "node" && p.data.raw.url;
    if (url && url.startsWith(window.location.origin)) window.location.assign(url);
  });
  window.addEventListener("resize", () => chart.resize());
  figure.dataset.rendered = "true";
}

export function initLineage() {
  for (const figure of document.querySelectorAll("[data-lineage]")) {
    try {
      drawLineage(figure);
    } catch (error) {
      figure.dataset.rendered = "error";
      const note = figure.querySelector("[data-chart-note]");
      if (note) note.textContent = `The lineage graph could not be drawn: ${error.message}`;
    }
  }
}
