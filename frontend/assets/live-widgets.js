// What every page does with live events: the notification count and a toast for mentions,
// run statuses (project page, run header), a "reload" notice when the page fell behind, and
// the review page's new comments and check results.
//
// # SECURITY: event data is user-written. It goes into the page as text (textContent); the
// one exception, a comment's body_html, is markdown the server already sanitised (nh3), and
// it is parsed inertly (DOMParser) and filtered again against an allow-list before insertion.
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
}

// --- the review page --------------------------------------------------------------------------

const ALLOWED_TAGS = new Set(
  "P BR STRONG EM B I CODE PRE BLOCKQUOTE UL OL LI A H1 H2 H3 H4 H5 H6 HR TABLE THEAD TBODY TR TH TD DEL SPAN".split(" "),
);

function sanitised(html) {
  const doc = new DOMParser().parseFromString(`<div>${html}</div>`, "text/html");
  const root = doc.body.firstChild;
  const walk = (node) => {
    for (const child of [...node.childNodes]) {
      if (child.nodeType === Node.TEXT_NODE) continue;
      if (child.nodeType !== Node.ELEMENT_NODE || !ALLOWED_TAGS.has(child.tagName)) {
        child.replaceWith(document.createTextNode(child.textContent || ""));
        continue;
      }
      for (const attr of [...child.attributes]) {
        const keep = (child.tagName === "A" && attr.name === "href" && /^(https?:|\/|#|mailto:)/i.test(attr.value)) || attr.name === "class";
        if (!keep) child.removeAttribute(attr.name);
      }
      if (child.tagName === "A") child.setAttribute("rel", "nofollow noopener");
      walk(child);
    }
  };
  walk(root);
  return [...root.childNodes].map((n) => document.importNode(n, true));
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
  head.append(author, document.createTextNode(" · just now"));
  const body = document.createElement("div");
  body.className = "markdown";
  body.append(...sanitised(comment.body_html || ""));
  box.append(head, body);
  return box;
}

function commentCreated(comment) {
  const list = document.querySelector("[data-live-comments]");
  if (!list || document.getElementById(`c-${comment.id}`)) return;
  if (comment.parent) {
    const parent = document.getElementById(`c-${comment.parent}`);
    const thread = parent && parent.closest("[data-testid=thread]");
    if (thread) {
      const form = thread.querySelector("form");
      thread.insertBefore(commentNode(comment, false), form);
      return;
    }
  }
  if (comment.anchor) {
    notice("New comments on the changes.");
    return;
  }
  const thread = document.createElement("div");
  thread.className = "review-thread card mb-2";
  thread.dataset.testid = "thread";
  thread.appendChild(commentNode(comment, true));
  list.appendChild(thread);
}

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

const CHECK_BADGES = {
  passed: ["✓", "text-bg-success"],
  failed: ["✗", "text-bg-danger"],
  error: ["!", "text-bg-danger"],
};

const REVIEW_RELOAD = {
  "review.created": "A new review was submitted.",
  "review.dismissed": "A review was dismissed.",
  "request.updated": "This request changed.",
  "request.merged": "This request was merged.",
  "comment.updated": "A comment was edited.",
  "comment.deleted": "A comment was deleted.",
};

export function initLiveWidgets() {
  document.addEventListener("assay:live", (e) => {
    const { topic, event, data } = e.detail;
    if (topic === "user" && event === "notification.created") bumpNotifications(data);
    else if (topic.startsWith("project:") && event === "run.updated") runUpdated(data);
    else if (topic.startsWith("project:") && event === "run.created") notice("New runs were started.");
    else if (topic.startsWith("run:") && event === "run.updated") runUpdated(data);
    else if (topic.startsWith("review:")) {
      if (event === "comment.created") commentCreated(data);
      else if (event === "check.updated") checkUpdated(data);
      else if (REVIEW_RELOAD[event]) notice(REVIEW_RELOAD[event]);
    }
  });
  document.addEventListener("assay:live-reset", () => notice("This page fell behind while offline."));
}
