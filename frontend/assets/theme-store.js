const KEY = "assay-theme";

export function preferredTheme() {
  let saved = null;
  try {
    saved = window.localStorage.getItem(KEY);
  } catch {
    // Storage may be disabled; fall back to the system preference.
  }
  if (saved === "light" || saved === "dark") return saved;
  return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
}

export function applyTheme(theme) {
  document.documentElement.setAttribute("data-bs-theme", theme);
}

export function saveTheme(theme) {
  try {
    window.localStorage.setItem(KEY, theme);
  } catch {
    // Not fatal: the theme holds for this page only.
  }
}
