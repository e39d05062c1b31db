"""Report pages: live blocks follow new data, a frozen revision does not; who may do what;
user text and block parameters rendered safely; history and diff; export."""

from __future__ import annotations

import re

import pytest
from rest_framework.test import APIClient

from accounts.models import Project, User
from experiments.models import Figure, Run
from reports import services
from reports.models import Report, ReportRevision
from tests.helpers import log_path, post_json, rows, signed_in

pytestmark = pytest.mark.django_db

PAGE = "/acme/proj/reports/"
CHART = "```assay-chart metrics=loss\n```\n"


def _log(client: APIClient, run: Run, steps: range, value: float, batch: str) -> None:
    assert (
        post_json(client, log_path(run), {"batch_id": batch, "metrics": rows("loss", steps, value)}).status_code == 200
    )


def _polyline_points(html: str) -> list[str]:
    return re.findall(r'<polyline[^>]* points="([^"]+)"', html)


def _report(project: Project, user: User, body: str, title: str = "Findings") -> Report:
    return services.report_create(user=user, project=project, title=title, body=body).report


def test_a_live_chart_shows_a_newly_logged_point_and_a_frozen_one_does_not(
    project: Project, member: User, owner_client: APIClient, run: Run
) -> None:
    # given: a run with three points, a report with a live chart of it
    _log(owner_client, run, range(3), 1.0, "b1")
    report = _report(project, member, "Loss so far:\n\n" + CHART)
    web = signed_in(member)
    before = _polyline_points(web.get(f"{PAGE}1/").content.decode())
    assert len(before) == 1
    assert len(before[0].split()) // 2 == 3

    # when: a point is logged
    _log(owner_client, run, range(3, 4), 0.2, "b2")

    # then: the live page draws four points
    live = web.get(f"{PAGE}1/").content.decode()
    assert len(_polyline_points(live)[0].split()) // 2 == 4
    assert 'data-state="live"' in live

    # when: frozen, then another point is logged
    services.report_freeze(user=member, report=report)
    _log(owner_client, run, range(4, 6), 0.1, "b3")

    # then: the report (its newest revision is frozen) still draws four points
    frozen = web.get(f"{PAGE}1/").content.decode()
    assert 'data-state="frozen"' in frozen
    assert len(_polyline_points(frozen)[0].split()) // 2 == 4
    # and the revision before the freeze, which is live, draws all six
    earlier = web.get(f"{PAGE}1/revisions/1/").content.decode()
    assert len(_polyline_points(earlier)[0].split()) // 2 == 6


def test_an_edit_after_a_freeze_is_live_again(
    project: Project, member: User, owner_client: APIClient, run: Run
) -> None:
    _log(owner_client, run, range(2), 1.0, "b1")
    report = _report(project, member, CHART)
    services.report_freeze(user=member, report=report)
    services.report_update(user=member, report=report, body=CHART + "\nA conclusion.")
    _log(owner_client, run, range(2, 3), 0.5, "b2")

    page = signed_in(member).get(f"{PAGE}1/").content.decode()

    assert 'data-state="live"' in page
    assert len(_polyline_points(page)[0].split()) // 2 == 3


@pytest.mark.usefixtures("viewer")
def test_a_viewer_reads_but_every_write_page_refuses(project: Project, member: User, viewer: User) -> None:
    _report(project, member, "Hello")
    web = signed_in(viewer)

    page = web.get(f"{PAGE}1/")
    assert page.status_code == 200
    assert b'data-testid="report-edit"' not in page.content
    assert b'data-testid="report-freeze"' not in page.content
    assert web.get(f"{PAGE}1/edit/").status_code == 403
    assert web.post(f"{PAGE}1/edit/", {"title": "x", "body": "taken"}).status_code == 403
    assert web.get(f"{PAGE}new/").status_code == 403
    assert web.post(f"{PAGE}1/freeze/").status_code == 403
    assert web.post(f"{PAGE}1/comment/", {"body": "hi"}).status_code == 403
    assert web.post(f"{PAGE}1/delete/").status_code == 403
    assert Report.objects.get().body == "Hello"
    assert ReportRevision.objects.count() == 1


def test_an_outsider_gets_404_on_every_report_page(project: Project, member: User, outsider: User) -> None:
    _report(project, member, "Secret")
    web = signed_in(outsider)

    for url in ("", "1/", "1/edit/", "1/revisions/", "1/revisions/1/", "1/diff/", "1/export.html", "new/", "2/"):
        assert web.get(PAGE + url).status_code == 404, url
    assert web.post(f"{PAGE}1/comment/", {"body": "x"}).status_code == 404
    assert web.post(f"{PAGE}1/delete/").status_code == 404
    assert Report.objects.count() == 1


