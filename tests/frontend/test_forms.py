"""Issue 16, bug 14: the forms a newcomer meets. Sign-up through an invitation starts with the
invited address and names what it joins; the new review request form suggests a title and
offers the model's versions; a refused move of a protected alias keeps the form's values and
offers the review request that would move it; the author cannot request changes on their
own request. (The token page's scopes: tests/browser/test_forms.py.)"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.test.utils import override_settings

from accounts import services as account_services
from accounts.models import Project, Team, User
from core.errors import Forbidden
from registry.models import ModelVersion
from reviews import services as review_services
from reviews.models import Review
from tests.registry.conftest import maintainer, make_artifact, make_run, model  # noqa: F401
from tests.reviews.conftest import register, v1, v2  # noqa: F401

pytestmark = pytest.mark.django_db


def web(user: User | None = None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def input_tag(page: str, field_id: str) -> str:
    found = re.search(rf'<input[^>]*id="{field_id}"[^>]*>', page)
    assert found is not None, f"no input #{field_id}"
    return found.group(0)


# --- sign-up through an invitation ------------------------------------------------------------


def _opened(issued: account_services.IssuedInvitation) -> Client:
    client = web()
    client.get(issued.path)  # the e-mailed link: its secret goes into the session
    return client


def test_sign_up_through_a_project_invitation_starts_with_the_address_and_names_the_project(
    project: Project, owner: User
) -> None:
    done = account_services.project_invite(
        project=project, inviter=owner, role="maintainer", invitee="dana@example.com"
    )
    assert done.issued is not None
    page = _opened(done.issued).get("/accounts/signup/?next=/invitations/").content.decode()
    assert 'value="dana@example.com"' in input_tag(page, "id_email")
    assert 'value="dana"' in input_tag(page, "id_username")
    banner = re.search(r'data-testid="signup-invitation">(.*?)</div>', page, re.S)
    assert banner is not None
    assert (
        re.sub(r"\s+", " ", banner.group(1))
        .strip()
        .startswith("owner invites you to the project <strong>acme/proj</strong> as <strong>maintainer</strong>.")
    )


@override_settings(ASSAY_SIGNUP="invite")
def test_sign_up_through_a_team_invitation_names_the_team_and_signing_up_keeps_working(team: Team, owner: User) -> None:
    issued = account_services.invitation_create(team=team, inviter=owner, email="friend@example.com")
    client = _opened(issued)
    page = client.get("/accounts/signup/").content.decode()
    assert 'value="friend@example.com"' in input_tag(page, "id_email")
    assert "invites you to the team <strong>acme</strong> as <strong>member</strong>" in page
    body = {
        "email": "friend@example.com",
        "username": "friend",
        "password1": "correct-horse-battery-staple",
        "password2": "correct-horse-battery-staple",
    }
    assert client.post("/accounts/signup/", body).status_code == 302
    assert User.objects.filter(username="friend").exists()


def test_sign_up_without_an_invitation_shows_no_banner_and_no_address() -> None:
    with override_settings(ASSAY_SIGNUP="open"):
        page = web().get("/accounts/signup/").content.decode()
    assert 'data-testid="signup-invitation"' not in page
    assert "value=" not in input_tag(page, "id_email")


# --- the new review request form ----------------------------------------------------------------


def test_the_new_request_form_suggests_a_title_and_offers_the_versions(
    member: User,
    v2: ModelVersion,  # noqa: F811
) -> None:
    page = web(member).get("/acme/proj/reviews/new/").content.decode()
    assert 'value="Move production to v2 of fraud"' in input_tag(page, "title")
    select = re.search(r'<select[^>]*id="version"[^>]*>(.*?)</select>', page, re.S)
    assert select is not None, "the version is a select, not free text"
    options = re.findall(r'<option value="(v\d+)"[^>]*?( selected)?>', select.group(1))
    assert options == [("v2", " selected"), ("v1", "")]  # newest first; v1 is what production holds
    assert "(production)" in select.group(1)


def test_the_form_opened_from_a_version_page_suggests_that_version(
    member: User,
    v2: ModelVersion,  # noqa: F811
) -> None:
    page = web(member).get("/acme/proj/reviews/new/?model=fraud&version=v1&alias=staging").content.decode()
    assert 'value="Move staging to v1 of fraud"' in input_tag(page, "title")
    assert re.search(r'<option value="v1"[^>]* selected>', page)


def test_the_suggested_title_opens_the_request(member: User, v2: ModelVersion) -> None:  # noqa: F811
    response = web(member).post(
        "/acme/proj/reviews/new/",
        {"model": "fraud", "version": "v2", "alias": "production", "title": "Move production to v2 of fraud"},
    )
    assert response.status_code == 302
    assert v2.repository.review_requests.get().title == "Move production to v2 of fraud"


# --- a refused move of a protected alias ---------------------------------------------------------


def test_a_refused_protected_move_keeps_the_values_and_offers_a_prefilled_review_request(
    maintainer: User,  # noqa: F811
    v2: ModelVersion,  # noqa: F811
) -> None:
    client = web(maintainer)
    response = client.post(
        "/acme/proj/models/fraud/aliases/", {"alias": "production", "version": "2", "reason": "better recall"}
    )
    assert response.status_code == 409
    page = response.content.decode()
    assert "The alias was not moved:" in page
    assert 'value="production"' in input_tag(page, "alias-name")
    assert 'value="better recall"' in input_tag(page, "alias-reason")
    assert re.search(r'<option value="2" selected>v2', page)
    offer = re.search(r'<a [^>]*href="([^"]+)" data-testid="open-review-offer">([^<]+)</a>', page)
    assert offer is not None
    assert offer.group(2) == "Open a review request for v2"
    url = offer.group(1).replace("&amp;", "&")
    assert url == "/acme/proj/reviews/new/?model=fraud&version=v2&alias=production&description=better+recall"
    # the offered form: model, version, alias, description and a title, all filled in
    form = client.get(url).content.decode()
    assert 'value="Move production to v2 of fraud"' in input_tag(form, "title")
    assert re.search(r'<option value="v2"[^>]* selected>', form)
    assert ">better recall</textarea>" in form
    assert v2.repository.aliases.get(name="production").version.number == 1  # nothing moved


def test_an_unprotected_refusal_keeps_the_values_without_a_review_offer(
    maintainer: User,  # noqa: F811
    v2: ModelVersion,  # noqa: F811
) -> None:
    response = web(maintainer).post("/acme/proj/models/fraud/aliases/", {"alias": "Bad Name!", "version": "2"})
    assert response.status_code == 400
    page = response.content.decode()
    assert 'value="Bad Name!"' in input_tag(page, "alias-name")
    assert 'data-testid="open-review-offer"' not in page


# --- the author's own request -------------------------------------------------------------------


def _open(member: User, v2: ModelVersion) -> Any:  # noqa: F811
    rr, _ = review_services.review_request_open(
        user=member, project=v2.repository.project, model="fraud", version=v2.number, alias="production", title="v2"
    )
    return rr


def test_the_author_cannot_request_changes_on_their_own_request(
    member: User,
    maintainer: User,  # noqa: F811
    v2: ModelVersion,  # noqa: F811
) -> None:
    rr = _open(member, v2)
    with pytest.raises(Forbidden) as refused:
        review_services.review_submit(
            user=member, review_request=rr, verdict="request_changes", body="hm", version_hash=v2.content_hash
        )
    assert refused.value.code == "author_cannot_request_changes"
    assert not Review.objects.exists()
    # the page offers the button to reviewers only
    mine = web(member).get(f"/acme/proj/reviews/{rr.number}/").content.decode()
    theirs = web(maintainer).get(f"/acme/proj/reviews/{rr.number}/").content.decode()
    assert 'value="request_changes"' not in mine
    assert 'value="request_changes"' in theirs
    # and a hand-made POST is refused with the rule's code, nothing written
    web(member).post(
        f"/acme/proj/reviews/{rr.number}/review/",
        {"verdict": "request_changes", "body": "x", "version_hash": v2.content_hash},
    )
    assert not Review.objects.exists()


def test_the_review_page_offers_its_author_a_way_to_get_a_second_reviewer(
    member: User,
    owner: User,
    v2: ModelVersion,  # noqa: F811
) -> None:
    rr = _open(member, v2)
    as_author = web(member).get(f"/acme/proj/reviews/{rr.number}/").content.decode()
    assert "The author of a request cannot approve it" in as_author
    assert 'data-testid="invite-form"' not in as_author  # a writer may not invite: the page says whom to ask
    assert "Only the project's admins may invite people" in as_author
    as_admin = web(owner).get(f"/acme/proj/reviews/{rr.number}/").content.decode()
    assert 'data-testid="invite-form"' in as_admin
    assert f'name="next" value="/acme/proj/reviews/{rr.number}/"' in as_admin
    assert re.search(r'id="rr-invite-role"[^>]*>.*?<option value="maintainer" selected>', as_admin, re.S)


def test_a_suggested_title_follows_a_pushed_candidate_and_a_written_one_stays(
    member: User,
    register: Any,  # noqa: F811
    v2: ModelVersion,  # noqa: F811
) -> None:
    project = v2.repository.project
    suggested, _ = review_services.review_request_open(
        user=member,
        project=project,
        model="fraud",
        version=2,
        alias="production",
        title="Move production to v2 of fraud",
    )
    written, _ = review_services.review_request_open(
        user=member, project=project, model="fraud", version=2, alias="staging", title="Ship the recall fix"
    )
    v3 = register(metrics={"acc": 0.93, "loss": 0.27})
    for rr in (suggested, written):
        review_services.review_request_update(user=member, review_request=rr, version=v3.number)
        rr.refresh_from_db()
    assert suggested.title == "Move production to v3 of fraud"  # the merge will say what it moves
    assert written.title == "Ship the recall fix"
