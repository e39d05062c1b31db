"""The OpenAPI schema's error answers, added in one place (a drf-spectacular postprocessing hook).

Every error of the API has one shape, ``{"error": {"code", "message", "field", …}}``
(core/api.py ``error_body``); here it becomes the ``Error`` component, and each operation
documents the statuses it can answer, decided from what the operation is:

- authenticated (has ``security``): 401 (no or bad credentials) and 403 (the token's scope,
  the role on the project, a site-admin-only call; a session without CSRF);
- a write (POST, PUT, PATCH, DELETE): 409 (a conflict with the current state);
- a method with a body (POST, PUT, PATCH): 400 (bad JSON or field), 413 (body above the
  limit, core/http.py) and 415 (not ``application/json``);
- query parameters: 400 (a value out of range or malformed);
- 404 (no such object, or one you may not see) wherever an operation names an object: in
  its path, its query (``?project=team/name``, ``?runs=…``; a ``page`` past the last one) or
  its body (a write naming a team, a user, a version…);
- a version's binary whose artifact was deleted: 410.

No 429: the server does not throttle (the SDK still retries one from a proxy).
A status an operation already documents is left as it is.

The hook also puts into the schema the constraints the server enforces on every operation
alike (``add_constraints``), so a client (or Schemathesis) can know them:

- request bodies: ``additionalProperties: false`` on every object with declared properties
  (input serializers derive from ``core.api.StrictSerializer``; hand-validated bodies go
  through ``core.validation.body_object``: an unknown key is a 400 naming it);
- path parameters: the shape of names (teams, projects, models, aliases; compared
  case-insensitively) and of ids (32 hex characters), and review-request numbers from 1:
  anything else can name nothing (404);
- integer query parameters carry their bounds where they are declared (``int_query``);
- OpenAPI links from an operation whose answer names an object (a created run, the first
  model of a list, a review request's number…) to the operations on that object, so
  stateful testing can chain them (``add_links``).
"""

from __future__ import annotations

import re
import threading
from typing import Any

from drf_spectacular.utils import OpenApiParameter
from drf_spectacular.views import SpectacularAPIView

ERROR_COMPONENT = "Error"

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Every error answer of the API.",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string", "description": "Machine-readable, e.g. `invalid`, `not_found`"},
                "message": {"type": "string", "description": "For people"},
                "field": {
                    "type": "string",
                    "nullable": True,
                    "description": "The offending input, dotted for nested values (`metrics.3.value`), or null",
                },
            },
            "required": ["code", "message", "field"],
            # Some errors add keys, e.g. ``position`` for an invalid run filter.
            "additionalProperties": True,
        }
    },
    "required": ["error"],
}

DESCRIPTIONS = {
    "400": "Invalid input: malformed JSON, a bad field or query parameter (`field` names it)",
    "401": "No credentials, or credentials that are not valid",
    "403": "Not allowed: the token's scope or your role does not permit it",
    "404": "No such object (in the path, the query or the body), or one you may not see; a page past the last",
    "409": "Conflicts with the current state",
    "410": "Gone: the binary's artifact was deleted with its run",
    "413": "The request body is above the limit",
    "415": "The request body is not `application/json`",
}

WRITES = {"post", "put", "patch", "delete"}
WITH_BODY = {"post", "put", "patch"}
METHODS = WRITES | {"get", "head", "options", "trace"}


def error_statuses(method: str, path: str, operation: dict[str, Any]) -> list[str]:
    """The error statuses one operation can answer (see the module's docstring)."""
    statuses: set[str] = set()
    parameters = operation.get("parameters", [])
    if operation.get("security") and any(requirement for requirement in operation["security"]):
        statuses |= {"401", "403"}
    if method in WRITES:
        statuses.add("409")
    if method in WITH_BODY:
        statuses |= {"400", "413", "415"}
    if any(p.get("in") == "query" for p in parameters):
        statuses.add("400")
    if method in WRITES or any(p.get("in") in {"path", "query"} for p in parameters):
        statuses.add("404")
    if path.endswith("/versions/{version}/download/"):
        statuses.add("410")
    return sorted(statuses)


