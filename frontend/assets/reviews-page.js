// Review pages: @mention completion in every editor, including those a live update brings
// (live-widgets.js / live-parts.js announce them with "assay:live-part").
import { initMentions } from "./mentions.js";
import { ready } from "./ready.js";

// The new request form: the version select shows the chosen model's versions, and the title
// follows the choices ("Move production to v3 of digits-sgd") until the user edits it.
function initNewRequestForm() {
  const model = document.querySelector("[data-review-model]");
  const version = document.querySelector("[data-review-version]");
  const alias = document.querySelector("[data-review-alias]");
  const title = document.querySelector("[data-review-title]");
  if (!model || !version || !alias || !title) return;
  const suggest = () => {
    const text = version.value ? `Move ${alias.value.trim() || "production"} to ${version.value} of ${model.value}` : "";
    title.placeholder = text;
    if (title.dataset.suggested === "true" || !title.value) {
      title.value = text;
      title.dataset.suggested = "true";
    }
  };
  // Only the chosen model's group stays in the select (two models both have a "v1").
  const groups = new Map([...version.querySelectorAll("optgroup")].map((g) => [g.dataset.model, g]));
  const show = (name) => {
    for (const group of groups.values()) group.remove();
    const group = groups.get(name);
    if (!group) return null;
    group.hidden = false;
    group.disabled = false;
    version.append(group);
    return group;
  };
  show(model.value);
  model.addEventListener("change", () => {
    const group = show(model.value);
    const options = group ? [...group.querySelectorAll("option")] : [];
    const held = (o) => (o.dataset.aliases || "").split(" ").includes(alias.value.trim());
    const chosen = options.find((o) => !held(o)) || options[0] || null;
    if (chosen) chosen.selected = true;
    else version.value = "";
    suggest();
  });
  version.addEventListener("change", suggest);
  alias.addEventListener("input", suggest);
  title.addEventListener("input", () => {
    title.dataset.suggested = "";
  });
}

ready(() => {
  initNewRequestForm();
  initMentions();
  document.addEventListener("assay:live-part", (event) => initMentions(event.target));
});
