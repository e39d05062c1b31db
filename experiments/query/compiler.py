"""Compile a parsed filter and ordering into ONE ORM queryset over runs.

Every condition on a metric, param, config key or tag is an ``EXISTS`` over the indexed
summary tables (MetricSummary, Param, ConfigValue, Tag), so PostgreSQL plans them as semi-joins; attributes are
columns of the run. Ordering terms become annotations ``_k0, _k1, …`` so that keyset
pagination can compare against the last row's values in SQL, with the same expressions
and collations as the ORDER BY.

Semantics (the Python evaluator in tests/experiments/test_query_properties.py is the
reference):

* a condition on a metric/param/tag key the run lacks is false (``!=`` and ``NOT IN``
  included); ``NOT (…)`` is the complement; ``IS NULL`` means "the run lacks the key";
* ``metrics.k`` is the last logged value; NaN compares greater than every number and equal
  to itself (PostgreSQL's float order);
* params, config values (experiments/config_values.py) and tags are text; compared with a *number* they match when their value is a
  number (``parser.numeric_text``) and compare numerically; ``<``/``>`` on text compare
  code points (collation "C");
* a condition on a nullable attribute (end_time, duration, author) is false when it is null.

# SECURITY: keys and values only ever reach SQL as bound parameters; column names come
# from the fixed tables below, never from the request (no ORM filter injection).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from django.core import signing
from django.db.models import (
    BooleanField,
    Case,
    Exists,
    F,
    FilteredRelation,
    FloatField,
    Func,
    OrderBy,
    OuterRef,
    Q,
    QuerySet,
    Value,
    When,
    lookups,
)
from django.db.models.functions import Cast, Collate

from experiments.models import VALUE_PREFIX, ConfigValue, MetricSummary, Param, Run, Tag
from experiments.query import parser
from experiments.query.parser import Compare, Field, FilterError, In, IsNull, Node, OrderTerm

ValueModel = type[Param] | type[ConfigValue] | type[Tag]
KeyModel = type[MetricSummary] | ValueModel
# The table of each key-value entity.
VALUE_MODELS: dict[str, ValueModel] = {"param": Param, "config": ConfigValue, "tag": Tag}
# The relation from a run to each entity's rows (for ordering joins).
RELATIONS = {"metric": "summaries", "param": "params", "config": "config_values", "tag": "tags"}

# Canonical attribute name -> the run column it reads.
ATTRIBUTE_COLUMNS = {
    "id": "id",
    "name": "name",
    "status": "status",
    "experiment": "experiment__name",
    "author": "author__username",
    "start_time": "start_time",
    "end_time": "end_time",
    "created_at": "created_at",
    "updated_at": "updated_at",
    "notes": "notes",
    "fingerprint": "config_fingerprint",
}
NULLABLE_COLUMNS = {"end_time", "author__username"}
LOOKUPS = {"=": "exact", "<": "lt", "<=": "lte", ">": "gt", ">=": "gte"}
DEFAULT_ORDER = [OrderTerm(Field("attribute", "start_time"), descending=True)]


class Like(Func):
    """``lhs LIKE pattern`` (``\\`` escapes), as a boolean expression usable in filter()."""

    arg_joiner = " LIKE "
    template = "(%(expressions)s)"
    output_field = BooleanField()

    def __init__(self, lhs: Any, pattern: str, *, case_insensitive: bool = False) -> None:
        super().__init__(lhs, Value(pattern))
        if case_insensitive:
            self.arg_joiner = " ILIKE "


def _numeric(column: str = "value") -> Case:
    """The column as float8 when it is a number (parser.NUMERIC_TEXT_PATTERN), else NULL.
    CASE guarantees the cast only sees numbers: PostgreSQL may reorder AND'ed conditions."""
    return Case(
        When(**{f"{column}__regex": parser.NUMERIC_TEXT_PATTERN}, then=Cast(column, FloatField())),
        default=None,
        output_field=FloatField(),
    )


