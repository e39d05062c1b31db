"""Live blocks in a report's markdown. Pure (no Django).

A live block is a fenced code block whose info string starts with ``assay-``; its
parameters are ``key=value`` pairs on the fence line (values with spaces in quotes) and/or
``key: value`` lines in the block::

    ```assay-chart metrics=val/loss,train/loss query="params.lr > 0.01"
    ```

Kinds: ``assay-chart`` (metrics, query, limit), ``assay-runs`` (query, columns, limit,
order), ``assay-confusion`` (run, name), ``assay-diff`` (model, from, to), ``assay-review``
(request). :func:`split` cuts a body into markdown text and blocks, in order; each block
gets its index (its place among the body's blocks: what a frozen snapshot is keyed by).

# SECURITY: parameters are data. Unknown kinds and keys, over-long values and control
characters are refused here with a message naming them; what the parameters mean (a query,
a run id) is checked where they are resolved, and only ever reaches SQL as bound values.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

MAX_BLOCKS = 50
MAX_VALUE = 1000
MAX_METRICS = 10
MAX_COLUMNS = 12
MAX_LIMIT = 200

KINDS: dict[str, set[str]] = {
    "chart": {"metrics", "query", "limit", "title"},
    "runs": {"query", "columns", "limit", "order", "title"},
    "confusion": {"run", "name", "title"},
    "diff": {"model", "from", "to", "title"},
    "review": {"request", "title"},
}
REQUIRED: dict[str, set[str]] = {
    "chart": {"metrics"},
    "runs": set(),
    "confusion": {"run"},
    "diff": {"model", "from", "to"},
    "review": {"request"},
}
DEFAULT_LIMIT = {"chart": 20, "runs": 20}

# An opening fence of three or more backticks or tildes whose info string is assay-<kind>,
# up to a closing fence of the same character and at least the same length.
_BLOCK = re.compile(
    r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})[ \t]*assay-(?P<kind>[A-Za-z0-9_-]*)(?P<info>[^\n]*)\n"
    r"(?P<content>.*?)"
    r"(?:^ {0,3}(?P=fence)[`~]*[ \t]*$\n?|\Z)",
    re.M | re.S,
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_LINE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*[:=]\s*(.*?)\s*$")


@dataclass
class Block:
    index: int
    kind: str
    params: dict[str, str] = field(default_factory=dict)
    error: str | None = None  # why the block cannot be read (shown in its place)
    source: str = ""

    def get(self, name: str, default: str = "") -> str:
        return self.params.get(name, default)

    def int_param(self, name: str, default: int, lo: int, hi: int) -> int:
        raw = self.params.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise BlockError(f"{name} must be a whole number from {lo} to {hi}.") from None
        if not lo <= value <= hi:
            raise BlockError(f"{name} must be a whole number from {lo} to {hi}.")
        return value

    def list_param(self, name: str, limit: int) -> list[str]:
        items = [item.strip() for item in self.params.get(name, "").split(",") if item.strip()]
        if len(items) > limit:
            raise BlockError(f"{name} takes at most {limit} items.")
        return items


class BlockError(ValueError):
    """A block's parameters cannot be used; the message is shown in the block's place."""


Segment = str | Block


def _parse_params(kind: str, info: str, content: str) -> dict[str, str]:
    params: dict[str, str] = {}
    try:
        words = shlex.split(info, posix=True)
    except ValueError as exc:
        raise BlockError(f"Cannot read the parameters: {exc}.") from None
    pairs: list[tuple[str, str]] = []
    for word in words:
        if "=" not in word:
            raise BlockError(f"Parameters are key=value; {word[:40]!r} is not.")
        key, _, value = word.partition("=")
        pairs.append((key.strip(), value))
    for line in content.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None:
            raise BlockError(f"Lines in the block are key: value; {line.strip()[:40]!r} is not.")
        value = match.group(2)
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        pairs.append((match.group(1), value))
    allowed = KINDS[kind]
    for key, value in pairs:
        key = key.lower()
        if key not in allowed:
            raise BlockError(f"assay-{kind} has no parameter {key[:40]!r} (it takes {', '.join(sorted(allowed))}).")
        if len(value) > MAX_VALUE or _CONTROL.search(value):
            raise BlockError(f"{key} is too long or holds control characters.")
        params[key] = value
    missing = sorted(REQUIRED[kind] - {k for k, v in params.items() if v.strip()})
    if missing:
        raise BlockError(f"assay-{kind} needs {', '.join(missing)}.")
    return params


def split(body: str) -> list[Segment]:
    """The body as markdown text (``str``) and blocks (:class:`Block`), in order. A block that
    cannot be read keeps its place with ``error`` set; beyond MAX_BLOCKS blocks, the rest
    carry an error too (a report is read by people, not a dashboard of hundreds)."""
    segments: list[Segment] = []
    position = 0
    for index, match in enumerate(_BLOCK.finditer(body)):
        if match.start() > position:
            segments.append(body[position : match.start()])
        kind = match.group("kind").lower()
        block = Block(index=index, kind=kind, source=match.group(0))
        if index >= MAX_BLOCKS:
            block.error = f"A report shows at most {MAX_BLOCKS} live blocks."
        elif kind not in KINDS:
            block.error = f"Unknown block assay-{kind[:40]} (kinds: {', '.join('assay-' + k for k in KINDS)})."
        else:
            try:
                block.params = _parse_params(kind, match.group("info"), match.group("content"))
            except BlockError as exc:
                block.error = str(exc)
        segments.append(block)
        position = match.end()
    if position < len(body):
        segments.append(body[position:])
    return segments


def blocks_of(body: str) -> list[Block]:
    return [s for s in split(body) if isinstance(s, Block)]