XSS_BODY = """<script>alert(1)</script>
[click](javascript:alert(2)) [data](data:text/html,<b>x</b>) <img src=x onerror=alert(3)>

```assay-chart metrics="<script>alert(4)</script>" query="attributes.name = '<img src=x onerror=alert(5)>'" title="<b onmouseover=alert(6)>t</b>"
```

```assay-runs query="metrics.x > 1 ) OR 1=1 --"
```

```assay-runs columns="name,params.lr'; DROP TABLE experiments_run; --"
```

```assay-evil onload=alert(7)
```

```assay-chart metrics=loss onclick="alert(8)"
```

```assay-chart metrics=loss
```

```assay-runs columns=name,tags.note
```
"""


def test_markdown_and_block_parameters_are_rendered_safely(
    project: Project, member: User, owner_client: APIClient, run: Run
) -> None:
    _log(owner_client, run, range(2), 1.0, "b1")
    Run.objects.filter(pk=run.pk).update(name="<img src=x onerror=alert(9)>")
    _report(project, member, XSS_BODY, title="<script>alert('title')</script>")

    html = signed_in(member).get(f"{PAGE}1/").content.decode()

    body = html.split('data-testid="report-body">', 1)[1].split("</article>", 1)[0]
    assert "<script" not in body
    assert "<img" not in body
    assert "<b " not in body
    assert "javascript:" not in body.replace("javascript:alert(2)", "") or 'href="javascript' not in body
    assert 'href="javascript' not in body
    assert 'href="data' not in body
    # the payloads appear only as escaped text (never as an attribute: checked just below)
    assert "onerror=" not in re.sub(r"onerror=alert\([359]\)", "", body)
    assert not re.search(r"<[^>]+\son\w+=", body)  # no event-handler attribute on any tag
    assert "&lt;script&gt;" in body  # shown as text
    assert "Unknown block assay-evil" in body
    assert "has no parameter &#x27;onclick&#x27;" in body
    assert "query:" in body  # the bad query is reported in its block, not executed
    assert "<th>params.lr&#x27;; DROP TABLE experiments_run; --</th>" in body  # a key, bound as a value
    assert "<script>alert(&#x27;title&#x27;)" not in html
    assert "&lt;script&gt;alert(&#x27;title&#x27;)" in html
    assert "<title>&lt;img src=x onerror=alert(9)&gt;</title>" in body  # the run's name in the chart
    assert Run.objects.count() == 1  # DROP TABLE did nothing


def test_the_revision_diff_page_marks_added_and_removed_lines(project: Project, member: User) -> None:
    report = _report(project, member, "keep\nold line\n")
    services.report_update(user=member, report=report, body="keep\nnew line\n<script>x</script>\n", message="fix")

    page = signed_in(member).get(f"{PAGE}1/diff/?from=1&to=2").content.decode()

    assert (
        '<span class="diff-del" data-kind="del"><span class="visually-hidden">removed: </span>-old line</span>' in page
    )
    assert '<span class="diff-add" data-kind="add"><span class="visually-hidden">added: </span>+new line</span>' in page
    assert "+&lt;script&gt;x&lt;/script&gt;" in page
    history = signed_in(member).get(f"{PAGE}1/revisions/").content.decode()
    assert history.count('data-testid="report-revision-row"') == 2
    assert "fix" in history


def test_the_editor_previews_without_saving_and_saves_a_revision(project: Project, member: User) -> None:
    web = signed_in(member)

    preview = web.post(f"{PAGE}new/", {"title": "T", "body": "# Heading\n\n" + CHART, "action": "preview"})
    assert preview.status_code == 200
    assert b"<h1>Heading</h1>" in preview.content
    assert b'data-testid="report-block"' in preview.content
    assert Report.objects.count() == 0

    saved = web.post(f"{PAGE}new/", {"title": "T", "body": "text", "action": "save"})
    assert saved.status_code == 302
    assert saved["Location"] == f"{PAGE}1/"
    refused = web.post(f"{PAGE}new/", {"title": "", "body": "text", "action": "save"})
    assert refused.status_code == 400
    assert b"title" in refused.content
    assert Report.objects.count() == 1


def test_a_confusion_matrix_block_draws_the_runs_matrix(project: Project, member: User, run: Run) -> None:
    Figure.objects.create(
        run=run,
        kind=Figure.Kind.CONFUSION_MATRIX,
        name="val",
        data={"labels": ["cat", "dog"], "matrix": [[9, 1], [2, 8]]},
    )
    _report(project, member, f"```assay-confusion run={run.pk} name=val\n```\n")

    page = signed_in(member).get(f"{PAGE}1/").content.decode()

    assert '<td class="num cm-9">9</td>' in page
    assert '<td class="num cm-1">1</td>' in page
    assert "<th>cat</th>" in page


