// "running for 2.6s" in a running run's header keeps counting. The server renders the
// duration it knows (data-duration-seconds) and marks a running one (data-running); this
// module adds the time the page has been open, once a second, written as the server's
// ``duration`` filter writes it (frontend/templatetags/assay.py). The browser's clock is not
// compared with the server's: only the elapsed time since the element appeared counts.
// When the run ends, the live layer re-renders the header without data-running (and
// runUpdated drops the mark at once), so the count stops.
const TICK_MS = 1000;
const seen = new WeakMap();
let timer = null;

/** A duration as the server writes it: ``12.3s``, ``4m 12s``, ``2h 05m``, ``3d 4h``. */
export function durationText(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return "—";
  if (seconds < 10) return `${seconds.toFixed(1)}s`;
  const total = Math.round(seconds);
  const days = Math.floor(total / 86400);
  const hours = Math.floor((total % 86400) / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const secs = total % 60;
  const two = (n) => String(n).padStart(2, "0");
  if (days) return `${days}d ${hours}h`;
  if (hours) return `${hours}h ${two(minutes)}m`;
  if (minutes) return `${minutes}m ${two(secs)}s`;
  return `${secs}s`;
}

function tick() {
  const running = document.querySelectorAll("[data-running][data-duration-seconds]");
  if (!running.length) {
    clearInterval(timer);
    timer = null;
    return;
  }
  const now = performance.now();
  for (const el of running) {
    if (!seen.has(el)) seen.set(el, now);
    const base = parseFloat(el.dataset.durationSeconds);
    el.textContent = durationText(base + (now - seen.get(el)) / 1000);
  }
}

/** Start counting: on load, and again after a live refresh brings a new header. */
export function initDurations() {
  document.addEventListener("assay:live-part", start);
  start();
}

function start() {
  if (timer || !document.querySelector("[data-running][data-duration-seconds]")) return;
  for (const el of document.querySelectorAll("[data-running][data-duration-seconds]")) seen.set(el, performance.now());
  timer = setInterval(tick, TICK_MS);
}

/** The run has ended: stop at once, before the server's rendering of the end arrives. */
export function stopDurations(root = document) {
  for (const el of root.querySelectorAll("[data-running]")) delete el.dataset.running;
}
