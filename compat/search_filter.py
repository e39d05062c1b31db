"""MLflow's filter strings for the registry and logged-model searches (pure, no Django).

``name = 'fraud'``, ``name LIKE 'fraud%' AND tags.stage = 'prod'``,
``run_id IN ('a', 'b')``, ``version_number > 2``, ``params.alpha = '0.5'``: clauses
joined by ``AND`` (MLflow's grammar has no ``OR`` here), each ``<key> <op> <value>``. Keys
are an attribute or ``tags.<key>`` / ``params.<key>`` (a key may be quoted with backticks
or double quotes). The searches evaluate the parsed clauses in Python over a project's
models, which are few compared with runs.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")

MAX_FILTER = 4_000
_TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.)*")
    | (?P<number>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)
    | (?P<op>!=|<=|>=|=|<|>)
    | (?P<paren>[(),])
    | (?P<word>[A-Za-z_][A-Za-z0-9_\-]*(?:\.(?:`[^`]+`|"[^"]+"|[A-Za-z0-9_\-]+))*|`[^`]+`)
    )""",
    re.VERBOSE,
)
WORD_OPS = {"LIKE", "ILIKE", "IN"}


class FilterError(ValueError):
    pass


@dataclass(frozen=True)
class Clause:
    kind: str  # "attribute" | "tag" | "param"
    key: str
    op: str  # = != < <= > >= LIKE ILIKE IN NOT IN
    value: Any  # str | float | tuple[str, ...]


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise FilterError(f"Invalid filter {text!r}: unexpected text at position {pos}.")
        kind = match.lastgroup
        assert kind is not None
        out.append((kind, match.group(kind)))
        pos = match.end()
    return out


def _unquote(text: str) -> str:
    if text[0] == "'":
        return text[1:-1].replace("''", "'").replace("\\'", "'")
    return text[1:-1].replace('\\"', '"')


def _key(word: str, attributes: set[str], entities: set[str]) -> tuple[str, str]:
    if word.startswith("`"):
        word = word[1:-1]
    head, dot, rest = word.partition(".")
    if dot and head in {"tag", "tags", "param", "params"}:
        key = rest[1:-1] if rest[:1] in {"`", '"'} else rest
        kind = "tag" if head.startswith("tag") else "param"
        if kind not in entities:
            raise FilterError(f"Invalid filter: {head}.<key> is not searchable here.")
        if not key:
            raise FilterError("Invalid filter: a tag or param key is empty.")
        return kind, key
    if dot and head in {"attribute", "attributes"}:
        word = rest
    if word not in attributes:
        raise FilterError(
            f"Invalid attribute key {word!r}: searchable keys are {', '.join(sorted(attributes))}"
            + (" and tags.<key>" if "tag" in entities else "")
            + (", params.<key>" if "param" in entities else "")
            + "."
        )
    return "attribute", word


def parse(text: Any, *, attributes: set[str], entities: set[str] = frozenset({"tag"})) -> list[Clause]:  # type: ignore[assignment]
    """The clauses of a filter (empty for an empty filter); FilterError saying what is wrong."""
    if text is None or text == "":
        return []
    if not isinstance(text, str) or len(text) > MAX_FILTER:
        raise FilterError(f"The filter must be a string of at most {MAX_FILTER} characters.")
    tokens = _tokens(text)
    clauses: list[Clause] = []
    index = 0

    def take() -> tuple[str, str]:
        nonlocal index
        if index >= len(tokens):
            raise FilterError(f"Invalid filter {text!r}: it ends too early.")
        token = tokens[index]
        index += 1
        return token

    while True:
        kind, word = take()
        if kind != "word":
            raise FilterError(f"Invalid filter {text!r}: expected a key, found {word!r}.")
        entity, key = _key(word, attributes, entities)
        kind, op = take()
        if kind == "word" and op.upper() == "NOT":
            kind, op2 = take()
            if op2.upper() != "IN":
                raise FilterError(f"Invalid filter {text!r}: NOT must be followed by IN.")
            op = "NOT IN"
        elif kind == "word" and op.upper() in WORD_OPS:
            op = op.upper()
        elif kind != "op":
            raise FilterError(f"Invalid filter {text!r}: expected a comparison after {word!r}.")
        value: Any
        if op in {"IN", "NOT IN"}:
            kind, paren = take()
            if paren != "(":
                raise FilterError(f"Invalid filter {text!r}: IN needs a list in parentheses.")
            items: list[str] = []
            while True:
                kind, item = take()
                if kind != "string":
                    raise FilterError(f"Invalid filter {text!r}: IN lists hold quoted strings.")
                items.append(_unquote(item))
                kind, sep = take()
                if sep == ")":
                    break
                if sep != ",":
                    raise FilterError(f"Invalid filter {text!r}: expected ',' or ')' in the IN list.")
            value = tuple(items)
        else:
            kind, raw = take()
            if kind == "string":
                value = _unquote(raw)
            elif kind == "number":
                value = float(raw)
            else:
                raise FilterError(f"Invalid filter {text!r}: expected a value after {op}, found {raw!r}.")
            if op in {"LIKE", "ILIKE"} and not isinstance(value, str):
                raise FilterError(f"Invalid filter {text!r}: {op} compares with a quoted string.")
        clauses.append(Clause(entity, key, op, value))
        if index >= len(tokens):
            return clauses
        kind, word = take()
        if kind != "word" or word.upper() != "AND":
            raise FilterError(f"Invalid filter {text!r}: clauses are joined by AND, found {word!r}.")


