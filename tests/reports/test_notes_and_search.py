"""Run notes edited from the run page, with history; notes and reports in the global search."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.models import Project, User
from experiments.models import Run, RunNoteRevision
from reports import services
from tests.helpers import patch_json, run_path, signed_in

pytestmark = pytest.mark.django_db


def _notes_url(run: Run) -> str:
    return f"/acme/proj/runs/{run.pk}/notes/"


def test_a_writer_edits_notes_on_the_run_page_and_each_change_is_a_revision(
    run: Run, member: User, owner_client: APIClient
) -> None:
    # given: notes the SDK wrote
    assert patch_json(owner_client, run_path(run), {"notes": "lr too high"}).status_code == 200
    web = signed_in(member)
    assert b'data-testid="notes-edit"' in web.get(f"/acme/proj/runs/{run.pk}/").content

    # when
    response = web.post(_notes_url(run), {"notes": "lr too high\r\nretry with 1e-3"})

    # then
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.notes == "lr too high\nretry with 1e-3"
    revisions = list(
        RunNoteRevision.objects.filter(run=run).order_by("number").values_list("number", "author__username")
    )
    assert revisions == [(1, "owner"), (2, "member")]
    history = web.get(_notes_url(run)).content.decode()
    assert history.count('data-testid="note-revision"') == 2
    assert "+retry with 1e-3" in history


def test_saving_the_same_notes_adds_no_revision(run: Run, member: User) -> None:
    web = signed_in(member)
    web.post(_notes_url(run), {"notes": "a"})
    web.post(_notes_url(run), {"notes": "a"})

    assert RunNoteRevision.objects.filter(run=run).count() == 1


def test_notes_written_before_the_history_become_its_first_revision(run: Run, member: User) -> None:
    Run.objects.filter(pk=run.pk).update(notes="old notes")  # as before this feature: no revision

    signed_in(member).post(_notes_url(run), {"notes": "new notes"})

    assert list(RunNoteRevision.objects.filter(run=run).order_by("number").values_list("body", "author")) == [
        ("old notes", None),
        ("new notes", member.pk),
    ]


@pytest.mark.usefixtures("viewer")
def test_a_viewer_sees_the_history_but_cannot_edit_notes(run: Run, viewer: User) -> None:
    web = signed_in(viewer)

    assert b'data-testid="notes-edit"' not in web.get(f"/acme/proj/runs/{run.pk}/").content
    assert web.get(_notes_url(run)).status_code == 200
    assert web.post(_notes_url(run), {"notes": "mine"}).status_code == 403
    run.refresh_from_db()
    assert run.notes == ""


def test_an_outsider_gets_404_for_notes(run: Run, outsider: User) -> None:
    web = signed_in(outsider)

    assert web.get(_notes_url(run)).status_code == 404
    assert web.post(_notes_url(run), {"notes": "x"}).status_code == 404


def test_notes_that_are_too_long_are_refused_and_nothing_changes(run: Run, member: User) -> None:
    response = signed_in(member).post(_notes_url(run), {"notes": "x" * 100_001}, follow=True)

    assert b"Notes not saved" in response.content
    assert RunNoteRevision.objects.count() == 0


def test_global_search_finds_runs_by_their_notes_and_reports_by_their_text(
    project: Project, run: Run, member: User, outsider: User, owner_client: APIClient
) -> None:
    patch_json(owner_client, run_path(run), {"notes": "The warmup schedule diverged at step 400"})
    services.report_create(user=member, project=project, title="Warmup study", body="Cosine warmup wins by 2 points")

    page = signed_in(member).get("/-/search/", {"q": "warmup"}).content.decode()
    api = owner_client.get("/api/v1/search/", {"q": "warmup"}).json()
    hidden = signed_in(outsider).get("/-/search/", {"q": "warmup"}).content.decode()

    assert f'href="/acme/proj/runs/{run.pk}/"' in page
    assert "The warmup schedule diverged" in page  # the snippet
    assert 'href="/acme/proj/reports/1/"' in page
    assert "#1 Warmup study" in page
    assert [r["title"] for r in api["reports"]] == ["Warmup study"]
    assert [r["id"] for r in api["runs"]] == [run.pk]
    assert "Warmup study" not in hidden
    assert run.pk not in hidden
