// Entry point for pages with charts (the run page): ECharts and the chart module.
import { initCharts, initLiveCharts } from "./charts.js";
import { ready } from "./ready.js";

ready(() => {
  initLiveCharts();
  initCharts();
});
