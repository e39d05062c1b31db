"""The project page's "has this been tried?" box (issue 22): a pasted configuration in any of
the formats ``assay tried`` reads, the same answer as the API, refusals that name the
problem, and the project's access rules."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import Project, User
from experiments import services
from experiments.config_text import MAX_TEXT, ConfigTextError, parse_config_text
from experiments.models import Run

pytestmark = pytest.mark.django_db

URL = "/acme/proj/tried/"


@pytest.fixture
def runs(owner: User, project: Project) -> list[Run]:
    out = []
    for name, config in [("base", {"lr": 0.01, "batch_size": 32}), ("wider", {"lr": 0.01, "batch_size": 64})]:
        run = services.run_create(user=owner, project_path="acme/proj", name=name, config=config)
        out.append(run)
    return out


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    "text",
    [
        '{"lr": 0.01, "batch_size": 32}',
        "lr: 1e-2\nbatch_size: 32\n",
        "Namespace(batch_size=32, lr=0.01)",
        "Namespace(batch_size=32, **{'lr': 0.01})",
    ],
)
def test_the_same_configuration_in_any_format_is_found(owner: User, runs: list[Run], text: str) -> None:
    # when
    response = _client(owner).post(URL, {"config": text})

    # then
    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-testid="tried-yes"' in html
    assert f"/acme/proj/runs/{runs[0].id}/" in html
    assert f"/acme/proj/runs/{runs[1].id}/" not in html


def test_a_new_configuration_shows_the_nearest_runs_and_what_differs(owner: User, runs: list[Run]) -> None:
    response = _client(owner).post(URL, {"config": "lr: 0.1\nbatch_size: 32\n"})

    html = response.content.decode()
    assert 'data-testid="tried-no"' in html
    near = html[html.index('data-testid="tried-near"') :]
    assert f"/acme/proj/runs/{runs[0].id}/" in near  # one key apart (lr)
    assert f"/acme/proj/runs/{runs[1].id}/" in near  # two keys apart
    assert near.index(runs[0].id) < near.index(runs[1].id)
    assert "<code>lr</code>" in near


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty"),
        ("[1, 2, 3]", "must be an object"),
        ("a: &x [1]\nb: *x\n", "anchors and aliases"),
        ("Namespace(lr=__import__('os').getcwd())", "only literal values"),
        ("Namespace(1, 2)", "not an argparse dump"),
        ("{: nope", "neither JSON, YAML"),
        ("x" * (MAX_TEXT + 1), "longer than"),
        ("[" * 5000 + "]" * 5000, "nested too deeply"),
    ],
)
def test_bad_input_is_refused_naming_the_problem(owner: User, runs: list[Run], text: str, message: str) -> None:
    response = _client(owner).post(URL, {"config": text})

    assert response.status_code == 400
    error = response.content.decode()
    assert 'data-testid="tried-error"' in error
    assert message in error


def test_a_config_over_the_run_limits_is_refused(owner: User, runs: list[Run]) -> None:
    big = {f"key{i}": "v" * 1000 for i in range(400)}
    response = _client(owner).post(URL, {"config": str(big).replace("'", '"')})
    assert response.status_code == 400
    assert "config" in response.content.decode()


def test_viewers_may_ask_outsiders_see_404_anonymous_is_sent_to_sign_in(
    viewer: User, outsider: User, runs: list[Run]
) -> None:
    assert _client(viewer).post(URL, {"config": '{"lr": 0.01, "batch_size": 32}'}).status_code == 200
    assert _client(outsider).get(URL).status_code == 404
    assert _client(outsider).post(URL, {"config": "{}"}).status_code == 404
    assert _client(viewer).get("/acme/missing/tried/").status_code == 404
    anonymous = Client().get(URL)
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/login/")


def test_the_project_page_links_the_box(owner: User, runs: list[Run]) -> None:
    html = _client(owner).get("/acme/proj/").content.decode()
    assert 'data-testid="project-tried-link"' in html
    assert 'href="/acme/proj/tried/"' in html


def test_a_namespace_with_a_non_dict_splat_is_refused() -> None:
    with pytest.raises(ConfigTextError, match="must be a dict"):
        parse_config_text("Namespace(**[1, 2])")


def test_yaml_and_json_agree() -> None:
    assert parse_config_text("a:\n  b: 1\n") == parse_config_text('{"a": {"b": 1}}') == {"a": {"b": 1}}
