"""SCIM filters (RFC 7644 §3.4.2.2) compiled to one Django ``Q``: the list is filtered and
paged by the database, never in Python.

The filter is parsed by scim2-models (``ScimFilter``: its grammar, its errors); this module
walks the parsed tree. Only the attributes Assay stores can be filtered on; any other is an
``invalidFilter`` error naming it (never a silent "matches nothing"). String comparisons
are case-insensitive, as the published attributes are ``caseExact: false``.

# SECURITY: attribute names map through the fixed tables below to model fields; nothing from
# the filter reaches ``filter(**…)`` as a field name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Q
from django.utils.dateparse import parse_datetime
from scim2_models import SCIMException, ScimFilter
from scim2_models.path.expressions import (
    AttrPath,
    CompareOperator,
    Comparison,
    FilterNode,
    LogicalExpr,
    LogicalOperator,
    Not,
    Present,
    ValuePath,
)

from core.errors import Invalid

MAX_FILTER_LENGTH = 2000


class FilterError(Invalid):
    """A filter Assay cannot evaluate: scimType ``invalidFilter``."""

    default_code = "invalidFilter"


@dataclass(frozen=True)
class Field:
    """One filterable attribute: a model field (or a Q builder for a computed one) and its kind."""

    lookup: str | Callable[[str, Any], Q]
    kind: str = "string"  # string | bool | datetime | id


def _user_name(op: str, value: Any) -> Q:
    suffix = {"eq": "iexact", "co": "icontains", "sw": "istartswith", "ew": "iendswith"}.get(op, op)
    return Q(**{f"scim_user_name__{suffix}": value}) | Q(scim_user_name="", **{f"username__{suffix}": value})


USER_FIELDS: dict[str, Field] = {
    "id": Field("pk", "id"),
    "username": Field(_user_name),
    "externalid": Field("external_id"),
    "emails": Field("email"),
    "emails.value": Field("email"),
    "name.givenname": Field("first_name"),
    "name.familyname": Field("last_name"),
    "active": Field("is_active", "bool"),
    "meta.created": Field("date_joined", "datetime"),
    "meta.lastmodified": Field("modified_at", "datetime"),
}

GROUP_FIELDS: dict[str, Field] = {
    "id": Field("pk", "id"),
    "displayname": Field("display_name"),
    "externalid": Field("external_id"),
    "members": Field(lambda op, v: Q(memberships__user_id=v, memberships__managed_by="scim"), "id"),
    "members.value": Field(lambda op, v: Q(memberships__user_id=v, memberships__managed_by="scim"), "id"),
    "meta.created": Field("created_at", "datetime"),
    "meta.lastmodified": Field("modified_at", "datetime"),
}

_STRING_LOOKUPS = {"eq": "iexact", "co": "icontains", "sw": "istartswith", "ew": "iendswith"}
_ORDER_LOOKUPS = {"gt": "gt", "ge": "gte", "lt": "lt", "le": "lte"}


def _name(attr_path: AttrPath, prefix: str = "") -> str:
    # A fully qualified name (urn:…:User:userName) names the same attribute: the URN is dropped.
    name = f"{attr_path.attr}.{attr_path.sub_attr}" if attr_path.sub_attr else attr_path.attr
    return f"{prefix}.{name}".lower() if prefix else name.lower()


class _Compiler:
    def __init__(self, fields: dict[str, Field]) -> None:
        self.fields = fields

    def field(self, name: str) -> Field:
        if name not in self.fields:
            raise FilterError(f"Filtering on {name!r} is not supported.", field="filter")
        return self.fields[name]

    def visit(self, node: FilterNode, prefix: str = "") -> Q:
        if isinstance(node, LogicalExpr):
            parts = [self.visit(term, prefix) for term in node.terms]
            combined = parts[0]
            for part in parts[1:]:
                combined = combined & part if node.op == LogicalOperator.and_ else combined | part
            return combined
        if isinstance(node, Not):
            return ~self.visit(node.expr, prefix)
        if isinstance(node, ValuePath):
            return self.visit(node.val_filter, _name(node.attr_path, prefix))
        if isinstance(node, Present):
            name = _name(node.attr_path, prefix)
            field = self.field(name)
            if callable(field.lookup) or field.kind != "string":
                return Q(pk__isnull=False) if field.kind != "string" else ~Q(pk__isnull=True)
            return ~Q(**{field.lookup: ""})
        if isinstance(node, Comparison):
            return self.comparison(_name(node.attr_path, prefix), node.op, node.value)
        raise FilterError("This filter is not supported.", field="filter")

    def comparison(self, name: str, op: CompareOperator, value: Any) -> Q:
        field = self.field(name)
        operator = op.value
        if field.kind == "id":
            if not isinstance(value, str | int) or not str(value).isdigit() or len(str(value)) > 18:
                return Q(pk__in=[])  # no such id: matches nothing (ids are numbers)
            if operator not in ("eq", "ne"):
                raise FilterError(f"{name} only supports eq and ne.", field="filter")
            value = int(value)
        elif field.kind == "bool":
            if not isinstance(value, bool) or operator not in ("eq", "ne"):
                raise FilterError(f"{name} compares with eq or ne to true or false.", field="filter")
        elif field.kind == "datetime":
            parsed = parse_datetime(value) if isinstance(value, str) else None
            if parsed is None or operator not in ("eq", "ne", *_ORDER_LOOKUPS):
                raise FilterError(f"{name} compares to a date-time such as 2026-01-31T12:00:00Z.", field="filter")
            value = parsed
        elif not isinstance(value, str):
            raise FilterError(f"{name} compares to a string.", field="filter")
        return self._lookup(field, operator, value)

    def _lookup(self, field: Field, operator: str, value: Any) -> Q:
        negate = operator == "ne"
        op = "eq" if negate else operator
        if callable(field.lookup):
            q = field.lookup(op, value)
        elif field.kind == "string" and op in _STRING_LOOKUPS:
            q = Q(**{f"{field.lookup}__{_STRING_LOOKUPS[op]}": value})
        elif op in _ORDER_LOOKUPS:
            q = Q(**{f"{field.lookup}__{_ORDER_LOOKUPS[op]}": value})
        elif op == "eq":
            q = Q(**{field.lookup: value})
        else:
            raise FilterError(f"The operator {operator!r} does not apply here.", field="filter")
        return ~q if negate else q


def compile_filter(text: str, fields: dict[str, Field]) -> Q:
    """The ``Q`` of a SCIM filter string; FilterError when it cannot be evaluated."""
    if len(text) > MAX_FILTER_LENGTH:
        raise FilterError(f"A filter is at most {MAX_FILTER_LENGTH} characters.", field="filter")
    try:
        ast = ScimFilter(text).ast
    except (SCIMException, ValueError) as exc:  # the library's syntax errors
        raise FilterError(f"The filter is not valid: {exc}", field="filter") from None
    return _Compiler(fields).visit(ast)


def is_datetime(value: object) -> bool:
    return isinstance(value, datetime)
