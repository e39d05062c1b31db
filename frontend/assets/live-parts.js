// Live page parts: regions of a server-rendered page, marked data-live-part="<name>", that a
// live event makes stale. refreshParts() fetches the page's own URL again (once for every
// event that arrives within a short, jittered delay, so that a thousand open pages do not
// ask at the same moment), and puts the fresh rendering of each named part in place of the
// old one. Nothing else on the page moves: what the user types elsewhere stays.
//
// A part the user is busy in (focus inside, text typed into one of its fields, a <details>
// form opened) is not replaced under their hands: it is tried again a little later.
//
// # SECURITY: the HTML comes from Assay's own templates (user text escaped, markdown sanitised
// by nh3 on the server), from the same origin, over the same session. It is parsed inertly
// (DOMParser runs nothing) and filtered once more before insertion: no script, iframe, object,
// embed, base, meta or link elements, no on* attributes, no javascript:/data: URLs. It never
// goes through innerHTML.
const DELAY_MS = 250;
const JITTER_MS = 500;
const BUSY_RETRY_MS = 10_000;
const DROPPED = new Set(["SCRIPT", "IFRAME", "FRAME", "OBJECT", "EMBED", "BASE", "META", "LINK", "STYLE", "TEMPLATE"]);
const URL_ATTRIBUTES = new Set(["href", "src", "action", "formaction", "xlink:href", "srcset", "poster"]);

const pending = new Set();
let timer = null;
let running = false;

/** Fetch this page's URL again and parse it inertly; null if it is not a page we can use
 * (signed out: redirected to the login form; an error; another content type). */
export async function fetchPage(url = location.href) {
  const response = await fetch(url, {
    credentials: "same-origin",
    headers: { Accept: "text/html", "X-Assay-Live": "parts" },
    cache: "no-store",
  });
  if (!response.ok || response.redirected) return null;
  if (!(response.headers.get("content-type") || "").startsWith("text/html")) return null;
  return new DOMParser().parseFromString(await response.text(), "text/html");
}

/** A copy of ``node`` (from a parsed, inert document) for this document, filtered. */
export function inertCopy(node) {
  const copy = document.importNode(node, true);
  const walk = (el) => {
    for (const child of [...el.children]) {
      if (DROPPED.has(child.tagName.toUpperCase())) {
        child.remove();
        continue;
      }
      clean(child);
      walk(child);
    }
  };
  clean(copy);
  walk(copy);
  return copy;
}

function clean(el) {
  for (const attr of [...el.attributes]) {
    const name = attr.name.toLowerCase();
    if (name.startsWith("on")) el.removeAttribute(attr.name);
    else if (URL_ATTRIBUTES.has(name) && /^\s*(javascript|data|vbscript):/i.test(attr.value)) el.removeAttribute(attr.name);
  }
}

function busy(part) {
  const active = document.activeElement;
  const typing = "textarea, select, [contenteditable], input:not([type=checkbox]):not([type=radio]):not([type=hidden]):not([type=submit]):not([type=button])";
  if (active && active !== document.body && part.contains(active) && active.matches(typing)) return true;
  for (const field of part.querySelectorAll("textarea, input[type=text], input:not([type])")) {
    if (field.value !== field.defaultValue) return true;
  }
  return [...part.querySelectorAll("details")].some((d) => d.open);
}

function keepChecked(from, to) {
  // Selections survive (the project table's "compare" checkboxes).
  for (const box of from.querySelectorAll("input[type=checkbox][name]")) {
    const twin = to.querySelector(`input[type=checkbox][name="${CSS.escape(box.name)}"][value="${CSS.escape(box.value)}"]`);
    if (twin) twin.checked = box.checked;
  }
}

function part(doc, name) {
  return doc.querySelector(`[data-live-part="${CSS.escape(name)}"]`);
}

/** Ask for the named parts to be brought up to date (names absent from this page are ignored). */
export function refreshParts(names, { now = false } = {}) {
  for (const name of names) if (part(document, name)) pending.add(name);
  if (!pending.size || timer) return;
  timer = setTimeout(run, now ? 0 : DELAY_MS + Math.random() * JITTER_MS);
}

/** Every outermost part of this page (an inner part comes along with its outer one). */
export function allParts() {
  return [...document.querySelectorAll("[data-live-part]")]
    .filter((el) => !el.parentElement || !el.parentElement.closest("[data-live-part]"))
    .map((el) => el.dataset.livePart);
}

async function run() {
  timer = null;
  if (running) {
    timer = setTimeout(run, DELAY_MS);
    return;
  }
  const names = [...pending];
  pending.clear();
  running = true;
  const later = [];
  try {
    const doc = await fetchPage();
    if (!doc) {
      document.dispatchEvent(new CustomEvent("assay:live-stale", { detail: { names } }));
      return;
    }
    for (const name of names) {
      const current = part(document, name);
      const fresh = part(doc, name);
      if (!current || !fresh) continue;
      if (busy(current)) {
        later.push(name);
        continue;
      }
      const copy = inertCopy(fresh);
      keepChecked(current, copy);
      current.replaceWith(copy);
      // Page modules bind their behaviour again (mention completion, the compare button).
      copy.dispatchEvent(new CustomEvent("assay:live-part", { bubbles: true, detail: { name } }));
    }
  } catch {
    later.push(...names); // the network blinked: try again
  } finally {
    running = false;
  }
  if (later.length) {
    // Busy or unreachable: once the user leaves the field (or after a while), try again.
    for (const name of later) pending.add(name);
    const retry = () => {
      document.removeEventListener("focusout", retry);
      if (!timer && pending.size) timer = setTimeout(run, DELAY_MS);
    };
    document.addEventListener("focusout", retry);
    setTimeout(retry, BUSY_RETRY_MS);
  }
}
