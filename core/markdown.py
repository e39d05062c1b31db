"""The one markdown renderer and sanitiser policy for every user-written text: review
requests, reviews and comments (HTML cached in their rows), and the descriptions of models
and versions (rendered by their pages). The browser keeps to the same allow-list when it
inserts a live comment (frontend/assets/markdown-policy.js; a test compares the two).

# SECURITY: user-written markdown reaches a page only through :func:`render`: raw HTML is
escaped before rendering (it is text, never markup), the output is cleaned by nh3 with an
allow-list of tags, only ``href``/``title`` on links, only http, https and mailto URLs (so
``javascript:``, ``data:`` and ``vbscript:`` links, in any spelling or entity encoding, lose
their href), and every link gets ``rel="noopener nofollow noreferrer"``. Where HTML is
cached in a row, the raw markdown stays the source of truth.
"""

from __future__ import annotations

import re

import markdown as markdown_lib
import nh3
from django.utils.safestring import SafeString, mark_safe

ALLOWED_TAGS = {
    "p", "br", "hr", "strong", "em", "del", "code", "pre", "blockquote", "ul", "ol", "li",
    "h1", "h2", "h3", "h4", "h5", "h6", "a", "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}}
URL_SCHEMES = {"http", "https", "mailto"}
LINK_REL = "noopener nofollow noreferrer"
# Beyond nh3's scheme check: an href is an absolute http(s)/mailto URL, a site path or a
# fragment; anything else (a "relative" URL with spaces that some tool might re-join into
# a script URL, a protocol-relative //host) loses its href.
SAFE_HREF = re.compile(r"^(?:https?://[^\s]+|mailto:[^\s]+|/(?!/)[^\s]*|#[^\s]*)$", re.I)


def _attribute_filter(tag: str, attribute: str, value: str) -> str | None:
    if tag == "a" and attribute == "href" and not SAFE_HREF.match(value):
        return None
    return value


def _converter() -> markdown_lib.Markdown:
    md = markdown_lib.Markdown(extensions=["fenced_code", "tables"], output_format="html")
    # Raw HTML is not markup here: without these two, it is escaped and shown as text.
    md.preprocessors.deregister("html_block")
    md.inlinePatterns.deregister("html")
    return md


def render(text: str) -> str:
    """Sanitised HTML for ``text`` (markdown)."""
    if not text:
        return ""
    rendered = _converter().convert(text)
    return nh3.clean(
        rendered,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel=LINK_REL,
        strip_comments=True,
        attribute_filter=_attribute_filter,
    )


def render_safe(text: str) -> SafeString:
    """:func:`render` for a template that renders markdown on the fly (not cached in a row)."""
    return mark_safe(render(text))  # noqa: S308 - sanitised by render
