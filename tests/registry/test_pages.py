"""The registry's edit form (server side): a model's or a version's description and tags
change, audited; the version's ingredients and hash do not; bad input names the line."""

from __future__ import annotations

import pytest

from accounts.models import AuditEvent, User
from core import markdown
from core.errors import DomainError
from frontend.registry_views import parse_tag_lines
from registry import services
from registry.models import AliasMove, ModelRepository, ModelVersion
from tests.helpers import signed_in
from tests.registry.conftest import MakeArtifact, MakeRun

pytestmark = pytest.mark.django_db

PAGE = "/acme/proj/models/fraud/"


@pytest.fixture
def version(owner: User, model: ModelRepository, make_run: MakeRun, make_artifact: MakeArtifact) -> ModelVersion:
    run = make_run()
    make_artifact(run)
    return services.version_register(user=owner, repository=model, run=run, artifact="model.pkl")


def test_a_maintainer_edits_a_versions_description_and_tags(maintainer: User, version: ModelVersion) -> None:
    web = signed_in(maintainer)
    page = web.get(PAGE + "v1/")
    assert 'href="/acme/proj/models/fraud/v1/edit/"' in page.content.decode()
    assert web.get(PAGE + "v1/edit/").status_code == 200

    response = web.post(
        PAGE + "v1/edit/",
        {"description": "**Better** recall.\r\n<script>alert(1)</script>", "tags": "stage = candidate\n\nowner=ana"},
    )

    assert response.status_code == 302
    assert response["Location"] == PAGE + "v1/"
    fresh = ModelVersion.objects.get(pk=version.pk)
    assert fresh.description == "**Better** recall.\n<script>alert(1)</script>"
    assert fresh.tags == {"stage": "candidate", "owner": "ana"}
    assert (fresh.content_hash, fresh.params, fresh.metrics) == (version.content_hash, version.params, version.metrics)
    event = AuditEvent.objects.get(action="model.version.update")
    assert event.data["after"]["tags"] == {"stage": "candidate", "owner": "ana"}
    html = web.get(PAGE + "v1/").content.decode()
    assert "<strong>Better</strong> recall." in html
    assert "<script>alert(1)</script>" not in html


def test_a_models_description_is_rendered_with_the_one_markdown_policy(
    maintainer: User, model: ModelRepository
) -> None:
    # given: raw HTML and a script link in a model's description
    model.description = "**Card** fraud <b>bold</b> [x](javascript:alert(1)) [docs](https://example.com)"
    model.save(update_fields=["description"])

    # when
    page = signed_in(maintainer).get(PAGE).content.decode()

    # then: the HTML a review comment would get (core.markdown): raw HTML shown as text
    assert markdown.render(model.description) in page
    assert "&lt;b&gt;bold&lt;/b&gt;" in page
    assert "javascript:" not in page


def test_a_maintainer_edits_the_models_description(maintainer: User, model: ModelRepository) -> None:
    web = signed_in(maintainer)
    assert 'href="/acme/proj/models/fraud/edit/"' in web.get(PAGE).content.decode()

    response = web.post(PAGE + "edit/", {"description": "# Fraud\nscores payments", "tags": "domain=payments"})

    assert response.status_code == 302
    fresh = ModelRepository.objects.get(pk=model.pk)
    assert (fresh.description, fresh.tags) == ("# Fraud\nscores payments", {"domain": "payments"})
    assert AuditEvent.objects.filter(action="model.update").exists()


@pytest.mark.parametrize(
    ("tags", "message"),
    [
        ("stage", "tags line 1: write key=value."),
        ("a=1\n=2", "tags line 2: write key=value."),
        ("a=1\na=2", "tags line 2: a is given twice."),
        ("../x=1", "tags.../x: A tag key may not start with '/' or contain a '..' segment."),
        ("k=" + "v" * 5001, "tags.k must be a string of at most 5000 characters."),
    ],
)
def test_bad_tags_are_refused_naming_the_line_and_nothing_changes(
    maintainer: User, version: ModelVersion, tags: str, message: str
) -> None:
    response = signed_in(maintainer).post(PAGE + "v1/edit/", {"description": "kept in the form", "tags": tags})

    assert response.status_code == 400
    body = response.content.decode()
    assert message.replace("'", "&#x27;") in body
    assert "kept in the form" in body  # what was typed is not lost
    fresh = ModelVersion.objects.get(pk=version.pk)
    assert (fresh.description, fresh.tags) == ("", {})


def test_a_member_may_read_but_not_edit(member: User, version: ModelVersion) -> None:
    web = signed_in(member)
    assert "/v1/edit/" not in web.get(PAGE + "v1/").content.decode()
    assert web.get(PAGE + "v1/edit/").status_code == 403
    assert web.post(PAGE + "v1/edit/", {"description": "x", "tags": ""}).status_code == 403
    assert web.post(PAGE + "edit/", {"description": "x", "tags": ""}).status_code == 403
    assert ModelVersion.objects.get(pk=version.pk).description == ""


def test_an_outsider_gets_not_found(outsider: User, version: ModelVersion) -> None:
    assert signed_in(outsider).get(PAGE + "v1/edit/").status_code == 404
    assert signed_in(outsider).post(PAGE + "edit/", {"description": "x"}).status_code == 404


def test_tag_lines_parse_to_a_dict() -> None:
    assert parse_tag_lines("a=1\n b = two words \n\nc=") == {"a": "1", "b": "two words", "c": ""}
    assert parse_tag_lines("") == {}
    with pytest.raises(DomainError):
        parse_tag_lines("x=1\n" * 201)


def _messages(response: object) -> list[str]:
    return [str(m) for m in response.context["messages"]]  # type: ignore[attr-defined]


def test_the_alias_form_moves_an_unprotected_alias_with_the_apis_rule(maintainer: User, version: ModelVersion) -> None:
    web = signed_in(maintainer)

    response = web.post(PAGE + "aliases/", {"alias": "staging", "version": "1", "reason": "first"}, follow=True)

    assert _messages(response) == ["staging now points to v1."]
    move = AliasMove.objects.get(alias="staging")
    assert (move.to_version_id, move.reason, move.review_request_id) == (version.id, "first", None)


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"alias": "production", "version": "1"}, "is protected"),
        ({"alias": "latest", "version": "1"}, "reserved"),
        ({"alias": "staging", "version": "9"}, "has no version v9"),
        ({"alias": "staging", "version": "staging"}, "not another alias"),
        ({"alias": "staging", "version": "1", "reason": "x" * 3000}, "reason must be a string"),
    ],
)
def test_the_alias_form_refuses_what_the_api_refuses(
    maintainer: User, version: ModelVersion, form: dict[str, str], message: str
) -> None:
    response = signed_in(maintainer).post(PAGE + "aliases/", form, follow=True)

    [shown] = _messages(response)
    assert shown.startswith("The alias was not moved: ")
    assert message in shown
    assert not AliasMove.objects.exists()


def test_a_member_may_not_move_an_alias(member: User, version: ModelVersion) -> None:
    response = signed_in(member).post(PAGE + "aliases/", {"alias": "staging", "version": "1"})

    assert response.status_code == 403
    assert not AliasMove.objects.exists()
