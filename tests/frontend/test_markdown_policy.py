"""One markdown policy: the browser's second filter of a live comment's HTML
(frontend/assets/markdown-policy.js) keeps exactly what core/markdown.py lets through."""

from __future__ import annotations

import re
from pathlib import Path

from core import markdown

POLICY_JS = (Path(__file__).resolve().parents[2] / "frontend" / "assets" / "markdown-policy.js").read_text()


def _js_constant(name: str) -> str:
    found = re.search(rf"export const {name} = (.+?);\n", POLICY_JS, re.S)
    assert found is not None, name
    return found.group(1)


def test_the_browser_allows_the_servers_tags() -> None:
    tags = set(re.findall(r'"([a-z0-9]+)"', _js_constant("ALLOWED_TAGS")))

    assert tags == markdown.ALLOWED_TAGS


def test_the_browser_allows_the_servers_attributes_and_link_rel() -> None:
    attributes = _js_constant("ALLOWED_ATTRIBUTES")

    assert re.findall(r"(\w+): new Set", attributes) == list(markdown.ALLOWED_ATTRIBUTES)
    assert set(re.findall(r'"(\w+)"', attributes)) == markdown.ALLOWED_ATTRIBUTES["a"]
    assert _js_constant("LINK_REL") == f'"{markdown.LINK_REL}"'


def test_the_browser_checks_hrefs_with_the_servers_pattern() -> None:
    found = re.search(r"String\.raw`(.+?)`, \"i\"\)", _js_constant("SAFE_HREF"))

    assert found is not None
    assert found.group(1) == markdown.SAFE_HREF.pattern
    assert markdown.SAFE_HREF.flags & re.I
