"""The review timeline's wording, in one place. The request page shows it, and the live
event ``timeline.<kind>`` (like the REST timeline) carries it as ``text``, so a browser
inserts the server's sentence (as text) instead of wording the entry again. Pure (no Django).
"""

from __future__ import annotations

from typing import Any

VERDICT_VERBS = {"approve": "approved", "request_changes": "requested changes on"}


def _shown(value: Any) -> str:
    return "" if value is None else str(value)


def entry_text(kind: str, data: Any) -> str:
    """What the actor did, written after their name: ``approved v3``, ``pushed v4 (was v3)``."""
    d: dict[str, Any] = data if isinstance(data, dict) else {}

    def get(key: str) -> str:
        return _shown(d.get(key))

    if kind == "opened":
        return f"opened the request for v{get('version')}"
    if kind == "review":
        return f"{VERDICT_VERBS.get(d.get('verdict', ''), 'reviewed')} v{get('version')}"
    if kind == "comment":
        anchor = d.get("anchor")
        on = f" on {_shown(anchor.get('kind'))} {_shown(anchor.get('key'))}" if isinstance(anchor, dict) else ""
        return f"{'replied' if d.get('reply') else 'commented'}{on}"
    if kind == "candidate_pushed":
        dismissed = d.get("dismissed") or 0
        also = f"; {dismissed} approval{'' if dismissed == 1 else 's'} dismissed" if dismissed else ""
        return f"pushed v{get('to')} (was v{get('from')}){also}"
    if kind == "review_dismissed":
        return f"dismissed the review of {get('reviewer')}: {get('reason')}"
    if kind == "check":
        return f"check {get('name')} {get('status')} on v{get('version')}"
    if kind == "merged":
        bypassed = f" (policy bypassed: {get('reason')})" if d.get("bypass") else ""
        return f"merged: {get('alias')} → v{get('version')}{bypassed}"
    if kind == "edited":
        fields = data if isinstance(data, list) else list(d)
        return "edited " + ", ".join(str(f) for f in fields)
    if kind == "policy_changed":
        return _policy_text(d)
    return kind  # closed, reopened


POLICY_LABELS = {
    "required_approvals": "required approvals",
    "approver_role": "who may approve",
    "gates": "metric gates",
    "required_checks": "required checks",
    "block_unscanned": "block unscanned files",
}


def _policy_value(field: str, value: Any) -> str:
    if field == "gates" and isinstance(value, list):
        return ", ".join(str(g.get("name")) for g in value if isinstance(g, dict)) or "none"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return _shown(value)


def _policy_text(d: dict[str, Any]) -> str:
    """``changed the review policy: required checks lineage, artifact-integrity → lineage``."""
    whose = "the project's review policy" if d.get("scope") == "project" else "the model's review policy"
    raw = d.get("changes")
    changes: dict[str, Any] = raw if isinstance(raw, dict) else {}
    parts = [
        f"{POLICY_LABELS.get(field, field)} {_policy_value(field, c.get('from'))} → {_policy_value(field, c.get('to'))}"
        for field, c in changes.items()
        if isinstance(c, dict)
    ]
    return f"changed {whose}: " + "; ".join(parts) if parts else f"changed {whose}"
