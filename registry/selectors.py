"""Reads of the registry shared by the API and the pages, narrowed by the policy."""

from __future__ import annotations

import math
import posixpath
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db.models import Count, Exists, Max, OuterRef, Prefetch, Q, QuerySet

from accounts import access
from accounts.models import Project
from artifacts import downloads
from artifacts.models import Artifact
from core.errors import Conflict, Gone, Invalid, NotFound
from experiments.config_values import config_entries
from experiments.models import Run
from experiments.query import parser as query_parser
from registry import diff, refs
from registry.models import Alias, AliasMove, ModelRepository, ModelVersion

if TYPE_CHECKING:
    from accounts.access import AnyUser

MAX_LINEAGE_DEPTH = 25
MAX_SEARCHED_VERSIONS = 10_000
# Artifacts whose bytes the server has (or is checking): a version may be registered on
# them. Pending (bytes not sent) and failed artifacts are refused.
REGISTRABLE = {Artifact.Status.UPLOADED, Artifact.Status.PROCESSING, Artifact.Status.READY}
# Files of an MLflow model folder that describe it; the version's binary is the largest other file.
MODEL_METADATA_FILES = {
    "MLmodel",
    "conda.yaml",
    "python_env.yaml",
    "requirements.txt",
    "input_example.json",
    "serving_input_example.json",
    "registered_model_meta",
}


def models_visible_to(user: AnyUser | None) -> QuerySet[ModelRepository]:
    return ModelRepository.objects.filter(access.project_filter(user, prefix="project__"))


def models_matching(user: AnyUser | None, text: str, *, limit: int) -> list[dict[str, Any]]:
    """Models whose name contains ``text``, or whose tags or any version's tags (keys or
    values) do, among what ``user`` may see: the global search's models."""
    version_tagged = Exists(ModelVersion.objects.filter(repository=OuterRef("pk"), tags__icontains=text))
    found = (
        models_visible_to(user)
        .select_related("project__team")
        .filter(Q(name__icontains=text) | Q(tags__icontains=text) | version_tagged)
        .annotate(last_version=Max("versions__number"))
        .order_by("project__team__name", "project__name", "name")[:limit]
    )
    return [
        {
            "name": m.name,
            "project": m.project.path,
            "tags": m.tags,
            "versions": m.last_version or 0,
            "url": f"/{m.project.team.name}/{m.project.name}/models/{m.name}/",
        }
        for m in found
    ]


def models_of(project: Project) -> QuerySet[ModelRepository]:
    return (
        ModelRepository.objects.filter(project=project)
        .annotate(version_count=Count("versions", distinct=True), last_version=Max("versions__number"))
        .prefetch_related(Prefetch("aliases", queryset=Alias.objects.select_related("version")))
        .order_by("name")
    )


def model_of(project: Project, name: str) -> ModelRepository | None:
    if not isinstance(name, str) or len(name) > 64:
        return None
    return ModelRepository.objects.select_related("project__team").filter(project=project, name=name.lower()).first()


def models_search(
    project: Project, *, filter_text: str = "", alias: str | None = None, limit: int
) -> list[ModelRepository]:
    """The project's models (at most ``limit``); with a filter or an alias, only those having
    a version that matches (see :func:`versions_search`)."""
    models = list(models_of(project)[:limit])
    if filter_text or alias:
        hits = {v.repository_id for v in versions_search(project, filter_text=filter_text, alias=alias)}
        models = [m for m in models if m.id in hits]
    return models


def version_count_and_latest(repository: ModelRepository) -> tuple[int, int | None]:
    """How many versions the model has, and the highest number (None without versions)."""
    found = ModelVersion.objects.filter(repository=repository).aggregate(count=Count("id"), latest=Max("number"))
    return found["count"], found["latest"]


def versions_of(repository: ModelRepository) -> QuerySet[ModelVersion]:
    return (
        ModelVersion.objects.filter(repository=repository)
        .select_related("author", "source_run", "artifact")
        .prefetch_related("aliases", "parents")
        .order_by("-number")
    )


