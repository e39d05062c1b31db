// "Copy" buttons next to code snippets: <button data-copy-target="id-of-pre">.
export function initCopyButtons() {
  for (const button of document.querySelectorAll("[data-copy-target]")) {
    button.addEventListener("click", async () => {
      const source = document.getElementById(button.dataset.copyTarget);
      if (!source) return;
      const original = button.textContent;
      try {
        await navigator.clipboard.writeText(source.textContent.trim());
        button.textContent = "Copied";
      } catch {
        button.textContent = "Select and copy";
      }
      window.setTimeout(() => {
        button.textContent = original;
      }, 1500);
    });
  }
}
