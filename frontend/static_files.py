"""Collect the static files again only when they changed.

Every profile serves static files from ``STATIC_ROOT`` with hashed names and gzip/brotli
copies (``STORAGES`` in config/settings.py), so something must run ``collectstatic`` before a
page can be rendered: `make run` (``manage.py collectstatic_if_changed``), the test suite
(tests/conftest.py), the production stack on this machine (deploy/stack.py) and the image
(deploy/Dockerfile). Compressing everything takes ~20 s on this machine, so it happens only
when the inputs (every file the finders list, by name, size and modification time) differ
from the last collection's, and one process at a time (a lock beside ``STATIC_ROOT``: the
test suite's two workers share one collection).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles import finders
from django.core.management import call_command
from whitenoise.storage import CompressedManifestStaticFilesStorage


class StaticStorage(CompressedManifestStaticFilesStorage):  # type: ignore[misc]  # whitenoise ships no type hints
    """WhiteNoise's hashed and compressed storage, which also rewrites the ES module imports
    between bundles (``from"./chunk-….js"``: the chart pages share chunks split by esbuild)
    to the hashed names: only hashed copies are kept, so an unrewritten import is a 404."""

    support_js_module_import_aggregation = True


def inputs_fingerprint() -> str:
    """A digest of what collectstatic would read: each source file's name, size and mtime."""
    entries: list[str] = []
    for finder in finders.get_finders():
        for path, storage in finder.list([]):
            stat = os.stat(storage.path(path))
            entries.append(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}")
    entries.sort()
    # The storage's own rules change the output too (e.g. rewriting module imports).
    entries.append(settings.STORAGES["staticfiles"]["BACKEND"])
    return hashlib.sha256("\n".join(entries).encode()).hexdigest()


def _beside(root: Path, suffix: str) -> Path:
    # Beside STATIC_ROOT, not in it: collectstatic --clear empties it, and WhiteNoise serves
    # whatever it holds.
    return root.with_name(root.name + suffix)


def collect_if_changed(*, verbosity: int = 0) -> bool:
    """Run ``collectstatic --clear`` unless STATIC_ROOT already holds this exact input;
    True when it ran."""
    root = Path(settings.STATIC_ROOT)
    root.parent.mkdir(parents=True, exist_ok=True)
    stamp = _beside(root, ".inputs")
    with _beside(root, ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        fingerprint = inputs_fingerprint()
        manifest = root / "staticfiles.json"
        if manifest.exists() and stamp.exists() and stamp.read_text() == fingerprint:
            return False
        stamp.unlink(missing_ok=True)
        call_command("collectstatic", interactive=False, clear=True, verbosity=verbosity)
        stamp.write_text(fingerprint)
        return True