def other_versions(version: ModelVersion) -> list[ModelVersion]:
    """The other versions of the version's model, newest first (what it may be compared with)."""
    return list(
        ModelVersion.objects.filter(repository_id=version.repository_id).exclude(pk=version.pk).order_by("-number")
    )


def diff_base(version: ModelVersion) -> ModelVersion | None:
    """What a version is compared with by default: its first parent, else the version
    before it; None for a first version without parents."""
    return version.parents.order_by("number").first() or (
        ModelVersion.objects.filter(repository_id=version.repository_id, number__lt=version.number)
        .order_by("-number")
        .first()
    )


def registrable_artifacts(run: Run) -> QuerySet[Artifact]:
    """The run's artifacts a version may be registered on, by path."""
    return Artifact.objects.filter(run=run, status__in=REGISTRABLE).order_by("path")


def version_download_url(version: ModelVersion) -> str:
    """A short-lived URL for the version's binary (the caller checked the right to view it).
    410 ``gone`` when the run and its artifact were deleted; 409 ``not_ready`` while the
    artifact's bytes are not verified."""
    if version.artifact is None:
        raise Gone("The binary's artifact was deleted with its run.", code="gone")
    url = downloads.download_url(version.artifact)
    if url is None:
        raise Conflict(
            f"The binary is {version.artifact.status}; it can be downloaded once verified.",
            code="not_ready",
        )
    return url


def not_found(message: str, field: str = "ref") -> NotFound:
    return NotFound(message, code="not_found", field=field)


def resolve_version(repository: ModelRepository, ref: refs.VersionRef, *, field: str = "ref") -> ModelVersion:
    """The version ``ref`` names in ``repository``; 404 naming the ref when there is none,
    400 ``ambiguous_ref`` for a hash prefix that matches several versions."""
    qs = ModelVersion.objects.filter(repository=repository).select_related("repository__project__team")
    if ref.kind == "number":
        version = qs.filter(number=ref.number).first()
    elif ref.kind == "latest":
        version = qs.order_by("-number").first()
    elif ref.kind == "alias":
        alias = Alias.objects.filter(repository=repository, name=ref.value).select_related("version").first()
        version = qs.filter(pk=alias.version_id).first() if alias is not None else None
    else:
        matches = list(qs.filter(content_hash__startswith=ref.value)[:2])
        if len(matches) > 1:
            raise Invalid(
                f"The hash prefix {ref.value!r} matches several versions of {repository.name}; give more characters.",
                code="ambiguous_ref",
                field=field,
            )
        version = matches[0] if matches else None
    if version is None:
        what = {
            "number": "no version",
            "latest": "no versions yet",
            "alias": "no alias",
            "hash": "no version with hash",
        }
        raise not_found(
            f"Model {repository.name} has {what[ref.kind]} {ref if ref.kind != 'latest' else ''}".strip() + ".", field
        )
    return version


def aliases_of(repository: ModelRepository) -> list[Alias]:
    return list(Alias.objects.filter(repository=repository).select_related("version").order_by("name"))


def alias_of(repository: ModelRepository, name: str) -> Alias | None:
    return Alias.objects.filter(repository=repository, name=name).select_related("version").first()


def alias_log(repository: ModelRepository, alias: str | None = None, *, limit: int = 200) -> list[AliasMove]:
    qs = AliasMove.objects.filter(repository=repository).select_related("from_version", "to_version", "actor")
    if alias is not None:
        qs = qs.filter(alias=alias)
    return list(qs.order_by("-created_at", "-id")[:limit])


def version_url(version: ModelVersion) -> str:
    project = version.repository.project
    return (
        f"{settings.PUBLIC_URL}/{project.team.name}/{project.name}/models/{version.repository.name}/v{version.number}/"
    )


def version_document(version: ModelVersion) -> dict[str, Any]:
    """What the diff, the reproduce manifest and the API show of a version's ingredients."""
    return {
        "number": version.number,
        "content_hash": version.content_hash,
        "binary": {"sha256": version.binary_sha256, "size": version.binary_size, "path": version.binary_path},
        "code": version.code,
        "config": version.config,
        "params": version.params,
        "datasets": version.datasets,
        "environment": version.environment,
        "metrics": version.metrics,
        "parents": version.parent_hashes,
    }


