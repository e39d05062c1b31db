// Entry point for the compare page: overlaid metric charts, the parallel-coordinates plot
// and (through charts.js) the confusion matrices side by side.
import { initCharts } from "./charts.js";
import { initCompare } from "./compare.js";
import { ready } from "./ready.js";

ready(() => {
  initCharts();
  initCompare();
});
