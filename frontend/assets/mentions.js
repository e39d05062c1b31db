// @mention completion for review editors (textareas and inputs with data-mentions="<API url>").
//
// # SECURITY: names come from the API (users and teams who may see the project); the list
// is built with textContent only, never innerHTML. The rule for where a mention starts
// mirrors reviews/mentions.py: after the start, white space or opening punctuation.

const PREFIX = /(?:^|[\s(\[{"'*_~>,;:!])@([A-Za-z0-9_-]{0,64})$/;

export function mentionAt(value, caret) {
  const match = value.slice(0, caret).match(PREFIX);
  if (!match) return null;
  return { prefix: match[1].toLowerCase(), start: caret - match[1].length };
}

function attach(field) {
  const url = field.dataset.mentions;
  const list = document.createElement("ul");
  list.className = "dropdown-menu mention-menu";
  list.setAttribute("role", "listbox");
  list.id = `${field.id || "field"}-mentions`;
  field.setAttribute("aria-autocomplete", "list");
  field.setAttribute("aria-controls", list.id);
  field.insertAdjacentElement("afterend", list);
  let items = [];
  let active = -1;
  let pending = 0;

  const close = () => {
    list.classList.remove("show");
    items = [];
    active = -1;
  };
  const choose = (name) => {
    const at = mentionAt(field.value, field.selectionStart);
    if (!at) return close();
    const before = field.value.slice(0, at.start);
    const after = field.value.slice(field.selectionStart);
    field.value = `${before}${name} ${after}`;
    const caret = before.length + name.length + 1;
    field.setSelectionRange(caret, caret);
    close();
    field.focus();
  };
  const render = (found) => {
    list.replaceChildren();
    items = found;
    active = found.length ? 0 : -1;
    found.forEach((item, index) => {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = `dropdown-item${index === active ? " active" : ""}`;
      button.setAttribute("role", "option");
      button.dataset.testid = "mention-option";
      button.textContent = `@${item.name}`;
      const kind = document.createElement("span");
      kind.className = "text-body-secondary small ms-2";
      kind.textContent = item.kind;
      button.append(kind);
      button.addEventListener("mousedown", (event) => {
        event.preventDefault();
        choose(item.name);
      });
      li.append(button);
      list.append(li);
    });
    list.classList.toggle("show", found.length > 0);
  };

  field.addEventListener("input", async () => {
    const at = mentionAt(field.value, field.selectionStart);
    if (!at) return close();
    const ticket = ++pending;
    try {
      const response = await fetch(`${url}?q=${encodeURIComponent(at.prefix)}`, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      if (!response.ok || ticket !== pending) return;
      render(await response.json());
    } catch {
      close();
    }
  });
  field.addEventListener("keydown", (event) => {
    if (!items.length) return;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      active = (active + (event.key === "ArrowDown" ? 1 : items.length - 1)) % items.length;
      [...list.querySelectorAll("button")].forEach((b, i) => b.classList.toggle("active", i === active));
    } else if (event.key === "Enter" || event.key === "Tab") {
      event.preventDefault();
      choose(items[active].name);
    } else if (event.key === "Escape") {
      close();
    }
  });
  field.addEventListener("blur", () => setTimeout(close, 150));
}

export function initMentions(root = document) {
  root.querySelectorAll("[data-mentions]").forEach(attach);
}
