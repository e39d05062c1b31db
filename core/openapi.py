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
"""

from __future__ import annotations

from typing import Any

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