def add_error_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: the ``Error`` component and each operation's errors."""
    result.setdefault("components", {}).setdefault("schemas", {})[ERROR_COMPONENT] = ERROR_SCHEMA
    ref = {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}
    for path, item in result.get("paths", {}).items():
        for method, operation in item.items():
            if method not in METHODS:
                continue
            responses = operation.setdefault("responses", {})
            for code in error_statuses(method, path, operation):
                responses.setdefault(
                    code, {"description": DESCRIPTIONS[code], "content": {"application/json": {"schema": ref}}}
                )
    return result


def int_query(name: str, *, lo: int, hi: int, default: int | None = None, description: str = "") -> OpenApiParameter:
    """An integer query parameter with the bounds ``core.paging`` enforces, as ``minimum`` and
    ``maximum`` in the schema (a value outside is a 400 naming it; ``default`` when absent)."""
    schema: dict[str, Any] = {"type": "integer", "minimum": lo, "maximum": hi}
    if default is not None:
        schema["default"] = default
    return OpenApiParameter(name, schema, description=description)


# --- constraints and links (issue 17: the schema tells the truth) -----------------------------

# accounts.names.NAME_PATTERN, case-insensitive as the lookups are (``iexact``).
NAME_PATTERN = "^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
ID_PATTERN = "^[0-9a-f]{32}$"  # accounts.models.new_id
PROJECT_PATH_PATTERN = "^[A-Za-z0-9][A-Za-z0-9_-]{0,63}/[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"  # "team/project"
RUN_IDS_PATTERN = "^[0-9a-f]{32}(,[0-9a-f]{32}){0,99}$"  # experiments.access.MAX_RUNS_AT_ONCE
# registry.refs.parse_version_arg: vN (or a bare number below 7 digits), latest, a content-hash
# prefix, or an alias name (here: one that cannot be read as a version number, e.g. "v0").
VERSION_REF_PATTERN = (
    "^([vV][1-9][0-9]{0,8}|[1-9][0-9]{0,5}|latest|[0-9a-f]{7,64}"
    "|[a-uw-zA-UW-Z][A-Za-z0-9_-]{0,63}|[vV][A-Za-z_-][A-Za-z0-9_-]{0,62})$"
)
# A version, never an alias (an alias moved by hand: registry.services._version_to_move_to).
VERSION_ONLY_PATTERN = "^([vV][1-9][0-9]{0,8}|[1-9][0-9]{0,5}|latest|[0-9a-f]{7,64})$"
# experiments.metrics.check_key (not its "no '..' segment"), and a comma-separated list of them.
METRIC_KEY = "[A-Za-z0-9_.:-][A-Za-z0-9_./: -]{0,249}"
METRIC_KEYS_PATTERN = f"^{METRIC_KEY}(,{METRIC_KEY}){{0,19}}$"
# A date or a date-time as Django's parse_date/parse_datetime read them (the calendar is
# checked by the server: "2026-02-30" is refused).
DATE_OR_DATETIME_PATTERN = (
    "^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\\.[0-9]{1,6})?)?(Z|[+-][0-9]{2}(:?[0-9]{2})?)?)?$"
)
NOT_BLANK = "\\S"  # unanchored: at least one character that is not white space


def or_empty(pattern: str) -> str:
    """An anchored ``pattern`` that also takes "": the query parameters that read an empty
    value as left out (``?alias=`` lists every model)."""
    return f"^({pattern[1:-1]})?$"


def string_query(
    name: str, *, pattern: str | None = None, required: bool = False, description: str = ""
) -> OpenApiParameter:
    """A string query parameter with the shape the server checks (``pattern``)."""
    schema: dict[str, Any] = {"type": "string"}
    if pattern is not None:
        schema["pattern"] = pattern
    return OpenApiParameter(name, schema, required=required, description=description)


