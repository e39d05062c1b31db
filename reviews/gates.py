"""Metric gates: boolean expressions comparing the candidate with the version the alias
holds now. Pure (lark, no Django).

    candidate.metrics.acc >= current.metrics.acc - 0.005
    candidate.metrics.loss <= 0.3 and candidate.metrics.`val auc` > current.metrics.`val auc`

The run query language (``experiments/query``) has one prefix per field and no
arithmetic, so gates have this small grammar of their own, in the same spelling: fields
are ``<side>.metrics.<key>`` (side ``candidate`` or ``current``; ``metric`` is accepted
too), keys as in the query language (letters, digits, ``_ . / : -`` or quoted in
backticks or double quotes); numbers; ``+ - * /`` and parentheses; comparisons
``< <= > >= = == !=``; ``and``, ``or``, ``not`` (case-insensitive).

A gate whose side has no such metric (or whose alias points nowhere yet, for
``current``) is not "false": evaluation raises :class:`MissingValue`, and the check says
which value was missing.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from lark import Lark, Token, Transformer, UnexpectedInput
from lark.exceptions import VisitError

MAX_EXPRESSION = 1000

GRAMMAR = r"""
?start: or_expr
?or_expr: and_expr (_OR and_expr)*  -> or_
?and_expr: not_expr (_AND not_expr)* -> and_
?not_expr: _NOT not_expr -> not_
         | comparison
         | "(" or_expr ")"
comparison: sum COMPARATOR sum
?sum: product | sum ADDOP product -> arith
?product: atom | product MULOP atom -> arith
?atom: NUMBER -> number
     | "-" atom -> neg
     | field
     | "(" sum ")"
field: SIDE "." ENTITY "." key
key: NAME | BACKTICKED | QUOTED
SIDE.2: /candidate|current/i
ENTITY.2: /metrics?/i
_OR.3: /or\b/i
_AND.3: /and\b/i
_NOT.3: /not\b/i
COMPARATOR: "<=" | ">=" | "==" | "!=" | "<" | ">" | "="
ADDOP: "+" | "-"
MULOP: "*" | "/"
NUMBER: /(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?/
NAME: /[A-Za-z_][A-Za-z0-9_.\/:-]*/
BACKTICKED: /`[^`]+`/
QUOTED: /"(?:[^"]|"")+"/
%import common.WS
%ignore WS
"""

_PARSER = Lark(GRAMMAR, parser="lalr", maybe_placeholders=False)

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "=": operator.eq,
    "==": operator.eq,
    "!=": operator.ne,
}
_ARITH: dict[str, Callable[[float, float], float]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
}


class GateError(ValueError):
    """The expression does not parse; ``position`` is the 0-based offset of the problem."""

    def __init__(self, message: str, position: int | None = None) -> None:
        super().__init__(message)
        self.position = position


class MissingValue(Exception):
    def __init__(self, side: str, key: str) -> None:
        super().__init__(f"{side}.metrics.{key}")
        self.side = side
        self.key = key


Values = Mapping[str, Mapping[str, Any] | None]
Node = Callable[[Values, list[str]], Any]


@dataclass(frozen=True)
class Gate:
    expression: str
    evaluate_node: Node
    fields: tuple[tuple[str, str], ...]

    def evaluate(self, *, candidate: Mapping[str, Any], current: Mapping[str, Any] | None) -> GateResult:
        """Evaluate over the two sides' summary metrics (``{"acc": 0.91, …}``)."""
        trace: list[str] = []
        try:
            passed = bool(self.evaluate_node({"candidate": candidate, "current": current}, trace))
        except MissingValue as missing:
            return GateResult(passed=None, missing=f"{missing.side}.metrics.{missing.key}", values=trace)
        except ZeroDivisionError:
            return GateResult(passed=False, missing=None, values=[*trace, "division by zero"])
        return GateResult(passed=passed, missing=None, values=trace)


@dataclass(frozen=True)
class GateResult:
    passed: bool | None  # None: a value was missing
    missing: str | None
    values: list[str]


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    return None


class _Build(Transformer[Token, Any]):
    def __init__(self) -> None:
        super().__init__()
        self.fields: list[tuple[str, str]] = []

    def number(self, items: list[Token]) -> Node:
        value = float(items[0])
        return lambda values, trace: value

    def neg(self, items: list[Node]) -> Node:
        inner = items[0]
        return lambda values, trace: -inner(values, trace)

    def key(self, items: list[Token]) -> str:
        text = str(items[0])
        if items[0].type == "BACKTICKED":
            return text[1:-1]
        if items[0].type == "QUOTED":
            return text[1:-1].replace('""', '"')
        return text

    def field(self, items: list[Any]) -> Node:
        side, key = str(items[0]).lower(), items[2]
        self.fields.append((side, key))

        def read(values: Values, trace: list[str]) -> float:
            metrics = values.get(side)
            value = _number(metrics.get(key)) if metrics is not None else None
            if value is None or math.isnan(value):
                raise MissingValue(side, key)
            trace.append(f"{side}.metrics.{key} = {value:g}")
            return value

        return read

    def arith(self, items: list[Any]) -> Node:
        left, op, right = items[0], _ARITH[str(items[1])], items[2]
        return lambda values, trace: op(left(values, trace), right(values, trace))

    def comparison(self, items: list[Any]) -> Node:
        left, op, right = items[0], _COMPARE[str(items[1])], items[2]
        return lambda values, trace: op(left(values, trace), right(values, trace))

    def and_(self, items: list[Node]) -> Node:
        return lambda values, trace: all(item(values, trace) for item in items)

    def or_(self, items: list[Node]) -> Node:
        return lambda values, trace: any(item(values, trace) for item in items)

    def not_(self, items: list[Node]) -> Node:
        inner = items[0]
        return lambda values, trace: not inner(values, trace)


def parse(expression: str) -> Gate:
    if not isinstance(expression, str) or not expression.strip():
        raise GateError("A gate is an expression such as candidate.metrics.acc >= current.metrics.acc - 0.005.")
    if len(expression) > MAX_EXPRESSION:
        raise GateError(f"A gate is at most {MAX_EXPRESSION} characters.")
    try:
        tree = _PARSER.parse(expression)
    except UnexpectedInput as exc:
        position = getattr(exc, "pos_in_stream", None)
        raise GateError(
            f"Gate syntax error at character {position}: expected a comparison such as "
            "candidate.metrics.acc >= current.metrics.acc - 0.005.",
            position,
        ) from None
    builder = _Build()
    try:
        node = builder.transform(tree)
    except VisitError as exc:  # pragma: no cover - the grammar admits only what the builder handles
        raise GateError(str(exc.orig_exc)) from None
    if not callable(node) or tree.data not in {"comparison", "and_", "or_", "not_"}:
        raise GateError("A gate must be a comparison (or several joined by and/or), not a bare value.")
    return Gate(expression=expression, evaluate_node=node, fields=tuple(builder.fields))
