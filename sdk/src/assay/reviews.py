"""Review requests from the SDK and the CLI: ``assay review open fraud-detector@v7 --into
production --reviewer @ana`` asks to move the ``production`` alias of ``fraud-detector`` to v7.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from assay import env
from assay.client import Client
from assay.errors import AssayError, UsageError
from assay.registry import parse_ref


@dataclass(frozen=True)
class ReviewRequest:
    """A review request as the server reports it."""

    number: int
    project: str
    title: str
    state: str
    status: str
    model: str
    alias: str
    version: int
    version_hash: str
    url: str
    unreachable_mentions: list[str] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ReviewRequest:
        if not isinstance(data, dict):
            raise AssayError("The server answered with an unexpected JSON shape.")
        return cls(
            number=int(data.get("number", 0)),
            project=str(data.get("project", "")),
            title=str(data.get("title", "")),
            state=str(data.get("state", "")),
            status=str(data.get("status", "")),
            model=str(data.get("model", "")),
            alias=str(data.get("alias", "")),
            version=int(data.get("version", 0)),
            version_hash=str(data.get("version_hash", "")),
            url=str(data.get("url", "")),
            unreachable_mentions=[str(m) for m in data.get("unreachable_mentions") or []],
            raw=data,
        )


def open_request(
    ref: str,
    *,
    into: str,
    title: Optional[str] = None,
    description: str = "",
    reviewers: Optional[list[str]] = None,
    labels: Optional[list[str]] = None,
    project: Optional[str] = None,
    url: Optional[str] = None,
    token: Optional[str] = None,
) -> ReviewRequest:
    """Open a review request to move alias ``into`` of the model in ``ref`` to its version."""
    model_ref = parse_ref(ref, project)
    if model_ref.ref == "latest" and "@" not in ref:
        raise UsageError(f"Name the candidate version: {ref}@vN.")
    if not into:
        raise UsageError("--into names the alias to move, e.g. production.")
    body: dict[str, Any] = {
        "model": model_ref.model,
        "version": model_ref.ref,
        "alias": into,
        "title": title or f"Move {model_ref.model}@{into} to {model_ref.ref}",
        "description": description,
        "reviewers": [r.lstrip("@") for r in reviewers or []],
    }
    if labels:
        body["labels"] = list(labels)
    with Client.from_env(url, token) as client:
        return ReviewRequest.from_json(client.open_review_request(model_ref.team_project, body))


def list_requests(
    project: str, *, state: str = "open", url: Optional[str] = None, token: Optional[str] = None
) -> list[ReviewRequest]:
    if project.count("/") != 1:
        raise UsageError("project is team/project.")
    with Client.from_env(url, token) as client:
        answer = client.list_review_requests(project, state=state, limit=100)
    if not isinstance(answer.get("results"), list):
        raise AssayError("The server answered with an unexpected JSON shape.")
    return [ReviewRequest.from_json(item) for item in answer["results"]]


def parse_request_ref(ref: str, project: Optional[str] = None) -> tuple[str, int]:
    """``12``, ``#12`` or ``team/project#12`` → (``team/project``, 12); the project comes
    from ``project`` (``-p``) or ASSAY_PROJECT when the reference does not name one."""
    text = ref.strip()
    named, _, number_text = text.rpartition("#") if "#" in text else ("", "", text)
    if not number_text.isdigit() or int(number_text) < 1:
        raise UsageError(f"A review request is #N or team/project#N, not {ref!r}.")
    where = named or project or env.get(env.PROJECT) or ""
    if where.count("/") != 1:
        raise UsageError("Which project? Pass -p team/project, write team/project#N, or set ASSAY_PROJECT.")
    return where, int(number_text)


def submit_review(
    ref: str,
    verdict: str,
    *,
    body: str = "",
    project: Optional[str] = None,
    url: Optional[str] = None,
    token: Optional[str] = None,
) -> dict[str, Any]:
    """Approve (``approve``), ask for changes (``request_changes``) or leave a review comment,
    on the candidate the request holds now: its content hash is sent with the verdict, so a
    candidate pushed meanwhile is refused rather than approved unseen."""
    where, number = parse_request_ref(ref, project)
    with Client.from_env(url, token) as client:
        current = ReviewRequest.from_json(client.get_review_request(where, number))
        return client.submit_review(
            where, number, {"verdict": verdict, "body": body, "version_hash": current.version_hash}
        )


def comment(
    ref: str,
    body: str,
    *,
    project: Optional[str] = None,
    url: Optional[str] = None,
    token: Optional[str] = None,
) -> dict[str, Any]:
    """Add a comment to the request's conversation (@mentions notify)."""
    if not body.strip():
        raise UsageError("The comment is empty: pass -m TEXT.")
    where, number = parse_request_ref(ref, project)
    with Client.from_env(url, token) as client:
        return client.add_review_comment(where, number, {"body": body})


def merge(
    ref: str,
    *,
    reason: Optional[str] = None,
    bypass: bool = False,
    project: Optional[str] = None,
    url: Optional[str] = None,
    token: Optional[str] = None,
) -> ReviewRequest:
    """Merge: move the alias to the candidate (maintainers; ``bypass`` for admins, with a reason)."""
    where, number = parse_request_ref(ref, project)
    body: dict[str, Any] = {"bypass": bypass}
    if reason:
        body["reason"] = reason
    with Client.from_env(url, token) as client:
        return ReviewRequest.from_json(client.merge_review_request(where, number, body))
