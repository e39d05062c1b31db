"""Line diffs of user text (report revisions, run notes). Pure (no Django): difflib's
unified diff, each line tagged with what it is, for a diff view."""

from __future__ import annotations

import difflib
from dataclasses import dataclass


@dataclass(frozen=True)
class DiffLine:
    kind: str  # "add", "del", "hunk", "same" or "meta" (the two file lines)
    text: str


def unified(old: list[str], new: list[str], *, old_name: str, new_name: str, context: int = 3) -> list[DiffLine]:
    lines: list[DiffLine] = []
    for line in difflib.unified_diff(old, new, old_name, new_name, lineterm="", n=context):
        if line.startswith(("---", "+++")):
            kind = "meta"
        elif line.startswith("@@"):
            kind = "hunk"
        elif line.startswith("+"):
            kind = "add"
        elif line.startswith("-"):
            kind = "del"
        else:
            kind = "same"
        lines.append(DiffLine(kind=kind, text=line))
    return lines
