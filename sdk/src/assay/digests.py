"""sha256 digests of files and directories, and the ``verify.py`` that ``assay reproduce``
writes beside a rebuild: that script is this file, copied verbatim.

It has to run where the SDK is not installed (the rebuild installs the recorded packages,
never assay-sdk), so this module uses the standard library only and imports nothing from
``assay``; the SDK takes its digest functions from here, so the digests a run records and
the digests verify.py checks come from one implementation.

* a file: ``sha256:<hex>`` of its bytes;
* a directory: ``sha256:<hex>`` over the lines ``<relative path>\\t<file sha256 hex>\\n``
  of every regular file below it, sorted by relative path (``/``-separated, UTF-8);
  symbolic links are not followed.

As a script (``python verify.py [BINARY]``, next to the ``manifest.json`` of the version)
it compares what the rebuild produced with what the version recorded. Exit status 0 when
every digest that can be checked matches, 1 otherwise.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

CHUNK = 1024 * 1024


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The sha256 hex digest of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def path_digest(path: str | os.PathLike[str]) -> tuple[str, int]:
    """``(digest, size in bytes)`` of a file or a directory (see the module docstring).
    Raises ``ValueError`` when ``path`` itself is neither (a symbolic link, a device…)."""
    root = Path(path)
    info = root.lstat()
    if stat.S_ISREG(info.st_mode):
        return "sha256:" + file_sha256(root), info.st_size
    if not stat.S_ISDIR(info.st_mode):
        raise ValueError(f"{path} is neither a file nor a directory.")
    lines: list[tuple[str, str]] = []
    total = 0
    for folder, _dirs, files in os.walk(root, followlinks=False):
        for name in files:
            full = Path(folder) / name
            entry = full.lstat()
            if not stat.S_ISREG(entry.st_mode):
                continue
            lines.append((full.relative_to(root).as_posix(), file_sha256(full)))
            total += entry.st_size
    digest = hashlib.sha256()
    for rel, sha in sorted(lines):
        digest.update(f"{rel}\t{sha}\n".encode())
    return "sha256:" + digest.hexdigest(), total


# --- verify.py -------------------------------------------------------------------------------


def _verdict(ok: bool) -> str:
    return f"{'OK' if ok else 'MISMATCH':<9}"


def verify(here: Path, binary: Path | None = None) -> int:
    """Check the rebuild against ``here/manifest.json``, one line per ingredient; the
    number of problems found."""
    manifest: dict[str, Any] = json.loads((here / "manifest.json").read_text(encoding="utf-8"))
    workdir = Path(os.environ.get("ASSAY_REPRODUCE_WORKDIR") or here / "src" / (manifest["code"].get("cwd") or "."))
    failures = 0
    recorded = manifest["binary"]
    binary = binary or workdir / recorded["path"]
    if not binary.is_file():
        print(f"MISSING   binary {binary}: the rebuild did not produce it")
        failures += 1
    else:
        got = file_sha256(binary)
        ok = got == recorded["sha256"]
        failures += not ok
        print(
            f"{_verdict(ok)} binary {recorded['path']} sha256 {got}"
            + ("" if ok else f" (recorded {recorded['sha256']})")
        )
    for item in manifest.get("datasets", []):
        name = item.get("name")
        if not item.get("digest"):
            print(f"UNVERIFIED dataset {name}: no digest was recorded")
            continue
        if not item.get("path"):
            print(f"UNVERIFIED dataset {name}: no local path was recorded (uri {item.get('uri')})")
            continue
        where = Path(item["path"]) if os.path.isabs(item["path"]) else workdir / item["path"]
        if not where.exists():
            print(f"MISSING   dataset {name} at {where}")
            failures += 1
            continue
        try:
            # The recorded path may be a symbolic link in the rebuild: check what it points to.
            got = path_digest(where.resolve())[0]
        except ValueError as exc:
            print(f"{_verdict(False)} dataset {name}: {exc}")
            failures += 1
            continue
        ok = got == item["digest"]
        failures += not ok
        print(f"{_verdict(ok)} dataset {name} {got}" + ("" if ok else f" (recorded {item['digest']})"))
    print("verify: passed" if not failures else f"verify: FAILED ({failures} problem(s))")
    return failures


def main(argv: list[str]) -> int:
    here = Path(__file__).resolve().parent
    return 1 if verify(here, Path(argv[0]) if argv else None) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
