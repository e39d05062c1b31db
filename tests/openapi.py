"""Check real API answers against the OpenAPI schema the server publishes (/api/schema/)."""

from __future__ import annotations

import functools
import re
from typing import Any

import jsonschema
from drf_spectacular.generators import SchemaGenerator


@functools.cache
def api_schema() -> dict[str, Any]:
    schema: dict[str, Any] = SchemaGenerator().get_schema(request=None, public=True)
    return schema


def _json_schema(node: Any, components: dict[str, Any]) -> Any:
    """An OpenAPI 3.0 schema as JSON Schema: references inlined, ``nullable`` as a null type."""
    if isinstance(node, list):
        return [_json_schema(item, components) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return _json_schema(components[node["$ref"].rsplit("/", 1)[-1]], components)
    out = {key: _json_schema(value, components) for key, value in node.items() if key != "nullable"}
    if node.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    if "enum" in out and node.get("nullable"):
        out["enum"] = [*out["enum"], None]
    return out


def _operation(method: str, url: str) -> dict[str, Any]:
    path = url.split("?", 1)[0]
    for template, item in api_schema()["paths"].items():
        pattern = "^" + re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path) and method.lower() in item:
            operation: dict[str, Any] = item[method.lower()]
            return operation
    raise AssertionError(f"{method} {path} is not in the schema")


def assert_conforms(method: str, url: str, response: Any) -> None:
    """The answer's status is documented for the operation and its body matches that schema."""
    responses = _operation(method, url)["responses"]
    code = str(response.status_code)
    assert code in responses, f"{method} {url} answered {code}; documented: {sorted(responses)}"
    content = responses[code].get("content")
    if not content:
        assert not response.content, f"{method} {url} answered {code} with a body, documented without one"
        return
    schema = _json_schema(content["application/json"]["schema"], api_schema()["components"]["schemas"])
    jsonschema.validate(response.json(), schema)