def like_regex(pattern: str, *, case_insensitive: bool) -> re.Pattern[str]:
    parts = []
    for ch in pattern:
        parts.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL if case_insensitive else re.DOTALL)


def matches(clause: Clause, value: Any) -> bool:
    """Whether ``value`` (None: the key is absent) satisfies ``clause``."""
    if value is None:
        # An absent key differs from every value: ``tags.`mlflow.prompt.is_prompt` != 'true'``
        # (which the 3.x client adds to every registered-model search) keeps untagged models.
        return clause.op in {"!=", "NOT IN"}
    op, want = clause.op, clause.value
    if op in {"IN", "NOT IN"}:
        inside = str(value) in want
        return inside if op == "IN" else not inside
    if op in {"LIKE", "ILIKE"}:
        return like_regex(str(want), case_insensitive=op == "ILIKE").fullmatch(str(value)) is not None
    left: Any = value
    if isinstance(want, float):
        try:
            left = float(value)
        except (TypeError, ValueError):
            return False
    else:
        left = str(value)
    if op == "=":
        return bool(left == want)
    if op == "!=":
        return bool(left != want)
    if isinstance(want, str) and op in {"<", "<=", ">", ">="}:
        raise FilterError(f"The comparison {op} needs a number.")
    return bool({"<": left < want, "<=": left <= want, ">": left > want, ">=": left >= want}[op])


def order_keys(order_by: Any, *, allowed: set[str], default: list[tuple[str, bool]]) -> list[tuple[str, bool]]:
    """``["name ASC", "version_number DESC"]`` as (key, ascending) pairs."""
    if order_by in (None, "", []):
        return default
    if isinstance(order_by, str):
        order_by = [order_by]
    if not isinstance(order_by, list) or len(order_by) > 10:
        raise FilterError("order_by must be a list of at most 10 '<key> [ASC|DESC]' strings.")
    out: list[tuple[str, bool]] = []
    for item in order_by:
        if not isinstance(item, str):
            raise FilterError("order_by items are strings such as 'name ASC'.")
        parts = item.split()
        if not parts or len(parts) > 2:
            raise FilterError(f"Invalid order_by clause {item!r}.")
        key = parts[0].removeprefix("attributes.").removeprefix("attribute.")
        if key not in allowed:
            raise FilterError(f"Invalid order_by key {parts[0]!r}: allowed are {', '.join(sorted(allowed))}.")
        direction = parts[1].upper() if len(parts) == 2 else "ASC"
        if direction not in {"ASC", "DESC"}:
            raise FilterError(f"Invalid order_by direction {parts[1]!r}: ASC or DESC.")
        out.append((key, direction == "ASC"))
    return out


def names_lowered(clauses: list[Clause]) -> list[Clause]:
    """Assay's model names are lower case: an equality on ``name`` compares lower-cased."""
    out = []
    for clause in clauses:
        if clause.kind == "attribute" and clause.key == "name" and clause.op in {"=", "!=", "IN", "NOT IN"}:
            value = (
                tuple(v.lower() for v in clause.value) if isinstance(clause.value, tuple) else str(clause.value).lower()
            )
            clause = Clause(clause.kind, clause.key, clause.op, value)
        out.append(clause)
    return out


def sort(
    items: list[T], order: list[tuple[str, bool]], value: Callable[[T, str], Any], *, tie: Callable[[T], Any]
) -> list[T]:
    """Sorted by the order keys (stable sorts from the last key to the first)."""
    out = sorted(items, key=tie)
    for key, ascending in reversed(order):
        out.sort(key=lambda item: (value(item, key) is None, value(item, key) or 0), reverse=not ascending)
    return out


def page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def read_page_token(token: Any) -> int:
    """The offset a page token carries (0 without one); FilterError for a token we did not write."""
    if token in (None, ""):
        return 0
    try:
        data = json.loads(base64.urlsafe_b64decode(str(token).encode()))
        offset = data["offset"]
        if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
            raise ValueError
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise FilterError(f"Invalid page token {str(token)[:100]!r}.") from None
    return offset
