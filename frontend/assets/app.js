// The dashboard's deferred bundle on every page: Bootstrap's CSS and the plugins the pages
// use, then one small module per kind of interaction, each finding its elements by data-
// attributes. ECharts is large, so it lives in the chart pages' ES modules (build.mjs), which
// share one chunk of it; panels.css (the chart panels' styles) is small and comes with app.css.
import "bootstrap/dist/css/bootstrap.css";
import "./app.css";
import "./report.css";
import "./panels.css";

// Importing a plugin registers its data-API (data-bs-toggle="dropdown" and so on).
import "bootstrap/js/dist/collapse";
import "bootstrap/js/dist/dropdown";

import { initCopyButtons } from "./copy.js";
import { initDurations } from "./durations.js";
import { initLive } from "./live.js";
import { initLiveWidgets } from "./live-widgets.js";
import { initThemeToggle } from "./theme-toggle.js";
import { ready } from "./ready.js";

ready(() => {
  initThemeToggle();
  initCopyButtons();
  initDurations();
  initLiveWidgets();
  initLive();
});
