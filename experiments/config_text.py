"""A configuration pasted as text (the project page's "has this been tried?" box): JSON,
YAML or an argparse dump (``Namespace(lr=0.01, epochs=10)``, what ``print(args)`` writes),
the formats ``assay tried`` reads from a file.

# SECURITY: the text comes from a form. It is bounded in size before any parser sees it;
# YAML is read with the safe loader and refused when it uses anchors or aliases (a few
# lines of aliases expand to millions of keys once flattened: "billion laughs"); the
# argparse dump is evaluated with ``ast.literal_eval`` only, never ``eval``.
"""

from __future__ import annotations

import ast
import json
from typing import Any

import yaml

MAX_TEXT = 65_536  # characters


class ConfigTextError(ValueError):
    """The text is not a configuration; the message says why, in one line."""


def _namespace(text: str) -> dict[str, Any]:
    try:
        tree = ast.parse(text, mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise ConfigTextError("not a valid argparse dump (Namespace(key=value, ...)).") from None
    if not isinstance(tree, ast.Call) or tree.args:
        raise ConfigTextError("not an argparse dump (Namespace(key=value, ...)).")
    out: dict[str, Any] = {}
    for keyword in tree.keywords:
        try:
            value = ast.literal_eval(keyword.value)
        except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
            raise ConfigTextError("an argparse dump may hold only literal values.") from None
        if keyword.arg is not None:
            out[keyword.arg] = value
        elif isinstance(value, dict):  # **{'a.b': 1}: how a Namespace writes keys that are not names
            out.update({str(k): v for k, v in value.items()})
        else:
            raise ConfigTextError("an argparse dump's ** part must be a dict.")
    return out


def _yaml(text: str) -> Any:
    try:
        events = list(yaml.parse(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError:
        raise ConfigTextError("neither JSON, YAML nor an argparse dump.") from None
    if any(isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) for event in events):
        raise ConfigTextError("YAML anchors and aliases are not accepted; write the values out.")
    try:
        return yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError):
        raise ConfigTextError("neither JSON, YAML nor an argparse dump.") from None


def parse_config_text(text: str) -> dict[str, Any]:
    """The configuration in ``text``; raises :class:`ConfigTextError` naming the problem."""
    stripped = text.strip()
    if not stripped:
        raise ConfigTextError("is empty: paste a JSON or YAML object, or an argparse dump.")
    if len(stripped) > MAX_TEXT:
        raise ConfigTextError(f"is longer than {MAX_TEXT:,} characters.")
    if stripped.startswith("Namespace("):
        loaded: Any = _namespace(stripped)
    else:
        try:
            loaded = json.loads(stripped)
        except RecursionError:
            raise ConfigTextError("is nested too deeply.") from None
        except ValueError:
            loaded = _yaml(stripped)
    if not isinstance(loaded, dict):
        raise ConfigTextError(f"must be an object (key: value), not {type(loaded).__name__}.")
    return loaded