def version_diff(a: ModelVersion | None, b: ModelVersion) -> dict[str, Any]:
    """``b`` against ``a``; against nothing (``a`` None: an alias that held no version yet),
    every ingredient of ``b`` is added."""
    result = diff.diff_versions(version_document(a) if a is not None else {}, version_document(b))
    result["a"] = {"number": a.number, "content_hash": a.content_hash} if a is not None else None
    result["b"] = {"number": b.number, "content_hash": b.content_hash}
    return result


# --- lineage -----------------------------------------------------------------------------------


@dataclass
class Lineage:
    nodes: list[dict[str, Any]]
    edges: list[dict[str, str]]


def lineage(version: ModelVersion) -> Lineage:
    """datasets → run → version → parents (ancestors up to MAX_LINEAGE_DEPTH), and children.

    Node ids: ``version:<id>``, ``run:<id>``, ``dataset:<version id>:<name>``. Edges point
    the way data flows (dataset → run → version, parent → child)."""
    nodes: dict[str, dict[str, Any]] = {}
    edges: list[dict[str, str]] = []

    def add_version(v: ModelVersion, role: str) -> str:
        key = f"version:{v.id}"
        if key not in nodes:
            nodes[key] = {
                "id": key,
                "kind": "version",
                "label": f"{v.repository.name} v{v.number}",
                "role": role,
                "hash": v.content_hash[:12],
                "url": version_url(v),
            }
        return key

    def add_inputs(v: ModelVersion, target: str) -> None:
        run_key = f"run:{v.source_run_ref}"
        if run_key not in nodes:
            project = v.repository.project
            url = (
                f"{settings.PUBLIC_URL}/{project.team.name}/{project.name}/runs/{v.source_run_ref}/"
                if v.source_run_id
                else None
            )
            nodes[run_key] = {
                "id": run_key,
                "kind": "run",
                "label": v.source_run_name or v.source_run_ref[:10],
                "role": "run" if v.source_run_id else "deleted run",
                "url": url,
            }
            for item in v.datasets:
                data_key = f"dataset:{v.id}:{item.get('name')}"
                nodes[data_key] = {
                    "id": data_key,
                    "kind": "dataset",
                    "label": str(item.get("name")),
                    "role": "dataset",
                    "digest": item.get("digest"),
                    "url": None,
                }
                edges.append({"source": data_key, "target": run_key})
        edges.append({"source": run_key, "target": target})

    root = add_version(version, "this version")
    add_inputs(version, root)
    frontier = [version]
    seen = {version.id}
    for _ in range(MAX_LINEAGE_DEPTH):
        parents_of = list(
            ModelVersion.parents.through.objects.filter(from_modelversion__in=frontier).select_related(
                "to_modelversion__repository__project__team", "from_modelversion"
            )
        )
        frontier = []
        for link in parents_of:
            parent = link.to_modelversion
            parent_key = add_version(parent, "parent")
            edges.append({"source": parent_key, "target": f"version:{link.from_modelversion_id}"})
            if parent.id not in seen:
                seen.add(parent.id)
                add_inputs(parent, parent_key)
                frontier.append(parent)
        if not frontier:
            break
    for child in version.children.select_related("repository__project__team"):
        edges.append({"source": root, "target": add_version(child, "child")})
    unique_edges = list({(e["source"], e["target"]): e for e in edges}.values())
    return Lineage(nodes=list(nodes.values()), edges=unique_edges)


# --- search ------------------------------------------------------------------------------------


def _version_record(version: ModelVersion) -> dict[str, Any]:
    return {
        "name": version.repository.name,
        "metrics": version.metrics,
        "params": diff.effective_params(version_document(version)),
        "config": config_entries(version.config if isinstance(version.config, dict) else {}),
        "tags": {**version.repository.tags, **version.tags},
    }


