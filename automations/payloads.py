"""What a webhook sends: the versioned JSON payload of a domain event, with links, and its
chat form (Slack- and Microsoft Teams-compatible ``{"text": ...}``).

Built inside the transaction of the change (automations.services.on_domain_event), from
the ids the emitting app gave, so a delivery carries the facts as they were at the event."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from accounts.models import Project, Team, new_id
from artifacts.models import Artifact
from automations import alerts
from automations.models import AlertFiring
from core.domain_events import DomainEvent
from core.querycache import prepared_cursor
from experiments.models import Experiment, Run
from registry.models import AliasMove, ModelRepository, ModelVersion
from registry.selectors import version_url
from reviews.models import Check, Review, ReviewRequest
from reviews.serializers import request_url

SCHEMA = "assay.webhook/v1"


def project_url(project: Project) -> str:
    return _project_url(project.team.name, project.name)


def _project_url(team_name: str, project_name: str) -> str:
    return f"{settings.PUBLIC_URL}/{team_name}/{project_name}/"


def _run_url(team_name: str, project_name: str, run_id: str) -> str:
    return f"{_project_url(team_name, project_name)}runs/{run_id}/"


def _model_url(repository: ModelRepository) -> str:
    project = repository.project
    return f"{settings.PUBLIC_URL}/{project.team.name}/{project.name}/models/{repository.name}/"


def _version(version: ModelVersion | None) -> dict[str, Any] | None:
    if version is None:
        return None
    return {"number": version.number, "content_hash": version.content_hash, "url": version_url(version)}


def _review(request_id: str | None) -> dict[str, Any] | None:
    rr = (
        ReviewRequest.objects.select_related("author", "merged_by", "project__team").filter(pk=request_id).first()
        if request_id
        else None
    )
    if rr is None:
        return None
    approvers = (
        Review.objects.filter(request=rr, verdict=Review.Verdict.APPROVE, dismissed_at__isnull=True)
        .order_by("created_at")
        .values_list("author__username", flat=True)
    )
    return {
        "number": rr.number,
        "title": rr.title,
        "state": rr.state,
        "alias": rr.alias,
        "author": rr.author.username if rr.author is not None else None,
        "approved_by": list(dict.fromkeys(approvers)),
        "merged_by": rr.merged_by.username if rr.merged_by is not None else None,
        "candidate": _version(rr.candidate),
        "url": request_url(rr),
    }


_RUN_SQL: str | None = None


def _run_row(run_id: str) -> tuple[str, str, str, str, str, str]:
    """(id, name, status, experiment name, project name, team name) of a run: one SQL
    statement written once (run events are the most frequent: the ORM's compiling of this
    join cost more CPU than the database's answer)."""
    global _RUN_SQL
    if _RUN_SQL is None:
        # Table and column names from the models' metadata only; the run id is a parameter.
        run, experiment, project, team = Run._meta, Experiment._meta, Project._meta, Team._meta
        _RUN_SQL = (
            f'SELECT r."id", r."name", r."status", e."name", p."name", t."name" FROM "{run.db_table}" r '  # noqa: S608
            f'JOIN "{experiment.db_table}" e ON e."id" = r."{run.get_field("experiment").column}" '
            f'JOIN "{project.db_table}" p ON p."id" = r."{run.get_field("project").column}" '
            f'JOIN "{team.db_table}" t ON t."id" = p."{project.get_field("team").column}" '
            f'WHERE r."id" = %s'
        )
    with prepared_cursor(connection) as cursor:
        cursor.execute(_RUN_SQL, [run_id])
        row = cursor.fetchone()
    if row is None:
        raise Run.DoesNotExist(f"No run {run_id}")
    return (str(row[0]), row[1], row[2], row[3], row[4], row[5])


RUN_EVENTS = ("run.finished", "run.failed")


def run_data(
    run_id: str, name: str, status: str, experiment: str, project_name: str, team_name: str
) -> tuple[dict[str, Any], dict[str, str]]:
    """(data, links) of a run event, from the run's row (the emitting transaction may have it
    from its webhooks statement already: automations.services.on_domain_event)."""
    url = _run_url(team_name, project_name, run_id)
    return {"run": {"id": run_id, "name": name, "status": status, "experiment": experiment}}, {"run": url}


def event_data(event: DomainEvent) -> tuple[dict[str, Any], dict[str, str]]:
    """(data, links) of ``event``."""
    kind = event.type
    if kind == "alias.moved":
        move = AliasMove.objects.select_related(
            "repository__project__team", "from_version__repository__project__team", "to_version__repository"
        ).get(pk=event.data["move"])
        review = _review(event.data.get("review_request"))
        data = {
            "model": move.repository.name,
            "alias": move.alias,
            "from": _version(move.from_version),
            "to": _version(move.to_version),
            "version_hash": move.to_version.content_hash,
            "reason": move.reason,
            "review_request": review,
        }
        links = {"model": _model_url(move.repository), "version": version_url(move.to_version)}
        if review:
            links["review_request"] = review["url"]
        return data, links
    if kind == "version.created":
        version = ModelVersion.objects.select_related("repository__project__team").get(pk=event.data["version"])
        return (
            {"model": version.repository.name, "version": _version(version), "run": version.source_run_ref},
            {"model": _model_url(version.repository), "version": version_url(version)},
        )
    if kind.startswith("review_request."):
        review = _review(event.data["review_request"])
        assert review is not None
        return {"review_request": review, "review": event.data.get("review")}, {"review_request": review["url"]}
    if kind in RUN_EVENTS:
        return run_data(*_run_row(event.data["run"]))
    if kind == "check.completed":
        review = _review(event.data["review_request"])
        assert review is not None
        check = Check.objects.select_related("version").get(pk=event.data["check"])
        return (
            {
                "review_request": review,
                "check": {
                    "id": check.id,
                    "name": check.name,
                    "kind": check.kind,
                    "status": check.status,
                    "summary": check.summary[:1000],
                    "version": check.version.number,
                },
            },
            {"review_request": review["url"]},
        )
    if kind == "artifact.processed":
        artifact = Artifact.objects.select_related("project__team", "run").get(pk=event.data["artifact"])
        project = artifact.project
        run_url = _run_url(project.team.name, project.name, artifact.run_id)
        return (
            {
                "artifact": {
                    "id": artifact.id,
                    "path": artifact.path,
                    "status": artifact.status,
                    "reason": artifact.reason[:1000],
                    "size": artifact.size,
                    "sha256": artifact.sha256,
                    "media_type": artifact.media_type,
                    "kind": artifact.kind,
                },
                "run": {"id": artifact.run_id, "name": artifact.run.name},
            },
            {"run": run_url},
        )
    if kind == "metric.alert":
        firing = AlertFiring.objects.select_related("rule__experiment", "run__project__team", "run__experiment").get(
            pk=event.data["firing"]
        )
        run, rule = firing.run, firing.rule
        project = run.project
        run_url = _run_url(project.team.name, project.name, run.id)
        return (
            {
                "alert": {
                    "id": rule.id,
                    "name": rule.name,
                    "kind": rule.kind,
                    "condition": alerts.condition_text(rule),
                },
                "run": {"id": run.id, "name": run.name, "status": run.status, "experiment": run.experiment.name},
                "key": firing.key or None,
                "value": alerts.firing_value(firing.value),
                "step": firing.step,
                "message": firing.message,
            },
            {"run": run_url, "alerts": f"{project_url(project)}settings/alerts/"},
        )
    raise KeyError(kind)  # pragma: no cover - EVENT_TYPES is closed


def build(
    project: Project, kind: str, actor: str | None, data: dict[str, Any], links: dict[str, str]
) -> dict[str, Any]:
    return build_named(project.team.name, project.name, kind, actor, data, links)


def build_named(
    team_name: str, project_name: str, kind: str, actor: str | None, data: dict[str, Any], links: dict[str, str]
) -> dict[str, Any]:
    """:func:`build` from the project's names (the emitting transaction has them from its one
    webhooks statement: no Project instance to make)."""
    url = _project_url(team_name, project_name)
    return {
        "schema": SCHEMA,
        "event": kind,
        "event_id": new_id(),
        "occurred_at": timezone.now().isoformat(),
        "project": {"path": f"{team_name}/{project_name}", "url": url},
        "actor": actor,
        "data": data,
        "links": {"project": url, **links},
    }


def text(payload: dict[str, Any]) -> str:
    """One line for a chat channel, e.g. "v7 of fraud-detector is now production (review #12
    by ana, approved by bob)"."""
    data = payload.get("data") or {}
    kind = payload.get("event")
    actor = payload.get("actor") or "someone"
    where = payload["project"]["path"]
    if kind == "alias.moved":
        review = data.get("review_request")
        line = f"v{data['to']['number']} of {data['model']} is now {data['alias']}"
        if review:
            approved = ", ".join(review["approved_by"]) or "no one"
            return f"{line} (review #{review['number']} by {review['author']}, approved by {approved})"
        return f"{line} (moved by {actor})"
    if kind == "version.created":
        return f"{actor} registered v{data['version']['number']} of {data['model']} in {where}"
    if isinstance(kind, str) and kind.startswith("review_request."):
        review = data["review_request"]
        verb = {
            "review_request.opened": "opened",
            "review_request.approved": "approved",
            "review_request.changes_requested": "requested changes on",
            "review_request.merged": "merged",
            "review_request.closed": "closed",
        }[kind]
        return f"{actor} {verb} review #{review['number']} in {where}: {review['title']}"
    if kind in ("run.finished", "run.failed"):
        return f"Run {data['run']['name']} in {where} {data['run']['status']}"
    if kind == "check.completed":
        review, check = data["review_request"], data["check"]
        return f"Check {check['name']} {check['status']} on review #{review['number']} in {where}: {review['title']}"
    if kind == "artifact.processed":
        artifact = data["artifact"]
        line = f"Artifact {artifact['path']} of run {data['run']['name']} in {where} is {artifact['status']}"
        return f"{line}: {artifact['reason']}" if artifact["reason"] else line
    if kind == "metric.alert":
        return f"Alert in {where}: {data['message']}"
    if kind == "webhook.test":
        return f"Test event from Assay for {where}: this webhook works."
    return f"{kind} in {where}"  # pragma: no cover


# Assay's events MLflow names (its webhooks' ``entity.action``): the one mapping, used by the
# ``mlflow`` format here and by the MLflow-compatible API (compat/webhooks.py).
MLFLOW_EVENTS: dict[str, tuple[str, str]] = {
    "version.created": ("model_version", "created"),
    "alias.moved": ("model_version_alias", "created"),
}


def _mlflow_data(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """MLflow's payload of ``kind`` (mlflow/webhooks/types.py) from Assay's data."""
    if kind == "version.created":
        version = data.get("version") or {}
        return {
            "name": data.get("model"),
            "version": str(version.get("number")),
            "source": version.get("url"),
            "run_id": data.get("run"),
            "tags": {},
            "description": None,
        }
    if kind == "alias.moved":
        return {
            "name": data.get("model"),
            "alias": data.get("alias"),
            "version": str((data.get("to") or {}).get("number")),
        }
    return dict(data)  # webhook.test: Assay's test data ({"webhook": id})


def body(payload: dict[str, Any], fmt: str, events: list[str] | None = None) -> dict[str, Any]:
    """What is POSTed: the payload itself (json), the chat message (slack; Teams reads the
        same ``text``): the line, then the payload's main link on a line of its own (both tools
    turn a bare URL into a link), or MLflow's shape (mlflow: ``entity``, ``action``,
    ``timestamp``, ``data``; a test is sent as the webhook's first event, as MLflow does)."""
    if fmt == "mlflow":
        kind = payload.get("event") or ""
        named = MLFLOW_EVENTS.get(kind) or next((MLFLOW_EVENTS[e] for e in events or [] if e in MLFLOW_EVENTS), None)
        entity, action = named or ("webhook", "test")
        return {
            "entity": entity,
            "action": action,
            "timestamp": payload.get("occurred_at"),
            "data": _mlflow_data(kind, payload.get("data") or {}),
        }
    if fmt == "slack":
        links = payload.get("links") or {}
        link = next((v for k, v in links.items() if k != "project"), links.get("project"))
        return {"text": f"{text(payload)}\n{link}" if link else text(payload)}
    return payload