def _compare_q(column: str, op: str, value: Any) -> Q:
    if op in LOOKUPS:
        return Q(**{f"{column}__{LOOKUPS[op]}": value})
    if op == "!=":
        return ~Q(**{f"{column}__exact": value})
    raise AssertionError(op)


def _text_compare_q(column: str, op: str, value: str) -> Q:
    """Text comparison: equality as is, ordering and LIKE by code point ("C" collation)."""
    if op in ("=", "!="):
        return _compare_q(column, op, value)
    if op in parser.TEXT_OPS:
        match = Like(F(column), value, case_insensitive="ilike" in op)
        return ~Q(match) if op.startswith("not ") else Q(match)
    return _collated(column, op, value)


def _collated(column: str, op: str, value: str) -> Q:
    classes = {
        "<": lookups.LessThan,
        "<=": lookups.LessThanOrEqual,
        ">": lookups.GreaterThan,
        ">=": lookups.GreaterThanOrEqual,
    }
    return Q(classes[op](Collate(F(column), "C"), Value(value)))


def _key_exists(model: KeyModel, key: str, condition: Q | None = None) -> Exists:
    qs = model.objects.filter(run=OuterRef("pk"), key=key)
    if condition is not None:
        qs = qs.filter(condition)
    return Exists(qs)


def _prefix_in(texts: list[str]) -> Q:
    """``value IN texts`` written over the indexed prefix column ``value_prefix`` (the first
    VALUE_PREFIX characters, a stored generated column): for texts shorter than the prefix
    the two are the same; longer ones also check the value."""
    prefixes = sorted({t[:VALUE_PREFIX] for t in texts})
    q = Q(value_prefix__in=prefixes) if len(prefixes) > 1 else Q(value_prefix=prefixes[0])
    if any(len(t) >= VALUE_PREFIX for t in texts):
        q &= Q(value__in=texts)
    return q


def _kv_exists(model: ValueModel, key: str, op: str, value: parser.Value) -> Exists:
    qs = model.objects.filter(run=OuterRef("pk"), key=key)
    if op == "=" and isinstance(value, str):
        return Exists(qs.filter(_prefix_in([value])))
    if isinstance(value, float):
        qs = qs.annotate(_num=_numeric()).filter(_compare_q("_num", op, value), _num__isnull=False)
    else:
        qs = qs.filter(_text_compare_q("value", op, value))
    return Exists(qs)


def _kv_in_exists(model: ValueModel, key: str, values: tuple[parser.Value, ...], negated: bool) -> Exists:
    texts = [v for v in values if isinstance(v, str)]
    numbers = [v for v in values if isinstance(v, float)]
    qs = model.objects.filter(run=OuterRef("pk"), key=key)
    if numbers:
        qs = qs.annotate(_num=_numeric())
    if texts and not numbers and not negated:
        return Exists(qs.filter(_prefix_in(texts)))
    member = Q(pk__in=[])
    if texts:
        member |= Q(value__in=texts)
    if numbers:
        member |= Q(_num__in=numbers)
    if negated:
        # NOT IN: the run has the key and its value is none of the list (a value that is
        # not a number is none of the numbers).
        outside = ~Q(value__in=texts) if texts else Q()
        if numbers:
            outside &= Q(_num__isnull=True) | ~Q(_num__in=numbers)
        qs = qs.filter(outside)
    else:
        qs = qs.filter(member)
    return Exists(qs)


