// The project page: key completion in the query bar, group-by that applies on change, the
// "Compare selected" button that follows the runs' checkboxes (and "select this page"), the
// column menu's key search (the keys API, server-side: a project may have thousands of keys),
// and the columns pinned to the left (sticky, their offsets measured here).
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

function initSelectPage() {
  document.addEventListener("change", (event) => {
    if (!event.target.matches("[data-select-page]")) return;
    for (const box of document.querySelectorAll("[data-compare-checkbox]")) box.checked = event.target.checked;
    updateCompareButton();
  });
}

const COLUMN_KINDS = [
  ["metrics", "metrics"],
  ["config", "config"],
  ["params", "params"],
  ["tags", "tags"],
];

function initColumnSearch(form) {
  const input = form.querySelector("#column-search");
  const results = form.querySelector("#column-search-results");
  const box = form.querySelector("[data-column-results]");
  const url = form.dataset.keysUrl;
  if (!input || !results || !box || !url || input.dataset.bound) return;
  input.dataset.bound = "1";
  let timer = null;
  let asked = 0;

  function checkedElsewhere(name) {
    // A found key may also be listed in the form (shown or most logged): one state for both.
    return [...form.querySelectorAll("input[name=columns]")].some(
      (el) => !results.contains(el) && el.value === name && el.checked,
    );
  }

  function row(name, index) {
    const div = document.createElement("div");
    div.className = "form-check";
    const check = document.createElement("input");
    check.type = "checkbox";
    check.className = "form-check-input";
    check.name = "columns";
    check.value = name;
    check.id = `col-found-${index}`;
    check.checked = checkedElsewhere(name);
    const label = document.createElement("label");
    label.className = "form-check-label mono";
    label.htmlFor = check.id;
    label.textContent = name;
    div.append(check, label);
    return div;
  }

  async function search() {
    const text = input.value.trim();
    const mine = ++asked;
    // Ticked results stay (they are part of what Apply saves); the others are replaced.
    const kept = [...results.querySelectorAll("input:checked")].map((el) => el.closest(".form-check"));
    if (!text) {
      results.replaceChildren(...kept);
      box.hidden = kept.length === 0;
      return;
    }
    const params = new URLSearchParams({ q: text, limit: "25" });
    let body;
    try {
      const response = await fetch(`${url}?${params}`, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!response.ok) return;
      body = await response.json();
    } catch {
      return;
    }
    if (mine !== asked) return; // a later search answered first
    const keptNames = new Set(kept.map((el) => el.querySelector("input").value));
    const names = [];
    for (const [field, prefix] of COLUMN_KINDS) {
      for (const key of body[field] || []) names.push(`${prefix}.${key}`);
    }
    const fresh = names.filter((n) => !keptNames.has(n));
    const rows = fresh.map((name, i) => row(name, `${mine}-${i}`));
    const note = document.createElement("p");
    note.className = "text-body-secondary mb-0";
    note.dataset.testid = "column-search-note";
    if (!names.length) note.textContent = `No key contains “${text}”.`;
    else if (body.truncated) note.textContent = "More keys match: type more of the name.";
    results.replaceChildren(...kept, ...rows, ...(note.textContent ? [note] : []));
    box.hidden = false;
  }

  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(search, 150);
  });
  form.addEventListener("change", (event) => {
    const changed = event.target;
    if (!changed.matches("input[name=columns]")) return;
    for (const twin of form.querySelectorAll("input[name=columns]")) {
      if (twin !== changed && twin.value === changed.value) twin.checked = changed.checked;
    }
  });
  input.addEventListener("keydown", (event) => {
    // Enter searches at once instead of submitting the column form.
    if (event.key === "Enter") {
      event.preventDefault();
      clearTimeout(timer);
      search();
    }
  });
}

function stickColumns() {
  // Sticky cells (the selection box, the run's name, pinned columns) need their left offset:
  // the widths of the sticky columns before them, measured on the header row.
  const table = document.querySelector("[data-testid=runs-table]");
  if (!table) return;
  const header = table.tHead?.rows[0];
  if (!header) return;
  const offsets = new Map();
  let left = 0;
  [...header.cells].forEach((cell, index) => {
    if (cell.hasAttribute("data-sticky")) {
      offsets.set(index, left);
      left += cell.getBoundingClientRect().width;
    }
  });
  for (const tableRow of table.rows) {
    [...tableRow.cells].forEach((cell, index) => {
      if (offsets.has(index) && cell.hasAttribute("data-sticky")) {
        cell.style.left = `${offsets.get(index)}px`;
        cell.classList.add("sticky-col");
      }
    });
  }
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
  initSelectPage();
  initAutosubmit();
  const columns = document.querySelector("[data-testid=columns-form]");
  if (columns) initColumnSearch(columns);
  stickColumns();
  window.addEventListener("resize", stickColumns);
  // A live update re-rendered a part of the page (live-parts.js): bind what it brought.
  document.addEventListener("assay:live-part", (event) => {
    const bar = event.target.querySelector("[data-testid=query-bar]");
    if (bar) initQueryBar(bar);
    const columnsForm = event.target.querySelector("[data-testid=columns-form]");
    if (columnsForm) initColumnSearch(columnsForm);
    stickColumns();
    updateCompareButton();
  });
});
