"""Issue 17 bug 5: an ``offset`` beyond 64 bits on ``/notifications/`` and
``…/review-requests/`` reached PostgreSQL ("bigint out of range", a 500). Every list's paging
parameters go through core.paging now: out of range or malformed is 400 naming the
parameter, on every list endpoint."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from experiments.models import Run
from tests.helpers import assert_error
from tests.security.test_endpoints import victim_run  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db

B = "/api/v1"
P = f"{B}/projects/acme/proj"
# (list URL, a paging parameter it takes)
PARAMETERS = [
    (f"{B}/notifications/", "offset"),
    (f"{B}/notifications/", "limit"),
    (f"{P}/review-requests/?state=all", "offset"),
    (f"{P}/review-requests/?state=all", "limit"),
    (f"{B}/runs/{{run}}/metrics/system/cpu/", "offset"),
    (f"{B}/runs/{{run}}/metrics/system/cpu/", "limit"),
    (f"{B}/runs/{{run}}/metrics/system/cpu/", "max_points"),
    (f"{B}/runs/?project=acme/proj", "page_size"),
    (f"{B}/runs/?project=acme/proj", "max_results"),
    (f"{B}/runs/?project=acme/proj", "page"),
    (f"{B}/projects/", "page_size"),
    (f"{B}/audit/?project=acme/proj", "page_size"),
    (f"{P}/keys/", "limit"),
    (f"{B}/search/?q=first", "limit"),
    (f"{B}/compare/?runs={{run}}", "max_points"),
]
OUT_OF_RANGE = [str(2**63), str(2**64), "-1", "1.5", "abc", "9" * 30]


@pytest.mark.parametrize(("url", "name"), PARAMETERS, ids=[f"{u.split('?')[0]} {n}" for u, n in PARAMETERS])
def test_paging_parameters_out_of_range_are_refused_naming_them(
    owner_client: APIClient,
    victim_run: Run,  # noqa: F811 (the imported fixture)
    url: str,
    name: str,
) -> None:
    owner_client.raise_request_exception = False  # a crash must show as the 500 a client sees
    url = url.format(run=victim_run.id)
    joiner = "&" if "?" in url else "?"
    assert owner_client.get(f"{url}{joiner}{name}=2").status_code == 200  # the list and the parameter are real

    for raw in OUT_OF_RANGE:
        response = owner_client.get(f"{url}{joiner}{name}={raw}")

        assert_error(response, 400, field=name)