PATH_PARAMETER_SCHEMAS: dict[str, dict[str, Any]] = {
    "team": {"type": "string", "pattern": NAME_PATTERN},
    "project": {"type": "string", "pattern": NAME_PATTERN},
    "model": {"type": "string", "pattern": NAME_PATTERN},
    "alias": {"type": "string", "pattern": NAME_PATTERN},
    "run_id": {"type": "string", "pattern": ID_PATTERN},
    "artifact_id": {"type": "string", "pattern": ID_PATTERN},
    "token_id": {"type": "string", "pattern": ID_PATTERN},
    "comment_id": {"type": "string", "pattern": ID_PATTERN},
    "review_id": {"type": "string", "pattern": ID_PATTERN},
    "number": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
    "version": {"type": "string", "pattern": VERSION_REF_PATTERN},
    "kind": {"type": "string", "enum": ["user", "team"]},
}


def _resolve(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _close_objects(schema: dict[str, Any], components: dict[str, Any], seen: set[int]) -> None:
    """``additionalProperties: false`` on every object of a request body that declares its
    properties (free-form objects such as ``config`` declare none and stay open)."""
    schema = _resolve(schema, components)
    if id(schema) in seen:
        return
    seen.add(id(schema))
    if "properties" in schema and "additionalProperties" not in schema:
        schema["additionalProperties"] = False
    for child in schema.get("properties", {}).values():
        _close_objects(child, components, seen)
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            _close_objects(schema[key], components, seen)
    for key in ("allOf", "anyOf", "oneOf"):
        for child in schema.get(key, []):
            _close_objects(child, components, seen)


# Which field of an answer names the object a path parameter stands for, by the collection
# the parameter follows (``/runs/{run_id}/``: a run's ``id``).
LINK_FIELDS: dict[tuple[str, str], str] = {
    ("projects", "team"): "team",
    ("projects", "project"): "name",
    ("teams", "team"): "name",
    ("members", "username"): "username",
    ("access", "kind"): "kind",
    ("access", "name"): "name",
    ("runs", "run_id"): "id",
    ("models", "model"): "name",
    ("versions", "version"): "number",
    ("review-requests", "number"): "number",
    ("comments", "comment_id"): "id",
    ("reviews", "review_id"): "id",
    ("tokens", "token_id"): "id",
    ("figures", "figure_id"): "id",
}


def _item_pointer(method: str, schema: dict[str, Any], components: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """Where the first object of an answer is (``""``, ``/0`` in an array, ``/results/0`` in a
    page) and its schema; None when the answer holds no object."""
    schema = _resolve(schema, components)
    if schema.get("type") == "array":
        return "/0", _resolve(schema.get("items", {}), components)
    if "results" not in schema.get("properties", {}) and schema.get("type") == "object" and method == "get":
        return None
    results = schema.get("properties", {}).get("results")
    if results is not None:
        return "/results/0", _resolve(results.get("items", {}), components)
    if "properties" in schema:
        return "", schema
    if schema.get("type") == "object" and method == "post":
        return "", schema  # a created object, free-form in the schema (reviews)
    return None


def _path_params(path: str) -> list[str]:
    return [part[1:-1] for part in path.strip("/").split("/") if part.startswith("{")]


def _link(source: str, target: str, item: str, item_schema: dict[str, Any]) -> dict[str, str] | None:
    """The parameters of a link from an answer at collection path ``source`` to the operation
    at ``target`` (a path below ``source``): the new parameters from the answer's fields, the
    others from the request's path. None when the answer does not carry a field needed."""
    rest = target[len(source) :].strip("/").split("/")
    collection = source.strip("/").split("/")[-1]
    parameters: dict[str, str] = {}
    for position, part in enumerate(rest):
        if not part.startswith("{"):
            continue
        if any(not earlier.startswith("{") for earlier in rest[:position]):
            return None  # a parameter of a deeper collection: not named by this answer
        name = part[1:-1]
        field = LINK_FIELDS.get((collection, name))
        known = item_schema.get("properties")
        if field is None or (known is not None and field not in known):
            return None
        parameters[name] = f"$response.body#{item}/{field}"
    for name in _path_params(source):
        parameters[name] = f"$request.path.{name}"
    return parameters


def add_links(result: dict[str, Any]) -> None:
    """OpenAPI links from every create (2xx of a POST) and list (200 of a GET) whose answer
    names objects to the operations on the first of them. From a list, not to a DELETE: the
    first token of ``GET /tokens/`` may be the caller's own."""
    components = result.get("components", {}).get("schemas", {})
    paths = result.get("paths", {})
    for source, item in paths.items():
        for method in ("post", "get"):
            operation = item.get(method)
            if operation is None or (method == "get" and source.endswith("}/")):
                continue
            for code, response in operation.get("responses", {}).items():
                schema = response.get("content", {}).get("application/json", {}).get("schema")
                if not code.startswith("2") or schema is None:
                    continue
                found = _item_pointer(method, schema, components)
                if found is None:
                    continue
                links: dict[str, Any] = {}
                for target, target_item in paths.items():
                    if target == source or not target.startswith(source) or not target[len(source) :].startswith("{"):
                        continue
                    parameters = _link(source, target, *found)
                    if parameters is None:
                        continue
                    for target_method in target_item:
                        if target_method not in METHODS or (method == "get" and target_method == "delete"):
                            continue
                        # By reference, not operationId: drf-spectacular numbers clashing ids
                        # (``v1_projects_retrieve_2``) only after the hooks.
                        pointer = target.replace("~", "~0").replace("/", "~1")
                        name = re.sub(r"[^A-Za-z0-9]+", "_", f"{target_method} {target}").strip("_")
                        links[name] = {"operationRef": f"#/paths/{pointer}/{target_method}", "parameters": parameters}
                if links:
                    response["links"] = links


# A body whose fields are all optional is documented as optional (no body is an empty object),
# except where the server refuses a missing or empty body: the log call reads its body raw
# (fast path) and an empty batch is a client's bug (``minProperties: 1``).
REQUIRED_BODIES = {("post", "/api/v1/runs/{run_id}/log/")}


def add_constraints(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: closed request bodies, path parameter shapes and
    links (see the module's docstring)."""
    components = result.get("components", {}).get("schemas", {})
    seen: set[int] = set()
    for path, item in result.get("paths", {}).items():
        for method, operation in item.items():
            if method not in METHODS:
                continue
            for parameter in operation.get("parameters", []):
                shape = PATH_PARAMETER_SCHEMAS.get(parameter["name"])
                if parameter.get("in") == "path" and shape is not None:
                    parameter["schema"] = dict(shape)
            if (method, path) in REQUIRED_BODIES:
                operation["requestBody"]["required"] = True
                for content in operation["requestBody"].get("content", {}).values():
                    if "$ref" in content.get("schema", {}):
                        _resolve(content["schema"], components)["minProperties"] = 1
            for content in operation.get("requestBody", {}).get("content", {}).values():
                if "schema" in content:
                    _close_objects(content["schema"], components, seen)
    add_links(result)
    return result


# drf-spectacular loads its extension classes lazily, on the first schema built in the
# process, and not thread-safely: two first requests at once (uvicorn runs sync views in a
# thread pool) both answered 500 ("'NoneType' object has no attribute 'startswith'"; found
# by Schemathesis, three clients starting together). One schema is built at a time.
_SCHEMA_LOCK = threading.Lock()


class SchemaView(SpectacularAPIView):
    """``/api/schema/``: drf-spectacular's view, building one schema at a time."""

    def _get_schema_response(self, request: Any) -> Any:
        with _SCHEMA_LOCK:
            return super()._get_schema_response(request)  # type: ignore[no-untyped-call]