def _attribute_q(node: Compare | In | IsNull) -> Q:
    fld = node.field
    kind = parser.ATTRIBUTES[fld.key][1]
    if fld.key == "duration":
        return _duration_q(node)
    column = ATTRIBUTE_COLUMNS[fld.key]
    if isinstance(node, IsNull):
        return Q(**{f"{column}__isnull": not node.negated})
    guard = Q(**{f"{column}__isnull": False}) if column in NULLABLE_COLUMNS else Q()

    def convert(value: parser.Value) -> Any:
        if kind == "time":
            return parser.parse_time(value, fld.position)
        if kind == "status" and isinstance(value, str):
            return value.lower()
        return value

    if isinstance(node, In):
        values = [convert(v) for v in node.values]
        inside = Q(**{f"{column}__in": values})
        return guard & (~inside if node.negated else inside)
    if node.op in parser.TEXT_OPS:
        return guard & _text_compare_q(column, node.op, str(node.value))
    value = convert(node.value)
    if kind in ("string", "status") and node.op not in ("=", "!="):
        return guard & _collated(column, node.op, value)
    return guard & _compare_q(column, node.op, value)


def _duration_q(node: Compare | In | IsNull) -> Q:
    from datetime import timedelta

    if isinstance(node, IsNull):
        return Q(end_time__isnull=not node.negated)
    guard = Q(end_time__isnull=False)
    if isinstance(node, In):
        inside = Q(_duration__in=[timedelta(seconds=float(v)) for v in node.values])
        return guard & (~inside if node.negated else inside)
    return guard & _compare_q("_duration", node.op, timedelta(seconds=float(node.value)))


def _uses_duration(node: Node | None) -> bool:
    if node is None:
        return False
    if isinstance(node, parser.And | parser.Or):
        return any(_uses_duration(item) for item in node.items)
    if isinstance(node, parser.Not):
        return _uses_duration(node.item)
    return node.field.entity == "attribute" and node.field.key == "duration"


def compile_node(node: Node) -> Q:
    if isinstance(node, parser.And):
        q = Q()
        for item in node.items:
            q &= compile_node(item)
        return q
    if isinstance(node, parser.Or):
        q = Q(pk__in=[])
        for item in node.items:
            q |= compile_node(item)
        return q
    if isinstance(node, parser.Not):
        return ~compile_node(node.item)
    fld = node.field
    if fld.entity == "attribute":
        return _attribute_q(node)
    model: KeyModel = MetricSummary if fld.entity == "metric" else VALUE_MODELS[fld.entity]
    if isinstance(node, IsNull):
        exists = _key_exists(model, fld.key)
        return Q(exists) if node.negated else ~Q(exists)
    if fld.entity == "metric":
        present = Q(last__isnull=False)
        if isinstance(node, In):
            inside = Q(last__in=list(node.values))
            return Q(_key_exists(model, fld.key, present & (~inside if node.negated else inside)))
        return Q(_key_exists(model, fld.key, present & _compare_q("last", node.op, node.value)))
    kv_model = VALUE_MODELS[fld.entity]
    if isinstance(node, In):
        return Q(_kv_in_exists(kv_model, fld.key, node.values, node.negated))
    return Q(_kv_exists(kv_model, fld.key, node.op, node.value))


def apply_filter(qs: QuerySet[Run], node: Node | None) -> QuerySet[Run]:
    if node is None:
        return qs
    if _uses_duration(node):
        qs = qs.annotate(_duration=F("end_time") - F("start_time"))
    return qs.filter(compile_node(node))


# --- ordering and keyset pagination -----------------------------------------------------------


@dataclass(frozen=True)
class SortKey:
    alias: str
    descending: bool
    nullable: bool = True


# Columns that are never NULL: ordered without NULLS LAST, so that an index such as
# (project, -start_time) serves the default ordering.
NOT_NULL_ATTRIBUTES = {"id", "name", "status", "experiment", "start_time", "created_at", "updated_at", "notes"}


def _order_expressions(term: OrderTerm, relation: str) -> tuple[dict[str, FilteredRelation], list[Any]]:
    """The relations to join (as ``relation``) and the expressions to sort by for one term.

    Metrics, params and tags are LEFT JOINed on (run, key), which is unique, so a run stays
    one row; PostgreSQL hash-joins the key's rows (an index range) instead of running a
    subquery per run: ordering 100,000 runs by a metric takes ~60 ms instead of ~800 ms."""
    fld = term.field
    if fld.entity == "attribute":
        if fld.key == "duration":
            return {}, [F("end_time") - F("start_time")]
        return {}, [F(ATTRIBUTE_COLUMNS[fld.key])]
    related = RELATIONS[fld.entity]
    join = {relation: FilteredRelation(related, condition=Q(**{f"{related}__key": fld.key}))}
    if fld.entity == "metric":
        return join, [F(f"{relation}__last")]
    # Numbers first, in numeric order; then the other values as text.
    return join, [_numeric(f"{relation}__value"), F(f"{relation}__value")]


