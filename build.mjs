// Bundles the dashboard's assets with esbuild into frontend/static/dist/ (served by WhiteNoise).
//
//   theme.js  tiny, loaded blocking in <head>: applies the saved light/dark theme before paint
//   app.js    deferred, every page: Bootstrap's CSS and plugins, the small page modules;
//             its CSS imports become app.css
//   charts.js, compare.js, lineage.js: the chart pages' modules (<script type="module">,
//             deferred by nature). They are ES modules split by esbuild: ECharts' core with the
//             line series, grid and tooltip (tree-shaken from echarts/core, chart-core.js) is
//             one shared chunk-<hash>.js that every chart page loads (and the browser caches
//             once); heatmaps, parallel coordinates/scatter and the graph series are chunks
//             loaded on demand (import()) only by the pages that draw them.
//   project.js, reviews.js: small page modules (IIFE).
import * as esbuild from "esbuild";
import { rmSync } from "node:fs";

const outdir = "frontend/static/dist";
rmSync(outdir, { recursive: true, force: true });

const common = {
  outdir,
  bundle: true,
  minify: true,
  sourcemap: true,
  target: ["es2020", "chrome100", "firefox100", "safari15"],
  legalComments: "linked",
  logLevel: "info",
};

await esbuild.build({
  ...common,
  entryPoints: {
    app: "frontend/assets/app.js",
    project: "frontend/assets/project-page.js",
    reviews: "frontend/assets/reviews-page.js",
    theme: "frontend/assets/theme.js",
  },
  format: "iife",
});

await esbuild.build({
  ...common,
  entryPoints: {
    charts: "frontend/assets/charts-page.js",
    compare: "frontend/assets/compare-page.js",
    lineage: "frontend/assets/lineage-page.js",
    "project-charts": "frontend/assets/project-charts.js",
  },
  format: "esm",
  splitting: true,
  chunkNames: "chunk-[hash]",
  metafile: true,
});
