// The project page: key completion in the query bar, group-by that applies on change, and
// the "Compare selected" button that follows the runs' checkboxes.
//
// # SECURITY: keys come from the API and users wrote them: suggestions are built with
// textContent only, never innerHTML.
import { ready } from "./ready.js";

const ENTITIES = ["metrics.", "params.", "config.", "tags.", "attributes."];
const ALIASES = { metric: "metrics", param: "params", tag: "tags", attribute: "attributes", run: "attributes", attr: "attributes" };
const PLAIN_KEY = /^[A-Za-z0-9_.\/:-]+$/;

function tokenAt(value, caret) {
  // The field being typed: from the last space, bracket or comma before the caret.
  const before = value.slice(0, caret);
  const match = before.match(/([A-Za-z_]+(?:\.[^\s()=<>!,']*)?)$/);
  if (!match) return null;
  return { text: match[1], start: caret - match[1].length };
}

function initQueryBar(form) {
  const input = form.querySelector("#filter-input");
  const list = form.querySelector("#filter-suggestions");
  const url = form.dataset.keysUrl;
  if (!input || !list || !url) return;
  const cache = new Map();
  let items = [];
  let active = -1;
  let timer = null;
  let token = null;

  function close() {
    list.classList.remove("show");
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
    items = [];
    active = -1;
  }

  function render(suggestions) {
    list.replaceChildren();
    items = suggestions.slice(0, 12);
    active = -1;
    if (!items.length) return close();
    items.forEach((text, index) => {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "dropdown-item mono small";
      button.id = `filter-suggestion-${index}`;
      button.setAttribute("role", "option");
      button.textContent = text;
      button.addEventListener("mousedown", (event) => {
        event.preventDefault();
        pick(index);
      });
      li.appendChild(button);
      list.appendChild(li);
    });
    list.classList.add("show");
    input.setAttribute("aria-expanded", "true");
  }

  function highlight(index) {
    const buttons = list.querySelectorAll("button");
    buttons.forEach((b, i) => b.classList.toggle("active", i === index));
    active = index;
    if (index >= 0) input.setAttribute("aria-activedescendant", buttons[index].id);
  }

  function pick(index) {
    if (!token || index < 0 || index >= items.length) return;
    const chosen = items[index];
    const value = input.value;
    const end = token.start + token.text.length;
    const needsSpace = !chosen.endsWith(".") && value.charAt(end) !== " ";
    input.value = value.slice(0, token.start) + chosen + (needsSpace ? " " : "") + value.slice(end);
    const caret = token.start + chosen.length + (needsSpace ? 1 : 0);
    input.setSelectionRange(caret, caret);
    close();
    input.focus();
    if (chosen.endsWith(".")) suggest();
  }

  async function keys(entity, partial) {
    const cacheKey = `${entity}|${partial}`;
    if (cache.has(cacheKey)) return cache.get(cacheKey);
    const params = new URLSearchParams({ q: partial, limit: "20" });
    const response = await fetch(`${url}?${params}`, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!response.ok) return [];
    const body = await response.json();
    const found = body[entity] || [];
    cache.set(cacheKey, found);
    return found;
  }

  async function suggest() {
    token = tokenAt(input.value, input.selectionStart ?? input.value.length);
    if (!token) return close();
    const dot = token.text.indexOf(".");
    if (dot < 0) {
      const lower = token.text.toLowerCase();
      return render(ENTITIES.filter((e) => e.startsWith(lower) && lower.length > 0));
    }
    const prefix = token.text.slice(0, dot);
    const entity = ALIASES[prefix.toLowerCase()] || prefix.toLowerCase();
    if (!ENTITIES.includes(`${entity}.`)) return close();
    const partial = token.text.slice(dot + 1).replace(/^[`"]/, "");
    const found = await keys(entity, partial);
    render(found.map((key) => `${prefix}.${PLAIN_KEY.test(key) ? key : "`" + key + "`"}`));
  }

  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(suggest, 120);
  });
  input.addEventListener("keydown", (event) => {
    if (!list.classList.contains("show")) return;
    if (event.key === "ArrowDown") {
      event.preventDefault();
      highlight(Math.min(items.length - 1, active + 1));
    } else if (event.key === "ArrowUp") {
      event.preventDefault();
      highlight(Math.max(0, active - 1));
    } else if ((event.key === "Enter" || event.key === "Tab") && active >= 0) {
      event.preventDefault();
      pick(active);
    } else if (event.key === "Escape") {
      close();
    }
  });
  input.addEventListener("blur", () => setTimeout(close, 150));
}

function updateCompareButton() {
  // Looked up each time: live updates (live-parts.js) replace the table's rows.
  const button = document.querySelector("[data-compare-button]");
  if (!button) return;
  const count = [...document.querySelectorAll("[data-compare-checkbox]")].filter((b) => b.checked).length;
  button.disabled = count < 2;
  button.textContent = count >= 2 ? `Compare ${count} runs` : "Compare selected";
}

function initCompareSelection() {
  document.addEventListener("change", (event) => {
    if (event.target.matches("[data-compare-checkbox]")) updateCompareButton();
  });
  updateCompareButton();
}

function initAutosubmit() {
  document.addEventListener("change", (event) => {
    if (event.target.matches("select[data-autosubmit]")) event.target.form.requestSubmit();
  });
}

ready(() => {
  const form = document.querySelector("[data-testid=query-bar]");
  if (form) initQueryBar(form);
  initCompareSelection();
  initAutosubmit();
  // A live update re-rendered a part of the page (live-parts.js): bind what it brought.
  document.addEventListener("assay:live-part", (event) => {
    const bar = event.target.querySelector("[data-testid=query-bar]");
    if (bar) initQueryBar(bar);
    updateCompareButton();
  });
});
