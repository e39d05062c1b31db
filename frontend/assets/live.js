// The dashboard's one WebSocket (/ws/): subscribes to the topics the page names with
// data-live-topic="…" (and to "user" when the navbar has the notifications link), keeps the
// last sequence number of each topic, reconnects with backoff and catches up with `after`,
// and re-emits what arrives as DOM events for the page modules:
//   document "assay:live"        detail {topic, seq, event, data}
//   document "assay:live-reset"  detail {topic, seq}   (missed more than the server keeps)
// A small status pill says "Reconnecting…" while the socket is down.
//
// # SECURITY: this module never touches the DOM with what it receives; the page modules
// insert text with textContent (and the review page sanitises body_html again).
const topics = new Map(); // topic -> last seq seen (null: none yet)
let socket = null;
let attempt = 0;
let stopped = false;
let statusPill = null;

function pill() {
  if (!statusPill) {
    statusPill = document.createElement("div");
    statusPill.className = "live-status badge text-bg-warning";
    statusPill.setAttribute("role", "status");
    statusPill.setAttribute("aria-live", "polite");
    statusPill.dataset.testid = "live-status";
    statusPill.hidden = true;
    document.body.appendChild(statusPill);
  }
  return statusPill;
}

function setState(state) {
  document.documentElement.dataset.live = state; // "connecting" | "live" | "reconnecting" | "off"
  const el = pill();
  el.hidden = state === "live" || state === "connecting" || state === "off";
  el.textContent = state === "reconnecting" ? "Reconnecting…" : "";
}

function send(frame) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(frame));
}

function subscribeAll() {
  for (const [topic, seq] of topics) {
    const frame = { type: "subscribe", topic };
    if (seq !== null) frame.after = seq;
    send(frame);
  }
}

function emit(name, detail) {
  document.dispatchEvent(new CustomEvent(name, { detail }));
}

function onMessage(message) {
  let frame;
  try {
    frame = JSON.parse(message.data);
  } catch {
    return;
  }
  if (frame.type === "subscribed") {
    if (topics.get(frame.topic) === null) topics.set(frame.topic, frame.seq);
  } else if (frame.type === "event") {
    const last = topics.get(frame.topic);
    if (last !== undefined && (last === null || frame.seq > last)) {
      topics.set(frame.topic, frame.seq);
      emit("assay:live", frame);
    }
  } else if (frame.type === "reset") {
    topics.set(frame.topic, frame.seq);
    emit("assay:live-reset", frame);
  } else if (frame.type === "error" && frame.topic) {
    topics.delete(frame.topic); // refused or no longer allowed: nothing more will come
  }
}

function connect() {
  if (stopped || !topics.size) return;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  setState(attempt ? "reconnecting" : "connecting");
  socket = new WebSocket(`${scheme}://${location.host}/ws/`);
  socket.addEventListener("open", () => {
    attempt = 0;
    setState("live");
    subscribeAll();
  });
  socket.addEventListener("message", onMessage);
  socket.addEventListener("close", (event) => {
    socket = null;
    if (event.code === 4401 || stopped) {
      setState("off"); // signed out: a reload shows the sign-in page
      return;
    }
    attempt += 1;
    setState("reconnecting");
    // 1 s, 2 s, 4 s … up to 30 s, with jitter so that a restarted server is not stampeded.
    const delay = Math.min(30_000, 1000 * 2 ** Math.min(attempt - 1, 5)) * (0.7 + Math.random() * 0.6);
    setTimeout(connect, delay);
  });
}

export function follow(topic) {
  if (!topics.has(topic)) {
    topics.set(topic, null);
    if (socket && socket.readyState === WebSocket.OPEN) send({ type: "subscribe", topic });
    else if (!socket) connect();
  }
}

export function unfollow(topic) {
  if (topics.delete(topic)) send({ type: "unsubscribe", topic });
}

export function initLive() {
  if (!("WebSocket" in window)) return;
  for (const el of document.querySelectorAll("[data-live-topic]")) {
    // data-live-seq: the topic's number when the server rendered the page, so that what
    // happened between the render and the subscription is sent too.
    const seq = /^\d+$/.test(el.dataset.liveSeq || "") ? Number(el.dataset.liveSeq) : null;
    if (el.dataset.liveTopic) topics.set(el.dataset.liveTopic, seq);
  }
  if (document.querySelector("[data-live-notifications]")) topics.set("user", null);
  window.addEventListener("pagehide", () => {
    stopped = true;
    if (socket) socket.close(1000);
  });
  connect();
}