# Metric conditions that may be checked on the order-by join row instead of an EXISTS.
# ``!=`` and NOT IN are left out: negating a condition on a multi-valued relation makes
# the ORM write a subquery.
_JOINABLE_OPS = {"=", "<", "<=", ">", ">="}


def _conjuncts(node: Node | None) -> list[Node]:
    if node is None:
        return []
    if isinstance(node, parser.And):
        return [leaf for item in node.items for leaf in _conjuncts(item)]
    return [node]


def split_for_order(node: Node | None, terms: list[OrderTerm]) -> tuple[Node | None, dict[str, list[Compare | In]]]:
    """Move top-level metric conditions on a metric the results are ordered by onto the
    order-by join: ``(filter without them, {metric key: conditions})``.

    Same rows: a metric condition holds only when the run has the key with a non-null
    last value, and (run, key) is unique, so "an EXISTS row satisfies it" is "the joined
    row satisfies it". But the join becomes INNER and its nulls impossible, so the sort
    key is plain ``DESC``/``ASC`` and PostgreSQL can walk the ``(key, last, run)`` index
    in order and stop after a page, instead of finding every match and sorting (50 rows
    of 2,341 matches among 100,000 runs: ~10 ms instead of ~60; benchmarks/SEARCH.md)."""
    ordered = {t.field.key for t in terms if t.field.entity == "metric"}
    moved: dict[str, list[Compare | In]] = {}
    kept: list[Node] = []
    for leaf in _conjuncts(node):
        if (
            isinstance(leaf, Compare | In)
            and leaf.field.entity == "metric"
            and leaf.field.key in ordered
            and (leaf.op in _JOINABLE_OPS if isinstance(leaf, Compare) else not leaf.negated)
        ):
            moved.setdefault(leaf.field.key, []).append(leaf)
        else:
            kept.append(leaf)
    if not moved:
        return node, {}
    rest = None if not kept else kept[0] if len(kept) == 1 else parser.And(tuple(kept))
    return rest, moved


def _joined_metric_q(relation: str, conditions: list[Compare | In]) -> Q:
    q = Q(**{f"{relation}__last__isnull": False})
    for c in conditions:
        if isinstance(c, In):
            q &= Q(**{f"{relation}__last__in": list(c.values)})
        else:
            q &= Q(**{f"{relation}__last__{LOOKUPS[c.op]}": c.value})
    return q


def apply_order(
    qs: QuerySet[Run], terms: list[OrderTerm], joined: dict[str, list[Compare | In]] | None = None
) -> tuple[QuerySet[Run], list[SortKey]]:
    """Order by the terms (nulls last either way), then by id; annotate ``_k<i>`` per key.
    ``joined``: metric conditions moved onto the order-by join (see split_for_order)."""
    keys: list[SortKey] = []
    annotations: dict[str, Any] = {}
    pending = dict(joined or {})
    for index, term in enumerate(terms or DEFAULT_ORDER):
        relation = f"_r{index}"
        joins, expressions = _order_expressions(term, relation)
        if joins:
            qs = qs.annotate(**joins)
        nullable = not (term.field.entity == "attribute" and term.field.key in NOT_NULL_ATTRIBUTES)
        if term.field.entity == "metric" and term.field.key in pending:
            # One filter() call: the conditions apply to this join row (INNER), never null.
            qs = qs.filter(_joined_metric_q(relation, pending.pop(term.field.key)))
            nullable = False
        for expression in expressions:
            alias = f"_k{len(keys)}"
            annotations[alias] = expression
            keys.append(SortKey(alias, term.descending, nullable))
    qs = qs.annotate(**annotations)
    ordering: list[OrderBy] = []
    for k in keys:
        nulls = {"nulls_last": True} if k.nullable else {}
        ordering.append(F(k.alias).desc(**nulls) if k.descending else F(k.alias).asc(**nulls))
    return qs.order_by(*ordering, "pk"), keys


