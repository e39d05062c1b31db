"""Artifact upload throughput: presigned multipart straight to an S3 server vs. one PUT
proxied through the app server, and the app server's CPU time per GiB in each case.

    .venv/bin/python benchmarks/artifacts.py [--size-mib 1024] [--write-readme]

Starts, on loopback: moto's standalone S3 server (its own process, so its CPU is not
counted), and uvicorn serving Assay twice on a fresh PostgreSQL database, once with
``ASSAY_ARTIFACTS=s3://…`` and once with a local folder whose uploads arrive through
the server's own ``/-/store/`` endpoint (forced to a single PUT). The SDK's uploader
sends the same random file to both (hashed beforehand, so hashing is not timed). The app
server's CPU is read from /proc/<pid>/stat before and after. Tasks go to a Redis queue
that no worker reads, so processing is not part of the measurement.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
BIN = REPO / ".venv" / "bin"
PG = os.environ.get("ASSAY_BENCH_PG", "postgres://postgres@127.0.0.1:5432")
sys.path.insert(0, str(REPO / "sdk" / "src"))

from assay.artifacts import LocalFile, Uploader  # noqa: E402
from assay.client import Client  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_http(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: process exited")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


def manage(env: dict[str, str], *args: str) -> str:
    return subprocess.run(
        [str(BIN / "python"), "manage.py", *args], cwd=REPO, env=env, check=True, capture_output=True, text=True
    ).stdout


def serve(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = dict(env, ASSAY_PUBLIC_URL=f"http://127.0.0.1:{port}")
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [
                str(BIN / "uvicorn"),
                "config.asgi:application",
                "--port",
                str(port),
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/healthz", proc)
    return proc, url


def measure(url: str, token: str, pid: int, data: Path, sha256: str, size: int, label: str) -> dict[str, float]:
    client = Client(url, token, timeout=600)
    # A project per measurement: content is deduplicated per project.
    project = f"bench/p{uuid.uuid4().hex[:8]}"
    run = client.request("POST", "/runs/", body={"project": project, "name": label})
    uploader = Uploader(client, run["id"], say=lambda message: print(message, file=sys.stderr), progress=False)
    before_cpu, start = cpu_seconds(pid), time.perf_counter()
    uploader.upload([LocalFile(data, "big.bin", size, sha256)], "file", label)
    elapsed = time.perf_counter() - start
    server_cpu = cpu_seconds(pid) - before_cpu
    uploader.close()
    items = client.list_artifacts(run["id"])
    assert items[0]["status"] == "uploaded", items
    assert uploader.stats.bytes_uploaded == size, uploader.stats
    gib = size / 2**30
    return {
        "seconds": elapsed,
        "mib_per_s": size / 2**20 / elapsed,
        "server_cpu_per_gib": server_cpu / gib,
        "parts": uploader.stats.parts_uploaded,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--write-readme", action="store_true", help="append the results to benchmarks/README.md")
    args = parser.parse_args()
    size = args.size_mib * 2**20

    import psycopg

    work = Path(tempfile.mkdtemp(prefix="assay-bench-artifacts-"))
    dbname = f"assay_bench_art_{uuid.uuid4().hex[:8]}"
    procs: list[subprocess.Popen[bytes]] = []
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{dbname}"')
    try:
        data = work / "big.bin"
        digest = hashlib.sha256()
        with open(data, "wb") as out:
            for _ in range(size // 2**20):
                block = os.urandom(2**20)
                digest.update(block)
                out.write(block)
        sha256 = digest.hexdigest()

        moto_port = free_port()
        moto = subprocess.Popen(
            [str(BIN / "python"), "-m", "moto.server", "-H", "127.0.0.1", "-p", str(moto_port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        procs.append(moto)
        moto_url = f"http://127.0.0.1:{moto_port}"
        wait_http(moto_url, moto)
        import boto3

        boto3.client(
            "s3", endpoint_url=moto_url, aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1"
        ).create_bucket(Bucket="bench")

        base = {k: v for k, v in os.environ.items() if not k.startswith(("ASSAY_", "DJANGO_"))}
        base.update(
            {
                "DJANGO_SETTINGS_MODULE": "config.settings",
                "DATABASE_URL": f"{PG}/{dbname}",
                "REDIS_URL": "redis://127.0.0.1:6379/12",
                "ASSAY_CELERY_QUEUE": f"bench-nobody-{uuid.uuid4().hex[:6]}",
                "ASSAY_SECRET_KEY": "bench-" + "k" * 50,
                "ASSAY_VAR_DIR": str(work / "var"),
                "ASSAY_MAX_ARTIFACT_BYTES": str(8 * 2**30),
            }
        )
        manage(base, "migrate", "--noinput", "-v", "0")
        manage(
            base,
            "shell",
            "-c",
            "from accounts.models import User; User.objects.create_user('bench', 'b@example.com', 'bench-password-1')",
        )
        token = manage(base, "create_token", "bench").strip().splitlines()[-1]

        s3_env = dict(
            base, ASSAY_ARTIFACTS="s3://bench", S3_ENDPOINT_URL=moto_url, S3_ACCESS_KEY="x", S3_SECRET_KEY="x"
        )
        local_env = dict(base, ASSAY_ARTIFACTS=str(work / "store"), ASSAY_MULTIPART_THRESHOLD=str(16 * 2**30))
        s3_proc, s3_url = serve(s3_env, work / "s3-server.log")
        procs.append(s3_proc)
        presigned = measure(s3_url, token, s3_proc.pid, data, sha256, size, "presigned multipart to S3")
        s3_proc.terminate()
        local_proc, local_url = serve(local_env, work / "local-server.log")
        procs.append(local_proc)
        proxied = measure(local_url, token, local_proc.pid, data, sha256, size, "one PUT through the app server")
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=30)
        with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        for path in sorted(work.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        work.rmdir()

    lines = [
        f"| path | {args.size_mib} MiB upload | throughput | app-server CPU per GiB | parts |",
        "|---|---|---|---|---|",
        f"| presigned multipart → S3 (moto, loopback) | {presigned['seconds']:.1f} s | {presigned['mib_per_s']:.0f} MiB/s "
        f"| {presigned['server_cpu_per_gib']:.2f} s | {presigned['parts']:.0f} × 64 MiB, 4 in parallel |",
        f"| one PUT proxied through the app server (local store) | {proxied['seconds']:.1f} s | "
        f"{proxied['mib_per_s']:.0f} MiB/s | {proxied['server_cpu_per_gib']:.2f} s | 1 |",
    ]
    table = "\n".join(lines)
    print(table)
    if args.write_readme:
        readme = REPO / "benchmarks" / "README.md"
        section = (
            "\n\n## Artifact uploads (issue 5)\n\n"
            "`benchmarks/artifacts.py`: the same random file uploaded by the SDK's uploader through presigned "
            "multipart URLs straight to an S3 server (moto's standalone server on loopback, its own process), "
            "and as one PUT proxied through the app server (the embedded profile's local store). CPU is the "
            "uvicorn process's user+system time from /proc, from the first request to `complete`. "
            f"Machine: {os.cpu_count()} CPUs, shared with other work while measured.\n\n{table}\n\n"
            "With presigned URLs the app server only signs URLs and answers declare/complete (a few "
            "milliseconds of CPU per GiB); the bytes go to the store. Proxied, every byte passes through the "
            "ASGI server (spooled to a temporary file by Django, then copied into the store). moto keeps "
            "objects in memory and is pure Python, so the S3 throughput here is moto's, not MinIO's.\n"
        )
        with open(readme, "a") as out:
            out.write(section)


if __name__ == "__main__":
    main()
