"""Schemathesis hooks for tests/e2e/test_schemathesis_live.py (loaded through SCHEMATHESIS_HOOKS).

The exceptions of issue 17's run, each one narrow: a schema-valid request the server refuses
with 400 for a rule JSON Schema (OpenAPI 3.0) cannot say, on one operation, naming one field
(the ``field`` of the error answer) with one message. Each rule is in the operation's
description (or the field's) in the schema. Nothing else is dropped: any other failure of
these operations, and every failure of another check, still fails the run.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import schemathesis


@dataclass(frozen=True)
class Exception_:
    method: str
    path: str  # a regular expression over the operation's path (fullmatch)
    field: str  # a regular expression over the error's field
    message: str  # a regular expression over the error's message
    why: str


EXCEPTIONS = [
    # Cross-field rules: one parameter or body field depends on another.
    Exception_(
        "GET",
        "/api/v1/export/histories/",
        r"runs",
        r"^Pass runs \(ids\) or project with a filter\.$",
        "one of two query parameters (runs, or project with filter) is needed",
    ),
    Exception_(
        "GET",
        "/api/v1/runs/{run_id}/metrics/{key}/",
        r"offset",
        r"cannot be combined with max_points",
        "offset pages raw points and max_points downsamples: not both",
    ),
    Exception_(
        "POST",
        "/api/v1/projects/{team}/{project}/access/",
        r"user",
        r'^Give exactly one of "user" or "team"\.$',
        "exactly one of two body fields",
    ),
    Exception_(
        "POST",
        "/api/v1/notifications/",
        r"ids",
        r"^Send \{\"ids\": \[notification ids\]\} or \{\"all\": true\}\.$",
        'either a non-empty "ids" or "all": true',
    ),
    Exception_(
        "POST",
        "/api/v1/projects/{team}/{project}/review-requests/{number}/reviews/",
        r"version_hash",
        r"^version_hash is required",
        "an approval (verdict approve) needs version_hash; other verdicts do not",
    ),
    Exception_(
        "POST",
        "/api/v1/runs/{run_id}/log/",
        r"series\.\d+(\.timestamps)?",
        r"^(steps and values must be lists of the same length|timestamps must be a list as long as steps)\.$",
        "a series' steps, values (and timestamps) are equally long",
    ),
    Exception_(
        "GET",
        "/api/v1/runs/",
        r"sort",
        r"^Pass order_by or sort, not both\.$",
        "sort is the older spelling of order_by: one of the two",
    ),
    Exception_(
        "POST",
        "/api/v1/runs/{run_id}/artifacts/",
        r"files\.\d+\.path",
        r"^The path '.*' appears twice\.$",
        "each path once in a manifest (uniqueItems cannot compare one field of the items)",
    ),
    Exception_(
        "PATCH",
        "/api/v1/runs/{run_id}/",
        r"end_time",
        r"^end_time is before the run's start_time\.$",
        "a rule between a field and the stored run",
    ),
    Exception_(
        "POST|PATCH",
        "/api/v1/projects/{team}/{project}/alerts/(\\{rule_id\\}/)?",
        r"condition|key|minutes|percent|goal|experiment",
        r"^\w+ (does not apply to|is required for) a \w+ rule\.$",
        "which fields an alert rule takes depends on its kind (threshold, nonfinite, stalled, versus_best)",
    ),
    Exception_(
        "POST",
        "/api/v1/projects/{team}/{project}/imports/runs/{run_id}/complete/",
        r"run",
        r"^This run was not imported\.$",
        "a rule on the stored run: only an imported run's import can be marked complete",
    ),
    Exception_(
        "POST",
        "/api/v1/projects/{team}/{project}/imports/runs/",
        r"end_time",
        r"^(end_time is before start_time|A running run has no end_time)\.$",
        "a rule between two body fields (and the status)",
    ),
    Exception_(
        "POST",
        "/api/v1/projects/{team}/{project}/imports/models/",
        r"versions\.\d+\.run",
        r"^run is the id of the imported run the version comes from\.$",
        "a rule on stored runs: a version comes from a run imported into the project",
    ),
    # Rules against the calendar or the server's clock.
    Exception_(
        "GET",
        "/api/v1/audit/",
        r"since|until",
        r"must be a date \(2026-01-31\) or an ISO date-time\.$",
        "the pattern gives the shape of a date; the calendar (no February 30) is the server's",
    ),
    Exception_(
        "POST",
        "/api/v1/runs/",
        r"start_time",
        r"^start_time is in the future\.$",
        "a run cannot start after the server's now",
    ),
    # Alias names: the name pattern, but not "latest", "vN" or what looks like a content hash
    # (7 or more hex characters): exclusions a pattern without look-aheads cannot make.
    Exception_(
        "GET",
        "/api/v1/projects/{team}/{project}/models/(\\{model\\}/versions/)?",
        r"alias",
        r"(is reserved: 'latest' and 'vN' always mean a version|looks like a content hash)",
        "an alias name may not read as a version",
    ),
    # Rules over a string that a pattern (OpenAPI 3.0: no look-arounds, no Unicode classes,
    # nothing on object keys) cannot say; each is in the field's description.
    Exception_(
        "POST",
        "/api/v1/runs/{run_id}/artifacts/",
        r"files\.\d+\.path",
        r"^Refused artifact path: ",
        "artifact paths: percent-decoded, no control or format character (Unicode Cc, Cf, Zl, Zp), "
        "no empty, '.' or '..' segment, no drive letter (artifacts/paths.py)",
    ),
    Exception_(
        "GET",
        "/api/v1/runs/{run_id}/artifacts/",
        r"path",
        r"^Refused path: ",
        "the same artifact path rules for the ?path= filter",
    ),
    Exception_(
        "POST",
        "/api/v1/runs/{run_id}/log/",
        r"(metrics|series)\.\d+(\.key)?|(params|tags)\..*",
        r"^A (metric )?key (is 1-250 characters|may not start with '/' or contain a '\.\.' segment)",
        "metric, param and tag keys: a '..' segment, and the keys of the params and tags objects",
    ),
    Exception_(
        "POST",
        "/api/v1/runs/",
        r"tags\..*",
        r"^A key is 1-250 characters",
        "the keys of the tags object",
    ),
    Exception_(
        "POST",
        "/api/v1/runs/{run_id}/figures/",
        r"matrix(\.\d+)?",
        r"^(matrix must have one row per label|Row \d+ of matrix must have)",
        "the matrix is square with one row and column per label",
    ),
]


# API-wide rules of every JSON body (docs/api.md, "What every JSON body must be"), which
# OpenAPI 3.0 cannot put on free-form values (config, info, a matrix…): an integer beyond
# 64 bits is refused naming the field (issue 17, bug 1). Matched by the error's code alone.
BODY_RULES = {"integer_out_of_range"}
# DRF trims a string field with Python's str.strip before its blank check, and Python's
# white space (U+001C-U+001F, U+0085) is wider than a pattern's ``\s``: a string of such
# characters only ("\u001c") is refused as blank (code ``blank``, "This field may not be
# blank.") although it has minLength 1. Found by the longer run (seed 1).
BLANK = ("blank", "This field may not be blank.")
# Query parameters in a language of their own: the run query language of ``filter``,
# ``order_by`` and ``sort`` (docs/query-language.md; a grammar, not a pattern), and the
# opaque ``cursor`` only the server issues (the ``next`` of a page). Their refusals carry
# these codes and a ``position``.
LANGUAGE_CODES = {"invalid_filter", "invalid_order_by", "invalid_cursor"}


def _error(response: Any) -> dict[str, Any] | None:
    try:
        body = json.loads(response.content)
    except (ValueError, TypeError):
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else None


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    """False (drop the failure) only for a 400 that one of EXCEPTIONS explains."""
    if getattr(failure, "code", None) != "ST202" or response.status_code != 400:
        return True
    error = _error(response)
    if error is None:
        return True
    if error.get("code") in BODY_RULES:
        return False
    if (error.get("code"), error.get("message")) == BLANK:
        return False
    if error.get("code") in LANGUAGE_CODES and case.operation.method.upper() == "GET":
        return False
    for rule in EXCEPTIONS:
        if (
            re.fullmatch(rule.method, case.operation.method.upper())
            and re.fullmatch(rule.path, case.operation.path)
            and re.fullmatch(rule.field, str(error.get("field")))
            and re.search(rule.message, str(error.get("message")))
        ):
            return False
    return True
