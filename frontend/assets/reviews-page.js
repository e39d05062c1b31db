// Review pages: @mention completion in every editor, including those a live update brings
// (live-widgets.js / live-parts.js announce them with "assay:live-part").
import { initMentions } from "./mentions.js";
import { ready } from "./ready.js";

ready(() => {
  initMentions();
  document.addEventListener("assay:live-part", (event) => initMentions(event.target));
});
