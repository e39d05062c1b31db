import { applyTheme, preferredTheme, saveTheme } from "./theme-store.js";

function label(button, theme) {
  const next = theme === "dark" ? "light" : "dark";
  button.setAttribute("aria-label", `Switch to ${next} theme`);
  button.setAttribute("title", `Switch to ${next} theme`);
  button.setAttribute("aria-pressed", theme === "dark" ? "true" : "false");
}

export function initThemeToggle() {
  const button = document.getElementById("theme-toggle");
  if (!button) return;
  label(button, preferredTheme());
  button.addEventListener("click", () => {
    const theme = document.documentElement.getAttribute("data-bs-theme") === "dark" ? "light" : "dark";
    applyTheme(theme);
    saveTheme(theme);
    label(button, theme);
    // Charts read their colours from Bootstrap's CSS variables; they redraw on this event.
    document.dispatchEvent(new CustomEvent("assay:themechange", { detail: { theme } }));
  });
}
