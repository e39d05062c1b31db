"""Sanitisation of user-written markdown (reviews, comments, model descriptions) against payloads that have worked on comparable tools
(GitLab, Gitea, MLflow, Jupyter): script URLs in every spelling, raw HTML and event
handlers, SVG, entity encoding, reference links, autolinks, nested markdown tricks."""

from __future__ import annotations

import re

import pytest

from core.markdown import render

PAYLOADS = [
    "[x](javascript:alert(1))",
    "[x](JaVaScRiPt:alert(1))",
    "[x]( javascript:alert(1))",
    "[x](&#106;avascript:alert(1))",
    "[x](&#x6A;avascript&#x3A;alert(1))",
    "[x](javascript&colon;alert(1))",
    "[x](java\tscript:alert(1))",
    "[x](vbscript:msgbox(1))",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "![x](javascript:alert(1))",
    '![x](x" onerror="alert(1))',
    "<javascript:alert(1)>",
    "[a]: javascript:alert(1)\n\n[b][a]",
    '<img src=x onerror="alert(1)">',
    "<svg onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    "<script>alert(1)</script>",
    "<iframe src=javascript:alert(1)></iframe>",
    '<a href="javascript:alert(1)">x</a>',
    "<details open ontoggle=alert(1)>",
    "<style>*{background:url(javascript:alert(1))}</style>",
    "[<img src=x onerror=alert(1)>](https://example.com)",
    '[x](https://example.com "title" onmouseover=alert(1))',
    '[x](https://example.com"onmouseover="alert(1))',
    "**<img src=x onerror=alert(1)>**",
    "`<script>` and ```\n<script>alert(1)</script>\n```",
    "<div>\n<script>alert(1)</script>\n</div>",
    "<!--><img src=x onerror=alert(1)>-->",
    "<math><mi xlink:href=javascript:alert(1)>x</mi></math>",
    "[x](\x00javascript:alert(1))",
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_no_payload_yields_script_handlers_or_unsafe_urls(payload: str) -> None:
    html = render(payload)

    assert not re.search(r"<\s*(script|svg|img|iframe|style|math|details|object|embed)\b", html, re.I), html
    for href in re.findall(r'<a [^>]*href="([^"]*)"', html):
        assert href.startswith(("http://", "https://", "mailto:", "#")) or re.match(r"^/[^/]", href), html


def test_no_tag_carries_an_event_handler_attribute() -> None:
    for payload in PAYLOADS:
        for tag in re.findall(r"<[a-z][^>]*>", render(payload)):
            assert not re.search(r"\son\w+=", tag), (payload, tag)


def test_links_are_kept_with_rel_noopener_nofollow() -> None:
    html = render("[docs](https://example.com/a?b=1) and <https://example.com>")

    assert '<a href="https://example.com/a?b=1" rel="noopener nofollow noreferrer">docs</a>' in html


def test_protocol_relative_and_spaced_hrefs_are_dropped() -> None:
    assert "href" not in render("[x](//evil.example/a)")
    assert "href" not in render("[x](<java script:alert(1)>)")
    assert 'href="/acme/proj/"' in render("[x](/acme/proj/)")


def test_raw_html_is_shown_as_text() -> None:
    assert render("<b>bold</b>") == "<p>&lt;b&gt;bold&lt;/b&gt;</p>"


def test_markdown_still_renders() -> None:
    html = render("# Title\n\n- **a**\n- `b`\n\n| k | v |\n|---|---|\n| acc | 0.9 |")

    assert "<h1>Title</h1>" in html
    assert "<strong>a</strong>" in html
    assert "<code>b</code>" in html
    assert "<td>acc</td>" in html
