// What every page does with live events, without a reload:
//   navbar        the notification count, and a toast for mentions (the notifications page's list)
//   project page  run statuses at once; new runs, counts and finished runs' cells (parts)
//   run page      the status and the summary table's values at once; the meta line, new
//                 keys' summary rows and processed artifacts (parts); the charts are charts.js's
//   review page   new comments and replies, edits and deletions, timeline entries, check
//                 statuses at once; reviews, status, merge box, candidate, checks (parts)
// What changes little and often is built here from the event's data; larger regions are
// "parts" (live-parts.js): re-rendered by the server and swapped in. A page that fell behind
// (more missed than the server keeps) refreshes all its parts.
//
// # SECURITY: event data is user-written. It goes into the page as text (textContent); the
// one exception, a comment's body_html, is markdown the server already sanitised (nh3), and
// it is parsed inertly (DOMParser) and filtered again against the server's allow-list
// (markdown-policy.js) before insertion.
// Parts: see live-parts.js. Forms come from a server-rendered <template> (with its CSRF token).
import { stopDurations } from "./durations.js";
import { allParts, refreshParts } from "./live-parts.js";
import { markdownNodes } from "./markdown-policy.js";

const STATUS_CLASSES = {
  running: "text-bg-primary",
  finished: "text-bg-success",
  failed: "text-bg-danger",
  killed: "text-bg-secondary",
};

function toastArea() {
  let area = document.querySelector("[data-live-toasts]");
  if (!area) {
    area = document.createElement("div");
    area.className = "live-toasts";
    area.dataset.liveToasts = "";
    area.setAttribute("aria-live", "polite");
    document.body.appendChild(area);
  }
  return area;
}

function toast(title, text, href) {
  const box = document.createElement("div");
  box.className = "live-toast card shadow-sm";
  box.setAttribute("role", "status");
  box.dataset.testid = "live-toast";
  const body = document.createElement("div");
  body.className = "card-body py-2 px-3 small";
  const strong = document.createElement("strong");
  strong.textContent = title;
  const line = document.createElement(href ? "a" : "div");
  if (href) line.href = href;
  line.className = "d-block";
  line.textContent = text;
  body.append(strong, line);
  box.appendChild(body);
  toastArea().appendChild(box);
  setTimeout(() => box.remove(), 8000);
}

function notice(text) {
  let bar = document.querySelector("[data-live-notice]");
  if (!bar) {
    bar = document.createElement("div");
    bar.className = "alert alert-info py-1 px-3 small live-notice";
    bar.dataset.liveNotice = "";
    bar.dataset.testid = "live-notice";
    bar.setAttribute("role", "status");
    const link = document.createElement("a");
    link.href = location.href;
    link.className = "ms-2";
    link.textContent = "Reload";
    const span = document.createElement("span");
    bar.append(span, link);
    const main = document.querySelector("main") || document.body;
    main.prepend(bar);
  }
  bar.firstChild.textContent = text;
}

function bumpNotifications(notification) {
  const link = document.querySelector("[data-live-notifications]");
  if (!link) return;
  let badge = link.querySelector("[data-testid=unread-count]");
  if (!badge) {
    badge = document.createElement("span");
    badge.className = "badge rounded-pill text-bg-primary ms-1";
    badge.dataset.testid = "unread-count";
    const count = document.createElement("span");
    count.dataset.count = "";
    count.textContent = "0";
    const hidden = document.createElement("span");
    hidden.className = "visually-hidden";
    hidden.textContent = " unread";
    badge.append(count, hidden);
    link.appendChild(badge);
  }
  const counter = badge.querySelector("[data-count]") || badge.firstChild;
  counter.textContent = String((parseInt(counter.textContent, 10) || 0) + 1);
  refreshParts(["notifications"]);
  if (notification.kind === "mention") {
    const who = notification.actor || "Someone";
    toast(`${who} mentioned you`, notification.summary || "", link.href);
  }
}

function setStatus(badge, status) {
  badge.className = `badge status-badge status-${status} ${STATUS_CLASSES[status] || "text-bg-light"}`;
  badge.dataset.status = status;
  badge.textContent = status;
}

