"""@mentions in markdown text. Pure (no Django).

``@name`` mentions a user or a team (names follow the URL-segment rule: lower-case
letters, digits, ``-`` and ``_``; matched case-insensitively). Not a mention:

* text in code: inline spans (`` `@ana` ``) and fenced or indented code blocks;
* e-mail addresses and paths (``ana@example.com``, ``/users/@ana``): the ``@`` must
  follow the start of the text, white space or an opening punctuation mark;
* a name followed by more name characters that do not fit the rule (``@ana.b`` is
  ``@ana`` followed by ``.b``: as on GitHub, trailing punctuation ends the name).
"""

from __future__ import annotations

import re

MAX_MENTIONS = 50

_FENCE = re.compile(r"^( {0,3})(`{3,}|~{3,})[^\n]*\n.*?(?:^\1?\2[`~]*[ \t]*$|\Z)", re.M | re.S)
_INDENTED = re.compile(r"(?:^(?: {4}|\t)[^\n]*(?:\n|$))+", re.M)
_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.S)
_MENTION = re.compile(r"(?:(?<=^)|(?<=[\s(\[{\"'*_~>,;:!]))@([A-Za-z0-9][A-Za-z0-9_-]{0,63})(?![A-Za-z0-9_@-])")


def strip_code(text: str) -> str:
    """The text with code blocks and inline code spans blanked out (same length elsewhere)."""
    text = _FENCE.sub(lambda m: " " * len(m.group(0)), text)
    text = _INDENTED.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    return _SPAN.sub(lambda m: " " * len(m.group(0)), text)


def find_mentions(text: str) -> list[str]:
    """The names mentioned in ``text``, lower-cased, in order of first appearance, unique,
    at most MAX_MENTIONS."""
    if not text or "@" not in text:
        return []
    found: dict[str, None] = {}
    for match in _MENTION.finditer(strip_code(text)):
        name = match.group(1).lower()
        # A trailing '-' or '_' is punctuation in prose ("@ana_"), not part of the name.
        name = name.rstrip("-_") or name
        found.setdefault(name, None)
        if len(found) >= MAX_MENTIONS:
            break
    return list(found)


def mention_prefix(text: str, cursor: int) -> str | None:
    """The partial name being typed at ``cursor`` (``"an"`` in ``"hi @an|"``), or None —
    what the editor completes. Mirrors the rule above for the character before ``@``."""
    before = text[:cursor]
    match = re.search(r"(?:^|[\s(\[{\"'*_~>,;:!])@([A-Za-z0-9_-]{0,64})$", before)
    return match.group(1).lower() if match else None
