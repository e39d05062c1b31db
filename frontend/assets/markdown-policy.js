// The markdown allow-list of core/markdown.py, for the one place the browser inserts
// server-rendered markdown itself: a comment's body_html arriving in a live event.
// tests/frontend/test_markdown_policy.py checks that the tags, attributes, link rel and
// href pattern here are the server's.
//
// # SECURITY: body_html was sanitised by nh3 on the server; this is a second line. It is
// parsed inertly (DOMParser runs nothing), any element outside the list becomes its text,
// and every attribute outside the list is removed. It never goes through innerHTML.
export const ALLOWED_TAGS = new Set([
  "p", "br", "hr", "strong", "em", "del", "code", "pre", "blockquote", "ul", "ol", "li",
  "h1", "h2", "h3", "h4", "h5", "h6", "a", "table", "thead", "tbody", "tr", "th", "td",
]);
export const ALLOWED_ATTRIBUTES = { a: new Set(["href", "title"]) };
export const LINK_REL = "noopener nofollow noreferrer";
export const SAFE_HREF = new RegExp(String.raw`^(?:https?://[^\s]+|mailto:[^\s]+|/(?!/)[^\s]*|#[^\s]*)$`, "i");

/** The nodes of sanitised markdown ``html``, ready to append to this document. */
export function markdownNodes(html) {
  const doc = new DOMParser().parseFromString(`<div>${html}</div>`, "text/html");
  const root = doc.body.firstChild;
  const walk = (node) => {
    for (const child of [...node.childNodes]) {
      if (child.nodeType === Node.TEXT_NODE) continue;
      const tag = child.nodeType === Node.ELEMENT_NODE ? child.tagName.toLowerCase() : "";
      if (!ALLOWED_TAGS.has(tag)) {
        child.replaceWith(document.createTextNode(child.textContent || ""));
        continue;
      }
      const allowed = ALLOWED_ATTRIBUTES[tag] || new Set();
      for (const attr of [...child.attributes]) {
        const keep = allowed.has(attr.name) && (attr.name !== "href" || SAFE_HREF.test(attr.value));
        if (!keep) child.removeAttribute(attr.name);
      }
      if (tag === "a") child.setAttribute("rel", LINK_REL);
      walk(child);
    }
  };
  walk(root);
  return [...root.childNodes].map((n) => document.importNode(n, true));
}