function runUpdated(run) {
  for (const row of document.querySelectorAll("tr[data-run-id]")) {
    if (row.dataset.runId !== run.id) continue;
    const badge = row.querySelector(".status-badge");
    if (badge) setStatus(badge, run.status);
  }
  const header = document.querySelector(`[data-run-header="${CSS.escape(run.id)}"] .status-badge`);
  if (header) setStatus(header, run.status);
  if (run.status !== "running") {
    const meta = document.querySelector(`[data-run-header="${CSS.escape(run.id)}"] ~ [data-live-part="run-meta"]`);
    if (meta) stopDurations(meta);
  }
  // Durations, end times and the last values of a finished run, a failed run's error: the
  // server's rendering.
  refreshParts(["runs", "run-meta", "run-error", "project-meta"]);
}

function runCreated() {
  if (document.querySelector("[data-testid=empty-project]")) refreshParts(["project-meta", "project-main"]);
  else refreshParts(["runs", "runs-count", "experiments", "project-meta"]);
}

// --- the run page's summary table (the charts are charts.js's) -----------------------------------

/** A metric value as the server's ``metric`` filter writes it (frontend/templatetags/assay.py). */
function metricText(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "string") return value; // "NaN", "Infinity", "-Infinity"
  if (Number.isInteger(value) && Math.abs(value) < 1e6) return String(value);
  const magnitude = Math.abs(value);
  const padExponent = (text) => text.replace(/e([+-])(\d)$/, (_, sign, digit) => `e${sign}0${digit}`);
  if (magnitude < 1e-3 || magnitude >= 1e6) return padExponent(value.toExponential(3));
  const text = value.toPrecision(5);
  if (text.includes("e")) {
    const [mantissa, exponent] = text.split("e");
    return padExponent(`${mantissa.includes(".") ? mantissa.replace(/\.?0+$/, "") : mantissa}e${exponent}`);
  }
  return text.includes(".") ? text.replace(/\.?0+$/, "") : text;
}

function summariesUpdated(summaries) {
  if (!document.querySelector("[data-live-part=run-summaries]")) return;
  let unknown = false;
  for (const [key, summary] of Object.entries(summaries || {})) {
    const row = document.querySelector(`tr[data-summary-key="${CSS.escape(key)}"]`);
    if (!row) {
      unknown = true;
      continue;
    }
    for (const cell of row.querySelectorAll("[data-stat]")) {
      const value = summary[cell.dataset.stat];
      if (cell.dataset.stat === "last_step" || cell.dataset.stat === "count") cell.textContent = String(value ?? "");
      else {
        cell.textContent = metricText(value);
        cell.title = value === null || value === undefined ? "" : String(value);
      }
    }
  }
  if (unknown) refreshParts(["run-summaries"]); // a new key: the server's table, with its row
}

// --- the review page --------------------------------------------------------------------------

function commentBody(comment) {
  if (comment.deleted) {
    const p = document.createElement("p");
    p.className = "text-body-secondary fst-italic mb-0";
    p.textContent = "This comment was deleted.";
    return p;
  }
  const body = document.createElement("div");
  body.className = "markdown";
  body.append(...markdownNodes(comment.body_html || ""));
  return body;
}

function commentNode(comment, first) {
  const box = document.createElement("div");
  box.className = `card-body py-2${first ? "" : " border-top ps-4"}`;
  box.dataset.testid = "comment";
  box.id = `c-${comment.id}`;
  const head = document.createElement("div");
  head.className = "small text-body-secondary mb-1";
  const author = document.createElement("strong");
  author.className = "text-body";
  author.textContent = comment.author || "ghost";
  head.append(author, document.createTextNode(" "));
  if (first && comment.anchor) {
    const anchor = document.createElement("span");
    anchor.className = "badge text-bg-light border";
    anchor.textContent = `${comment.anchor.kind} ${comment.anchor.key}`;
    head.append("on ", anchor, " ");
  }
  head.append("· just now");
  box.append(head, commentBody(comment));
  return box;
}

function replyForm(rootId) {
  // The server rendered one reply form (action, CSRF token) into a <template>: a copy per thread.
  const template = document.querySelector("template[data-reply-form]");
  if (!template) return null;
  const form = template.content.firstElementChild.cloneNode(true);
  form.querySelector("input[name=parent]").value = rootId;
  const label = form.querySelector("label");
  const input = form.querySelector("input[name=body]");
  input.id = `reply-${rootId}`;
  if (label) label.htmlFor = input.id;
  return form;
}

function bumpTabCount(tab) {
  const badge = document.querySelector(`[data-testid=tab-${tab}] .badge`);
  if (badge) badge.textContent = String((parseInt(badge.textContent, 10) || 0) + 1);
}