def keyset_after(keys: list[SortKey], values: list[Any], last_pk: str) -> Q:
    """Rows strictly after the row whose sort values are ``values`` (nulls last, then pk)."""
    after = Q(pk__gt=last_pk)
    for key, value in reversed(list(zip(keys, values, strict=True))):
        if value is None:
            after = Q(**{f"{key.alias}__isnull": True}) & after
        else:
            beyond = Q(**{f"{key.alias}__{'lt' if key.descending else 'gt'}": value})
            after = beyond | Q(**{f"{key.alias}__isnull": True}) | (Q(**{key.alias: value}) & after)
    return after


# --- cursors ----------------------------------------------------------------------------------

CURSOR_SALT = "assay.runs.cursor"


def _encode_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"t": value.isoformat()}
    if hasattr(value, "total_seconds"):
        return {"d": value.total_seconds()}
    if isinstance(value, float):
        return {"f": repr(value)}
    return value


def _decode_value(raw: Any) -> Any:
    from datetime import timedelta

    if isinstance(raw, dict):
        if "t" in raw:
            return datetime.fromisoformat(raw["t"])
        if "d" in raw:
            return timedelta(seconds=float(raw["d"]))
        if "f" in raw:
            return float(raw["f"])
    return raw


def query_fingerprint(project_id: str, filter_text: str, order_by: list[str], extra: str = "") -> str:
    """Binds a cursor to the query it continues: another query refuses it."""
    raw = orjson.dumps([project_id, filter_text, order_by, extra])
    return base64.urlsafe_b64encode(hashlib.sha256(raw).digest()[:12]).decode()


def make_cursor(fingerprint: str, values: list[Any], last_pk: str) -> str:
    payload = {"q": fingerprint, "v": [_encode_value(v) for v in values], "id": last_pk}
    return signing.dumps(payload, salt=CURSOR_SALT, compress=True)


def read_cursor(cursor: str, fingerprint: str, keys: list[SortKey]) -> Q:
    """The keyset condition encoded in ``cursor``; FilterError when it is forged, damaged
    or made for another query."""
    try:
        payload = signing.loads(cursor, salt=CURSOR_SALT)
    except signing.BadSignature:
        raise FilterError(
            "The cursor is invalid: pass the 'next' value of a previous answer unchanged.", 0, source="cursor"
        ) from None
    if not isinstance(payload, dict) or payload.get("q") != fingerprint:
        raise FilterError(
            "The cursor belongs to another query (filter, order_by or project changed).", 0, source="cursor"
        )
    values = [_decode_value(v) for v in payload["v"]]
    if len(values) != len(keys) or not isinstance(payload.get("id"), str):
        raise FilterError("The cursor is invalid.", 0, source="cursor")
    return keyset_after(keys, values, payload["id"])


def search(
    qs: QuerySet[Run], *, filter_text: str, order_by: list[str]
) -> tuple[QuerySet[Run], list[SortKey], Node | None, list[OrderTerm]]:
    """Parse, filter and order. Raises FilterError (with a position) on bad input."""
    node = parser.parse(filter_text)
    if len(order_by) > parser.MAX_ORDER_TERMS:
        raise FilterError(f"At most {parser.MAX_ORDER_TERMS} order_by items.", 0, source="order_by")
    terms = [parser.parse_order_by(item) for item in order_by]
    rest, joined = split_for_order(node, terms)
    qs = apply_filter(qs, rest)
    qs, keys = apply_order(qs, terms, joined)
    return qs, keys, node, terms
