"""Project settings → Alerts pages: everyone who sees the project reads the rules and what
they fired; only admins create, edit and delete (403 for a writer or viewer, 404 for an
outsider, nothing written); a bad rule is a 400 naming the field with the form kept and
nothing saved."""

from __future__ import annotations

import pytest
from django.utils.html import escape

from accounts.models import Project, User
from automations.models import AlertFiring, AlertRule
from experiments.models import Run
from tests.helpers import flashed, signed_in

pytestmark = pytest.mark.django_db

PAGE = "/acme/proj/settings/alerts/"


def test_viewers_read_admins_change_outsiders_see_nothing(
    owner: User, member: User, viewer: User, outsider: User, project: Project, run: Run
) -> None:
    # given a rule that fired on the run
    rule = AlertRule.objects.create(project=project, name="nan guard", kind="nonfinite", created_by=owner)
    AlertFiring.objects.create(rule=rule, run=run, key="loss", value=float("nan"), step=3, message="fired <b>x</b>")
    # then writers and viewers read the list, the rule and what fired, without a form
    for user in (member, viewer):
        web = signed_in(user)
        page = web.get(PAGE).content.decode()
        assert "nan guard" in page
        assert "NaN or Infinity in any metric" in page
        assert "fired &lt;b&gt;x&lt;/b&gt;" in page  # escaped
        assert 'data-testid="alert-form"' not in page
        detail = web.get(f"{PAGE}{rule.id}/")
        assert detail.status_code == 200
        assert 'data-testid="alert-form"' not in detail.content.decode()
        assert web.post(PAGE, {"kind": "stalled", "minutes": "5"}).status_code == 403
        assert web.post(f"{PAGE}{rule.id}/", {"kind": "stalled", "minutes": "5"}).status_code == 403
        assert web.post(f"{PAGE}{rule.id}/delete/").status_code == 403
    # an outsider gets 404 everywhere, for the rule and a missing one alike
    web = signed_in(outsider)
    for path in (PAGE, f"{PAGE}{rule.id}/", f"{PAGE}{'0' * 32}/"):
        assert web.get(path).status_code == 404
    assert web.post(PAGE, {"kind": "stalled", "minutes": "5"}).status_code == 404
    assert web.post(f"{PAGE}{rule.id}/delete/").status_code == 404
    assert list(AlertRule.objects.values_list("name", "kind")) == [("nan guard", "nonfinite")]
    # and the project page links the alerts for everyone who sees it
    assert 'data-testid="project-alerts-link"' in signed_in(viewer).get("/acme/proj/").content.decode()


def test_an_admin_creates_edits_and_deletes_a_rule(owner: User, project: Project, run: Run) -> None:
    web = signed_in(owner)
    assert 'data-testid="alert-form"' in web.get(PAGE).content.decode()
    # create a threshold rule limited to the run's experiment (the other kinds' fields are ignored)
    response = web.post(
        PAGE,
        {"kind": "threshold", "condition": "val/loss > 2", "minutes": "9", "experiment": "default", "enabled": "on"},
    )
    assert response.status_code == 302
    rule = AlertRule.objects.get()
    assert (rule.key, rule.op, rule.value, rule.minutes, rule.experiment_id) == (
        "val/loss",
        ">",
        2.0,
        None,
        run.experiment_id,
    )
    # edit it into a stalled rule, disabled
    response = web.post(f"{PAGE}{rule.id}/", {"kind": "stalled", "minutes": "45", "name": "quiet"})
    assert response.status_code == 302
    rule.refresh_from_db()
    assert (rule.kind, rule.minutes, rule.name, rule.enabled, rule.key) == ("stalled", 45, "quiet", False, "")
    assert "no new point for 45 min" in web.get(f"{PAGE}{rule.id}/").content.decode()
    # delete it
    assert web.post(f"{PAGE}{rule.id}/delete/").status_code == 302
    assert not AlertRule.objects.exists()


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"kind": "threshold", "condition": "val/loss => 2"}, "condition"),
        ({"kind": "threshold", "condition": ""}, "condition"),
        ({"kind": "stalled", "minutes": "soon"}, "minutes"),
        ({"kind": "stalled", "minutes": "0"}, "minutes"),
        ({"kind": "versus_best", "key": "acc", "goal": "max", "percent": "lots"}, "percent"),
        ({"kind": "versus_best", "goal": "max", "percent": "5"}, "key"),
        ({"kind": "sometimes"}, "kind"),
    ],
)
def test_a_bad_rule_is_a_400_naming_the_field_with_the_form_kept(
    owner: User, project: Project, form: dict[str, str], field: str
) -> None:
    response = signed_in(owner).post(PAGE, form)
    assert response.status_code == 400
    assert any(field in m for m in flashed(response)), flashed(response)
    page = response.content.decode()
    assert "is-invalid" in page or field == "kind"
    for value in form.values():
        if value and field != "kind":
            assert escape(value) in page  # the form is kept
    assert not AlertRule.objects.exists()