function commentCreated(comment) {
  // On the changes tab, threads sit in the diff table, under their line: the server's rendering.
  refreshParts(["changes"]);
  const list = document.querySelector("[data-live-comments]");
  if (!list || document.getElementById(`c-${comment.id}`)) return;
  if (comment.parent) {
    const parent = document.getElementById(`c-${comment.parent}`);
    const thread = parent && parent.closest("[data-testid=thread]");
    if (thread) thread.insertBefore(commentNode(comment, false), thread.querySelector(":scope > form"));
    else refreshParts(["comments"]);
    return;
  }
  const thread = document.createElement("div");
  thread.className = "review-thread card mb-2";
  thread.dataset.testid = "thread";
  thread.appendChild(commentNode(comment, true));
  const form = replyForm(comment.id);
  if (form) thread.appendChild(form);
  list.appendChild(thread);
  bumpTabCount("conversation");
  thread.dispatchEvent(new CustomEvent("assay:live-part", { bubbles: true, detail: { name: "thread" } }));
}

function commentChanged(comment) {
  refreshParts(["changes"]);
  const box = document.getElementById(`c-${comment.id}`);
  if (!box) return;
  const old = box.querySelector(":scope > .markdown, :scope > p.fst-italic");
  const fresh = commentBody(comment);
  if (old) old.replaceWith(fresh);
  else box.appendChild(fresh);
  const head = box.firstElementChild;
  if (comment.edited && !comment.deleted && head && !head.querySelector("[data-edited]")) {
    const edited = document.createElement("span");
    edited.dataset.edited = "";
    edited.textContent = "edited";
    head.append(" · ", edited);
  }
}

const CHECK_BADGES = {
  passed: ["✓", "text-bg-success"],
  failed: ["✗", "text-bg-danger"],
  error: ["!", "text-bg-danger"],
};

function checkUpdated(check) {
  for (const row of document.querySelectorAll("tr[data-testid=check-row]")) {
    if (row.dataset.name !== check.name) continue;
    row.dataset.status = check.status;
    const cell = row.querySelector("[data-check-status]");
    if (cell) {
      const badge = document.createElement("span");
      const [mark, css] = CHECK_BADGES[check.status] || ["…", "text-bg-light border"];
      badge.className = `badge ${css}`;
      badge.textContent = `${mark} ${check.status}`;
      cell.replaceChildren(badge);
    }
  }
}

// The entry's wording is the server's (reviews/timeline.py, the event's "text"), as on the page.
function timelineAdded(entry) {
  const list = document.querySelector("[data-testid=timeline]");
  if (!list) return;
  const item = document.createElement("li");
  item.className = "py-1 border-bottom";
  item.dataset.kind = entry.kind;
  const actor = document.createElement("strong");
  actor.textContent = entry.actor || "Assay";
  const when = document.createElement("span");
  when.className = "text-body-secondary";
  when.textContent = "· just now";
  item.append(actor, ` ${entry.text || entry.kind} `, when);
  list.appendChild(item);
}

// Everything on the review page that a review, a push, a check or a merge can change.
const REQUEST_PARTS = ["request-header", "request-tabs", "reviews", "merge-box", "candidate", "checks", "review-form"];

function reviewEvent(event, data) {
  if (event === "comment.created") commentCreated(data);
  else if (event === "comment.updated" || event === "comment.deleted") commentChanged(data);
  else if (event.startsWith("timeline.")) timelineAdded(data);
  else {
    if (event === "check.updated") checkUpdated(data);
    refreshParts(REQUEST_PARTS);
  }
}

export function initLiveWidgets() {
  document.addEventListener("assay:live", (e) => {
    const { topic, event, data } = e.detail;
    if (topic === "user" && event === "notification.created") bumpNotifications(data);
    else if (topic.startsWith("project:") && event === "run.updated") runUpdated(data);
    else if (topic.startsWith("project:") && event === "run.created") runCreated();
    else if (topic.startsWith("run:") && event === "run.updated") runUpdated(data);
    else if (topic.startsWith("run:") && event === "artifact.processed") refreshParts(["artifacts"]);
    else if (topic.startsWith("run:") && event === "metrics") summariesUpdated(data.summaries);
    else if (topic.startsWith("review:")) reviewEvent(event, data);
  });
  // Fell behind: everything the server renders is rendered again (the charts redraw themselves).
  document.addEventListener("assay:live-reset", () => refreshParts(allParts(), { now: true }));
  document.addEventListener("assay:live-stale", () => notice("This page could not be brought up to date."));
}
