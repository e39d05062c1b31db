// Entry point for the model version page: the lineage graph (ECharts graph series).
import { initLineage } from "./lineage.js";
import { ready } from "./ready.js";

ready(initLineage);
