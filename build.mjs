// Bundles the dashboard's assets with esbuild into frontend/static/dist/ (served by WhiteNoise).
//
//   theme.js  tiny, loaded blocking in <head>: applies the saved light/dark theme before paint
//   app.js    deferred, every page: Bootstrap's CSS and plugins, the small page modules;
//             its CSS imports become app.css
//   charts.js deferred, run page only: ECharts (tree-shaken from echarts/core) and the charts
//   lineage.js deferred, model version page only: ECharts' graph series for the lineage
import * as esbuild from "esbuild";
import { rmSync } from "node:fs";

const outdir = "frontend/static/dist";
rmSync(outdir, { recursive: true, force: true });

await esbuild.build({
  entryPoints: {
    app: "frontend/assets/app.js",
    charts: "frontend/assets/charts-page.js",
    project: "frontend/assets/project-page.js",
    compare: "frontend/assets/compare-page.js",
    lineage: "frontend/assets/lineage-page.js",
    reviews: "frontend/assets/reviews-page.js",
    theme: "frontend/assets/theme.js",
  },
  outdir,
  bundle: true,
  minify: true,
  sourcemap: true,
  format: "iife",
  target: ["es2020", "chrome100", "firefox100", "safari15"],
  legalComments: "linked",
  logLevel: "info",
});
