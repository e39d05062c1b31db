"""The SDK is what training jobs import: it must not pull in Django (pytest-django has
already imported it into this process, so the check runs in a fresh interpreter)."""

from __future__ import annotations

import subprocess
import sys


def test_importing_assay_does_not_import_django():
    code = (
        "import sys, assay, assay.cli, assay.api; print(sorted(m for m in sys.modules if m.split('.')[0] == 'django'))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_importing_assay_is_light():
    code = "import sys, assay; print(','.join(m for m in ('numpy', 'psutil', 'pickle') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "numpy" not in done.stdout