def test_a_run_of_another_project_is_not_found_in_a_block(
    project: Project, member: User, owner: User, client_for: object
) -> None:
    from tests.factories import ExperimentFactory, ProjectFactory, RunFactory

    other = ProjectFactory.create(team=project.team, name="other", created_by=owner)
    foreign = RunFactory.create(project=other, experiment=ExperimentFactory.create(project=other), author=owner)
    Figure.objects.create(
        run=foreign, kind=Figure.Kind.CONFUSION_MATRIX, name="v", data={"labels": ["a"], "matrix": [[1]]}
    )
    _report(project, member, f"```assay-confusion run={foreign.pk}\n```\n")

    page = signed_in(member).get(f"{PAGE}1/").content.decode()

    assert "no run" in page
    assert "cm-9" not in page


def test_the_export_is_one_self_contained_html_file(
    project: Project, member: User, owner_client: APIClient, run: Run
) -> None:
    _log(owner_client, run, range(5), 1.0, "b1")
    _report(project, member, "# Result\n\n" + CHART + "\n[run](/acme/proj/)\n")

    response = signed_in(member).get(f"{PAGE}1/export.html")

    assert response.status_code == 200
    assert response["Content-Disposition"].startswith('attachment; filename="proj-report-1-findings.html"')
    html = response.content.decode()
    assert "<style>" in html
    assert ".report-block" in html
    assert "<polyline" in html
    assert "<script" not in html
    assert "<link" not in html
    assert 'src="' not in html
    assert 'href="/' not in html  # site paths made absolute


def test_a_cited_report_shows_on_the_review_request_and_the_version_page(
    project: Project, member: User, owner: User, run: Run
) -> None:
    from tests.reports.samples import model_with_request

    model_with_request(run, owner)
    _report(project, member, "Why v1 is better", title="Evidence for v1")
    web = signed_in(member)

    assert web.post(f"{PAGE}1/link/", {"review_request": "1"}).status_code == 302
    assert web.post(f"{PAGE}1/link/", {"model": "fraud", "version": "v1"}).status_code == 302
    refused = web.post(f"{PAGE}1/link/", {"review_request": "99"}, follow=True)

    assert b"Not linked" in refused.content
    review_page = web.get("/acme/proj/reviews/1/").content.decode()
    version_page = web.get("/acme/proj/models/fraud/v1/").content.decode()
    for page in (review_page, version_page):
        evidence = page.split('data-testid="evidence"', 1)[1].split("</section>", 1)[0]
        assert 'href="/acme/proj/reports/1/">#1 Evidence for v1</a>' in evidence
    report_page = web.get(f"{PAGE}1/").content.decode()
    assert "Review request #1: Ship v1" in report_page
    assert "fraud v1" in report_page


def test_a_comment_from_the_page_notifies_a_mentioned_viewer(project: Project, member: User, viewer: User) -> None:
    from reviews.models import Notification

    _report(project, member, "text")

    response = signed_in(member).post(f"{PAGE}1/comment/", {"body": "@viewer what do you think?"})

    assert response.status_code == 302
    notification = Notification.objects.get(user=viewer)
    assert notification.summary == "member mentioned you in a comment on report #1: Findings"
    inbox = signed_in(viewer).get("/notifications/").content.decode()
    assert 'href="/acme/proj/reports/1/"' in inbox


def test_a_report_is_cited_from_the_review_request_page_and_the_version_page(
    project: Project, member: User, owner: User, run: Run, viewer: User
) -> None:
    from reports.models import ReportLink
    from tests.reports.samples import model_with_request

    model_with_request(run, owner)
    _report(project, member, "text", title="Why v1")
    web = signed_in(member)
    assert b'data-testid="cite-report-form"' in web.get("/acme/proj/reviews/1/").content
    assert b'data-testid="cite-report-form"' not in signed_in(viewer).get("/acme/proj/reviews/1/").content

    on_request = web.post("/acme/proj/reviews/1/evidence/", {"report": "1"})
    on_version = web.post("/acme/proj/models/fraud/v1/evidence/", {"report": "1"})
    missing = web.post("/acme/proj/reviews/1/evidence/", {"report": "7"}, follow=True)

    assert on_request.status_code == 302
    assert on_request["Location"] == "/acme/proj/reviews/1/"
    assert on_version.status_code == 302
    assert on_version["Location"] == "/acme/proj/models/fraud/v1/"
    assert b"Not cited" in missing.content
    assert ReportLink.objects.count() == 2
    assert signed_in(viewer).post("/acme/proj/reviews/1/evidence/", {"report": "1"}).status_code == 403
