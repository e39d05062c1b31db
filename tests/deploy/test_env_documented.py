"""Every environment variable the server reads is in docs/deploy.md's table."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [*sorted((ROOT / "config").glob("*.py")), ROOT / "deploy" / "gunicorn.conf.py"]
READ = re.compile(
    r"""(?:env_[a-z]+|os\.environ\.get|os\.environ\.setdefault|os\.getenv)\(\s*["']([A-Z][A-Z0-9_]+)["']"""
    r"""|os\.environ\[\s*["']([A-Z][A-Z0-9_]+)["']\s*\]"""
)


def variables_read() -> dict[str, str]:
    found: dict[str, str] = {}
    for source in SOURCES:
        for match in READ.finditer(source.read_text()):
            found.setdefault(match.group(1) or match.group(2), source.relative_to(ROOT).as_posix())
    return found


def documented() -> set[str]:
    text = (ROOT / "docs" / "deploy.md").read_text()
    table = text[text.index("## Environment variables") :]
    return {
        name
        for row in table.splitlines()
        if row.startswith("| `")
        for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row.split("|")[1])
    }


def test_the_scan_finds_the_variables_it_should() -> None:
    found = variables_read()

    # a few read in each style: typed helpers, os.environ.get, gunicorn's config
    assert {"DATABASE_URL", "ASSAY_SECRET_KEY", "PROMETHEUS_MULTIPROC_DIR", "ASSAY_WEB_WORKERS"} <= set(found)
    assert len(found) > 50


def test_every_variable_read_is_documented_in_deploy_md() -> None:
    missing = sorted(f"{name} ({source})" for name, source in variables_read().items() if name not in documented())

    assert not missing, f"add these to the table in docs/deploy.md: {missing}"


def test_the_table_documents_no_variable_that_nothing_reads() -> None:
    stale = sorted(documented() - set(variables_read()))

    assert not stale, f"docs/deploy.md documents variables nothing reads: {stale}"
