"""Registration, immutability, aliases and their log, through the services."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from django.db import DatabaseError, IntegrityError, InternalError, transaction

from accounts.models import AuditEvent, Project, User
from core.errors import Conflict, DomainError, Invalid, NotFound
from registry import hashing, services
from registry.models import Alias, AliasMove, ImmutableVersionError, ModelRepository, ModelVersion
from tests.factories import ProjectFactory
from tests.registry.conftest import MakeArtifact, MakeRun, sdk_info

pytestmark = pytest.mark.django_db


def register(
    owner: User, model: ModelRepository, make_run: MakeRun, make_artifact: MakeArtifact, **kwargs: object
) -> ModelVersion:
    content = kwargs.pop("content", b"weights-1")
    run = kwargs.pop("run", None) or make_run()
    make_artifact(run, content=content)
    return services.version_register(user=owner, repository=model, run=run, artifact="model.pkl", **kwargs)  # type: ignore[arg-type]


def test_registration_snapshots_every_ingredient(
    owner: User, model: ModelRepository, make_run: MakeRun, make_artifact: MakeArtifact
) -> None:
    # given a run as the SDK logs it
    run = make_run(params={"seed": "7"}, metrics={"acc": 0.91, "system/cpu_percent": 50.0})
    artifact = make_artifact(run, content=b"model-bytes")

    # when
    version = services.version_register(user=owner, repository=model, run=run, artifact="model.pkl")

    # then
    assert version.number == 1
    assert version.binary_sha256 == artifact.sha256
    assert version.binary_size == len(b"model-bytes")
    assert version.code["commit"] == "a" * 40
    assert version.code["entry_point"] == "train.py"  # relative to the repository root
    assert version.params == {"seed": "7"}
    assert version.config == {"epochs": 3, "optimizer": {"lr": 0.01}}
    assert version.metrics == {"acc": 0.91}  # system/* samples are not ingredients
    assert version.environment["packages"]["numpy"] == "1.26.4"
    assert [d["name"] for d in version.datasets] == ["train"]
    assert version.source_run_ref == run.id
    assert version.author_label == "owner"
    assert len(version.content_hash) == 64


def test_the_content_hash_is_sha256_of_the_documented_canonical_json(
    owner: User, model: ModelRepository, make_run: MakeRun, make_artifact: MakeArtifact
) -> None:
    version = register(owner, model, make_run, make_artifact)

    document = hashing.ingredients(
        binary_sha256=version.binary_sha256,
        binary_size=version.binary_size,
        code=version.code,
        config=version.config,
        params=version.params,
        datasets=version.datasets,
        environment=version.environment,
        run_id=version.source_run_ref,
        metrics=version.metrics,
        parent_hashes=[],
    )

    assert hashing.canonical_json(document).startswith(b'{"binary":{"sha256":"')
    assert version.content_hash == hashing.content_hash(document)


def test_numbers_count_up_per_model(
    owner: User, model: ModelRepository, make_run: MakeRun, make_artifact: MakeArtifact
) -> None:
    first = register(owner, model, make_run, make_artifact, content=b"a")
    second = register(owner, model, make_run, make_artifact, content=b"b")

    assert (first.number, second.number) == (1, 2)
    assert first.content_hash != second.content_hash


def test_the_same_ingredients_twice_are_refused_as_the_existing_version(
    owner: User, model: ModelRepository, make_run: MakeRun, make_artifact: MakeArtifact
) -> None:
    run = make_run()
    make_artifact(run)
    services.version_register(user=owner, repository=model, run=run, artifact="model.pkl")

    with pytest.raises(Conflict) as caught:
        services.version_register(user=owner, repository=model, run=run, artifact="model.pkl")

    assert caught.value.code == "version_exists"
    assert "v1" in str(caught.value.message)
    assert ModelVersion.objects.count() == 1


def test_a_version_stays_complete_when_its_run_is_deleted(
    owner: User, model: ModelRepository, make_run: MakeRun, make_artifact: MakeArtifact
) -> None:
    version = register(owner, model, make_run, make_artifact)
    run_id = version.source_run_ref

    version.source_run.delete()  # type: ignore[union-attr]
    version.refresh_from_db()

    assert version.source_run is None
    assert version.artifact is None
    assert version.source_run_ref == run_id
    assert version.params == {"seed": "1"}
    assert version.metrics["acc"] == 0.9


# --- immutability --------------------------------------------------------------------------------


def test_save_refuses_to_change_an_ingredient(
    owner: User, model: ModelRepository, make_run: MakeRun, make_artifact: MakeArtifact
) -> None:
    version = register(owner, model, make_run, make_artifact)
    version.binary_sha256 = "0" * 64

    with pytest.raises(ImmutableVersionError):
        version.save()
    with pytest.raises(ImmutableVersionError):
        version.save(update_fields=["binary_sha256", "description"])


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("content_hash", "0" * 64),
        ("binary_sha256", "0" * 64),
        ("params", {"seed": "2"}),
        ("metrics", {}),
        ("number", 9),
    ],
)
def test_the_database_refuses_an_update_of_an_ingredient(
    owner: User, model: ModelRepository, make_run: MakeRun, make_artifact: MakeArtifact, column: str, value: object
) -> None:
    version = register(owner, model, make_run, make_artifact)

    with pytest.raises((IntegrityError, InternalError, DatabaseError)), transaction.atomic():
        ModelVersion.objects.filter(pk=version.pk).update(**{column: value})

    fresh = ModelVersion.objects.get(pk=version.pk)
    assert getattr(fresh, column) == getattr(version, column)


def test_description_and_tags_are_editable_and_each_edit_is_audited(
    owner: User, model: ModelRepository, make_run: MakeRun, make_artifact: MakeArtifact
) -> None:
    version = register(owner, model, make_run, make_artifact)
    content_hash = version.content_hash

    services.version_update(user=owner, version=version, description="Better recall.", tags={"stage": "candidate"})

    fresh = ModelVersion.objects.get(pk=version.pk)
    assert (fresh.description, fresh.tags, fresh.content_hash) == (
        "Better recall.",
        {"stage": "candidate"},
        content_hash,
    )
    event = AuditEvent.objects.get(action="model.version.update")
    assert event.data["before"] == {"description": "", "tags": {}}
    assert event.data["after"]["tags"] == {"stage": "candidate"}


def test_the_services_offer_no_way_to_change_ingredients() -> None:
    import inspect

    editable = set(inspect.signature(services.version_update).parameters) - {"user", "version", "request"}
    assert editable == {"description", "tags"}


# --- parents -------------------------------------------------------------------------------------


def test_parents_are_recorded_and_part_of_the_hash(
    owner: User, model: ModelRepository, make_run: MakeRun, make_artifact: MakeArtifact
) -> None:
    first = register(owner, model, make_run, make_artifact, content=b"a")
    child = register(owner, model, make_run, make_artifact, content=b"b", parents=["v1"])

    assert list(child.parents.all()) == [first]
    assert child.parent_hashes == [first.content_hash]


def test_a_parent_may_be_another_model_of_the_same_project(
    owner: User, project: Project, model: ModelRepository, make_run: MakeRun, make_artifact: MakeArtifact
) -> None:
    base_model = services.model_create(user=owner, project=project, name="base")
    base = register(owner, base_model, make_run, make_artifact, content=b"base")

    child = register(owner, model, make_run, make_artifact, content=b"tuned", parents=["base@v1"])

    assert list(child.parents.all()) == [base]


def test_a_parent_in_another_project_is_refused_as_not_found(
    owner: User, model: ModelRepository, make_run: MakeRun, make_artifact: MakeArtifact
) -> None:
    other_project = ProjectFactory.create(team=model.project.team, name="other")
    other_model = services.model_create(user=owner, project=other_project, name="fraud")
    register(owner, other_model, make_run, make_artifact, run=make_run(in_project=other_project), content=b"x")

    with pytest.raises(DomainError) as caught:
        register(owner, model, make_run, make_artifact, content=b"y", parents=["acme/other/fraud@v1"])

    assert isinstance(caught.value, NotFound)
    assert caught.value.field == "parents.0"
    assert not ModelVersion.objects.filter(repository=model).exists()


def test_a_run_of_another_project_is_refused(
    owner: User, model: ModelRepository, make_run: MakeRun, make_artifact: MakeArtifact
) -> None:
    other_project = ProjectFactory.create(team=model.project.team, name="other")
    run = make_run(in_project=other_project)
    make_artifact(run)

    with pytest.raises(DomainError) as caught:
        services.version_register(user=owner, repository=model, run=run, artifact="model.pkl")

    assert isinstance(caught.value, NotFound)
    assert caught.value.field == "run"


def test_an_artifact_not_uploaded_yet_is_refused(
    owner: User, model: ModelRepository, make_run: MakeRun, make_artifact: MakeArtifact
) -> None:
    run = make_run()
    make_artifact(run, status="pending")

    with pytest.raises(Conflict) as caught:
        services.version_register(user=owner, repository=model, run=run, artifact="model.pkl")

    assert caught.value.code == "artifact_not_ready"


# --- aliases -------------------------------------------------------------------------------------


def test_alias_moves_are_logged_with_from_to_who_and_why(
    owner: User, model: ModelRepository, make_run: MakeRun, make_artifact: MakeArtifact
) -> None:
    v1 = register(owner, model, make_run, make_artifact, content=b"a", aliases=["staging"])
    v2 = register(owner, model, make_run, make_artifact, content=b"b")

    services.alias_move(alias="staging", version=v2, user=owner, reason="better recall")
    services.alias_move(alias="staging", version=v1, user=owner, reason="rollback")

    log = list(AliasMove.objects.filter(repository=model, alias="staging").order_by("created_at", "id"))
    assert [(m.from_version_id, m.to_version_id, m.reason) for m in log] == [
        (None, v1.id, "registered v1"),
        (v1.id, v2.id, "better recall"),
        (v2.id, v1.id, "rollback"),
    ]
    assert {m.actor_label for m in log} == {"owner"}
    assert Alias.objects.get(repository=model, name="staging").version == v1
    assert AuditEvent.objects.filter(action="model.alias.move").count() == 3


def test_moving_an_alias_where_it_already_points_records_nothing(
    owner: User, model: ModelRepository, make_run: MakeRun, make_artifact: MakeArtifact
) -> None:
    v1 = register(owner, model, make_run, make_artifact, aliases=["staging"])

    assert services.alias_move(alias="staging", version=v1, user=owner) is None
    assert AliasMove.objects.count() == 1


def test_production_is_protected_in_a_new_model(model: ModelRepository) -> None:
    assert model.protected_aliases == ["production"]


def test_a_protected_alias_is_never_moved_directly_even_by_an_admin(
    staff: User, owner: User, model: ModelRepository, make_run: MakeRun, make_artifact: MakeArtifact
) -> None:
    version = register(owner, model, make_run, make_artifact)

    for user in (owner, staff):
        with pytest.raises(Conflict) as caught:
            services.alias_move(alias="production", version=version, user=user)
        assert caught.value.code == "protected_alias"
        assert "review request" in str(caught.value.message)
    assert not Alias.objects.exists()


def test_registering_onto_a_protected_alias_writes_nothing(
    owner: User, model: ModelRepository, make_run: MakeRun, make_artifact: MakeArtifact
) -> None:
    with pytest.raises(Conflict) as caught:
        register(owner, model, make_run, make_artifact, aliases=["staging", "production"])

    assert caught.value.code == "protected_alias"
    assert caught.value.field == "aliases.1"
    assert not ModelVersion.objects.exists()
    assert not Alias.objects.exists()


def test_a_merged_review_request_moves_a_protected_alias(
    owner: User, model: ModelRepository, make_run: MakeRun, make_artifact: MakeArtifact
) -> None:
    version = register(owner, model, make_run, make_artifact)

    merge = services.ReviewMerge(review_request_id="r" * 32, number=7, alias="production", version_id=version.id)
    move = services.alias_move(alias="production", version=version, user=owner, reason="merged", merge=merge)

    assert move is not None
    assert move.review_request_id == "r" * 32
    assert Alias.objects.get(name="production").version == version


def test_a_string_is_not_proof_of_a_merge(
    owner: User, model: ModelRepository, make_run: MakeRun, make_artifact: MakeArtifact
) -> None:
    version = register(owner, model, make_run, make_artifact)

    with pytest.raises(TypeError):
        services.alias_move(alias="production", version=version, user=owner, merge="r" * 32)  # type: ignore[arg-type]

    assert not Alias.objects.exists()


def test_a_review_merge_moves_only_its_own_alias_to_its_own_version(
    owner: User, model: ModelRepository, make_run: MakeRun, make_artifact: MakeArtifact
) -> None:
    v1 = register(owner, model, make_run, make_artifact, content=b"a")
    v2 = register(owner, model, make_run, make_artifact, content=b"b")
    merge = services.ReviewMerge(review_request_id="r" * 32, number=7, alias="production", version_id=v1.id)

    for alias, version in (("production", v2), ("staging", v1)):
        with pytest.raises(ValueError, match="review request #7"):
            services.alias_move(alias=alias, version=version, user=owner, merge=merge)

    assert not Alias.objects.exists()


def test_only_the_review_merge_service_grants_a_review_merge() -> None:
    # SECURITY: a ReviewMerge lets its holder move a protected alias. The application builds
    # one in a single place, the reviews merge service (a module, or a package once split),
    # after the review policy allowed the merge; tests and benchmarks may build their own.
    root = Path(__file__).resolve().parents[2]
    packages = [p for p in root.iterdir() if (p / "__init__.py").exists() and p.name not in {"tests", "benchmarks"}]
    builders: set[str] = set()
    for path in (path for package in packages for path in package.rglob("*.py")):
        relative = path.relative_to(root)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                if name == "ReviewMerge":
                    builders.add(relative.as_posix())

    assert builders
    assert all(b.startswith("reviews/services/") for b in builders), builders


@pytest.mark.parametrize("name", ["latest", "v2", "abcdef123", "Bad Name"])
def test_reserved_alias_names_are_refused(
    owner: User, model: ModelRepository, make_run: MakeRun, make_artifact: MakeArtifact, name: str
) -> None:
    version = register(owner, model, make_run, make_artifact)

    with pytest.raises(DomainError) as caught:
        services.alias_move(alias=name, version=version, user=owner)

    assert isinstance(caught.value, Invalid)


def test_unprotecting_production_needs_the_admin_role(maintainer: User, model: ModelRepository) -> None:
    from core.errors import Forbidden

    with pytest.raises(Forbidden):
        services.model_update(user=maintainer, repository=model, protected_aliases=[])

    services.model_update(user=maintainer, repository=model, description="ok", protected_aliases=["production"])
    assert ModelRepository.objects.get(pk=model.pk).protected_aliases == ["production"]


def test_model_names_are_canonical_and_unique(owner: User, project: Project, model: ModelRepository) -> None:
    with pytest.raises(Conflict):
        services.model_create(user=owner, project=project, name="FRAUD")
    with pytest.raises(DomainError):
        services.model_create(user=owner, project=project, name="no spaces")


def test_datasets_can_be_chosen_by_name_or_given_as_fingerprints(
    owner: User, model: ModelRepository, make_run: MakeRun, make_artifact: MakeArtifact
) -> None:
    run = make_run(info=sdk_info())
    make_artifact(run)

    version = services.version_register(
        user=owner,
        repository=model,
        run=run,
        artifact="model.pkl",
        datasets=["train", {"name": "holdout", "digest": "2" * 64, "rows": 10}],
    )

    assert [d["name"] for d in version.datasets] == ["holdout", "train"]
    assert version.datasets[0]["digest"] == "sha256:" + "2" * 64


@pytest.mark.parametrize(
    ("datasets", "field"),
    [
        ("train", "datasets"),
        (["nope"], "datasets.0"),
        ([{"digest": "sha256:" + "1" * 64}], "datasets.0.name"),
        ([{"name": "x", "digest": "md5"}], "datasets.0.digest"),
        ([{"name": "x", "rows": -1}], "datasets.0.rows"),
        ([{"name": "x", "evil": 1}], "datasets.0.evil"),
    ],
)
def test_bad_datasets_are_refused_naming_the_field(
    owner: User, model: ModelRepository, make_run: MakeRun, make_artifact: MakeArtifact, datasets: object, field: str
) -> None:
    run = make_run()
    make_artifact(run)

    with pytest.raises(DomainError) as caught:
        services.version_register(user=owner, repository=model, run=run, artifact="model.pkl", datasets=datasets)

    assert caught.value.field == field
    assert not ModelVersion.objects.exists()
