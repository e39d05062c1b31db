// Confusion-matrix heatmaps (loaded on demand: only pages with a confusion matrix pay for
// ECharts' heatmap series and visual map).
//
// # SECURITY: labels are user-written: axis labels are canvas text, tooltips DOM nodes filled
// with textContent.
import { install as HeatmapChart } from "echarts/lib/chart/heatmap/install.js";
import { install as VisualMapComponent } from "echarts/lib/component/visualMap/installVisualMapContinuous.js";
import { baseTooltip, echarts, formatNumber, palette, tooltipBox } from "./chart-core.js";

echarts.use([HeatmapChart, VisualMapComponent]);

export function heatmapOption(figure) {
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

