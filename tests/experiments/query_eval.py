"""A straightforward Python evaluation of the run query language, the reference the
compiled SQL is checked against (test_query_properties.py), and a renderer from AST to text."""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from experiments.query import parser
from experiments.query.parser import And, In, IsNull, Node, Not, Or

OPS = {"=": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


@dataclass
class RunData:
    name: str
    status: str
    start_time: datetime
    end_time: datetime | None
    experiment: str = "default"
    author: str = "owner"
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


def _text(actual: str, op: str, expected: str) -> bool:
    if op in parser.TEXT_OPS:
        matched = parser.like_regex(expected, case_insensitive="ilike" in op).fullmatch(actual) is not None
        return not matched if op.startswith("not ") else matched
    return bool(OPS[op](actual, expected))


def _attribute(run: RunData, name: str) -> Any:
    if name == "duration":
        return None if run.end_time is None else (run.end_time - run.start_time).total_seconds()
    return getattr(run, name)


def holds(node: Node, run: RunData) -> bool:
    if isinstance(node, And):
        return all(holds(item, run) for item in node.items)
    if isinstance(node, Or):
        return any(holds(item, run) for item in node.items)
    if isinstance(node, Not):
        return not holds(node.item, run)
    fld = node.field
    if fld.entity == "attribute":
        actual = _attribute(run, fld.key)
        if isinstance(node, IsNull):
            return (actual is None) != node.negated
        if actual is None:
            return False
        kind = parser.ATTRIBUTES[fld.key][1]

        def convert(value: parser.Value) -> Any:
            if kind == "time":
                return parser.parse_time(value, 0)
            return value.lower() if kind == "status" and isinstance(value, str) else value

        if isinstance(node, In):
            return (actual in [convert(v) for v in node.values]) != node.negated
        if node.op in parser.TEXT_OPS:
            return _text(actual, node.op, str(node.value))
        return bool(OPS[node.op](actual, convert(node.value)))
    stores: dict[str, dict[str, Any]] = {"metric": run.metrics, "param": run.params, "tag": run.tags}
    store = stores[fld.entity]
    if isinstance(node, IsNull):
        return (fld.key not in store) != node.negated
    if fld.key not in store:
        return False
    actual = store[fld.key]
    if fld.entity == "metric":
        if isinstance(node, In):
            return (actual in node.values) != node.negated
        return bool(OPS[node.op](actual, node.value))
    number = parser.numeric_text(actual)
    if isinstance(node, In):
        member = any(v == actual if isinstance(v, str) else number is not None and v == number for v in node.values)
        return member != node.negated
    if isinstance(node.value, float):
        return number is not None and bool(OPS[node.op](number, node.value))
    return _text(actual, node.op, node.value)


def _quote(value: parser.Value) -> str:
    if isinstance(value, float):
        return repr(value)
    return "'" + value.replace("'", "''") + "'"


def _field(fld: parser.Field) -> str:
    prefix = {"metric": "metrics", "param": "params", "tag": "tags", "attribute": "attributes"}[fld.entity]
    key = fld.key
    if all(c.isalnum() or c in "_./:-" for c in key):
        return f"{prefix}.{key}"
    return f"{prefix}.`{key}`"


def render(node: Node) -> str:
    if isinstance(node, And):
        return "(" + " AND ".join(render(i) for i in node.items) + ")"
    if isinstance(node, Or):
        return "(" + " or ".join(render(i) for i in node.items) + ")"
    if isinstance(node, Not):
        return f"NOT {render(node.item)}"
    if isinstance(node, IsNull):
        return f"{_field(node.field)} IS {'NOT ' if node.negated else ''}NULL"
    if isinstance(node, In):
        values = ", ".join(_quote(v) for v in node.values)
        return f"{_field(node.field)} {'NOT ' if node.negated else ''}IN ({values})"
    return f"{_field(node.field)} {node.op.upper()} {_quote(node.value)}"
