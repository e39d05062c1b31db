"""SCIM provisioning (issue 23) as an identity provider drives it: an initial push of
``--users`` accounts (one POST each, as Okta and Entra do), groups of 100 members, a full
reconciliation read (every user, pages of 200), the ``userName eq`` lookup an IdP makes before
each create, and deactivations (PATCH active=false: sign-out, token revocation, socket
broadcast). Against gunicorn + uvicorn workers (deploy/gunicorn.conf.py) on PostgreSQL, on one
kept-alive connection.

    .venv/bin/python benchmarks/scim.py [--users 2000] [--keep]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import benchlib

DBNAME = benchlib.dbname("assay_bench_scim")
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    env = benchlib.server_env(DBNAME)
    benchlib.prepare(DBNAME, env)
    token = benchlib.manage(env, "create_token", benchlib.USERNAME, "--scope", "scim", "--name", "idp").strip()
    rows: list[list[object]] = []
    with benchlib.Server("gunicorn", env) as server:
        scim = httpx.Client(
            base_url=f"{server.url}/scim/v2",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"},
            timeout=60,
        )

        def record(name: str, samples: list[float], extra: str = "") -> None:
            s = benchlib.summary_ms(samples)
            rows.append([name, s["n"], f"{s['p50']:.1f}", f"{s['p95']:.1f}", f"{s['max']:.1f}", extra])

        creates: list[float] = []
        ids: list[str] = []
        for i in range(args.users):
            body = {
                "schemas": [USER],
                "userName": f"person{i}@corp.example",
                "name": {"givenName": "Person", "familyName": str(i)},
                "emails": [{"value": f"person{i}@corp.example", "primary": True, "type": "work"}],
                "active": True,
            }
            start = time.perf_counter()
            answer = scim.post("/Users", json=body)
            creates.append(time.perf_counter() - start)
            assert answer.status_code == 201, answer.text
            ids.append(answer.json()["id"])
        record("POST /Users (create)", creates, f"{args.users / sum(creates):.0f} users/s")

        groups: list[float] = []
        for g in range(min(20, args.users // 100)):
            members = [{"value": i} for i in ids[g * 100 : (g + 1) * 100]]
            start = time.perf_counter()
            answer = scim.post("/Groups", json={"schemas": [GROUP], "displayName": f"team {g}", "members": members})
            groups.append(time.perf_counter() - start)
            assert answer.status_code == 201, answer.text
        record("POST /Groups (100 members)", groups)

        pages: list[float] = []
        seen, start_index = 0, 1
        while True:
            start = time.perf_counter()
            answer = scim.get("/Users", params={"startIndex": start_index, "count": 200})
            pages.append(time.perf_counter() - start)
            resources = answer.json()["Resources"]
            seen += len(resources)
            if len(resources) < 200:
                break
            start_index += 200
        assert seen == args.users + 1, seen  # and the bench superuser
        record("GET /Users page of 200", pages, f"all {seen} in {sum(pages):.2f} s")

        lookups: list[float] = []
        for i in range(0, args.users, max(1, args.users // 200)):
            start = time.perf_counter()
            answer = scim.get("/Users", params={"filter": f'userName eq "person{i}@corp.example"'})
            lookups.append(time.perf_counter() - start)
            assert answer.json()["totalResults"] == 1
        record('GET /Users?filter=userName eq "…"', lookups)

        deactivations: list[float] = []
        for user_id in ids[:100]:
            start = time.perf_counter()
            answer = scim.patch(
                f"/Users/{user_id}",
                json={"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": False}]},
            )
            deactivations.append(time.perf_counter() - start)
            assert answer.status_code == 200, answer.text
        record("PATCH active=false (deactivate)", deactivations)

    benchlib.print_table(["request", "n", "p50 ms", "p95 ms", "max ms", ""], rows)
    if not args.keep:
        benchlib.recreate_database(DBNAME)


if __name__ == "__main__":
    main()