def _matches(node: query_parser.Node, record: dict[str, Any]) -> bool:
    """Evaluate a parsed filter on one version, with the run-search semantics: a condition on
    a key the version lacks is false; params and tags compared with a number compare
    numerically when their value is a number."""
    if isinstance(node, query_parser.And):
        return all(_matches(item, record) for item in node.items)
    if isinstance(node, query_parser.Or):
        return any(_matches(item, record) for item in node.items)
    if isinstance(node, query_parser.Not):
        return not _matches(node.item, record)
    fld = node.field
    if fld.entity == "attribute":
        if fld.key != "name":
            raise query_parser.FilterError(
                "Model search knows attributes.name, metrics.<key>, params.<key>, config.<key> and tags.<key>.",
                fld.position,
            )
        value: Any = record["name"]
    else:
        source = {
            "metric": record["metrics"],
            "param": record["params"],
            "config": record["config"],
            "tag": record["tags"],
        }[fld.entity]
        value = source.get(fld.key)
    if isinstance(node, query_parser.IsNull):
        return (value is None) != node.negated
    if value is None:
        return False
    if fld.entity == "metric":
        number = value if isinstance(value, (int, float)) else diff._number(value)
        if number is None or math.isnan(number):
            return False
        value = float(number)
    if isinstance(node, query_parser.In):
        inside = any(_equal(value, v) for v in node.values)
        return inside != node.negated
    return _compare(value, node.op, node.value)


def _equal(value: Any, other: query_parser.Value) -> bool:
    return _compare(value, "=", other)


def _compare(value: Any, op: str, other: query_parser.Value) -> bool:
    if op in query_parser.TEXT_OPS:
        regex = query_parser.like_regex(str(other), case_insensitive="ilike" in op)
        hit = regex.fullmatch(str(value)) is not None
        return not hit if op.startswith("not") else hit
    left: Any = value
    if isinstance(other, float) and isinstance(value, str):
        left = query_parser.numeric_text(value)
        if left is None:
            return False
    elif isinstance(other, str) and not isinstance(value, str):
        left = str(value)
    ops = {
        "=": lambda a, b: a == b,
        "!=": lambda a, b: a != b,
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
    }
    return bool(ops[op](left, other))


def versions_search(
    project: Project, *, filter_text: str = "", model: ModelRepository | None = None, alias: str | None = None
) -> list[ModelVersion]:
    """Versions of a project (or of one model) matching a filter in the run query language
    (``metrics.acc > 0.9 and tags.stage = 'prod' and attributes.name like 'fraud%'``) and,
    with ``alias``, carrying that alias. Evaluated in Python over at most
    MAX_SEARCHED_VERSIONS versions (a project holds far fewer versions than runs). A bad
    filter is 400 ``invalid_filter`` naming the position."""
    try:
        node = query_parser.parse(filter_text)
        qs = ModelVersion.objects.filter(project=project).select_related("repository__project__team", "author")
        if model is not None:
            qs = qs.filter(repository=model)
        if alias:
            qs = qs.filter(aliases__name=alias.lower())
        versions = list(qs.order_by("repository__name", "-number")[:MAX_SEARCHED_VERSIONS])
        if node is None:
            return versions
        return [v for v in versions if _matches(node, _version_record(v))]
    except query_parser.FilterError as exc:
        raise Invalid(exc.message, code="invalid_filter", field="filter", extra={"position": exc.position}) from None


# --- MLflow model folders (the MLflow API and imports register them) -------------------------


def model_binary(files: list[Artifact], prefix: str) -> Artifact:
    """The file of a model folder that stands for the version's binary (hashed into its
    content hash and checked by the artifact-integrity check): the largest file that is not
    MLflow's metadata (MLmodel, environment files, examples)."""

    def relative(a: Artifact) -> str:
        return a.path[len(prefix) + 1 :] if a.path.startswith(prefix + "/") else posixpath.basename(a.path)

    payload = [a for a in files if relative(a) not in MODEL_METADATA_FILES and not relative(a).startswith("metadata/")]
    return max(payload or files, key=lambda a: (a.size, a.path))
