"""What a run records about itself: code (git, command line), environment (Python,
packages, OS, host, CPUs, GPUs) and system metrics sampled while it runs.

Everything here is best effort and bounded in time and size: a missing ``git`` or
``nvidia-smi`` means a missing field, never an error.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from typing import Any, Callable
from urllib.parse import urlsplit, urlunsplit

from assay._version import __version__

MAX_DIFF_BYTES = 100_000
COMMAND_TIMEOUT = 5.0


def _run(args: list[str], cwd: str | None = None) -> str | None:
    try:
        done = subprocess.run(
            args, cwd=cwd, capture_output=True, timeout=COMMAND_TIMEOUT, check=False, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.decode("utf-8", errors="replace")


def strip_credentials(url: str) -> str:
    """``https://user:token@host/repo.git`` → ``https://host/repo.git``; scp-like URLs keep their user."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.scheme and "@" in parts.netloc:
        host = parts.netloc.rsplit("@", 1)[1]
        return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return url


def _entry_point() -> str | None:
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    return os.path.abspath(path) if isinstance(path, str) else None


def code_info() -> dict[str, Any]:
    entry = _entry_point()
    info: dict[str, Any] = {"command": [sys.executable, *sys.argv], "entry_point": entry, "cwd": os.getcwd()}
    if shutil.which("git") is None:
        return info
    where = os.path.dirname(entry) if entry else os.getcwd()
    root = _run(["git", "rev-parse", "--show-toplevel"], cwd=where)
    if not root:
        return info
    root = root.strip()
    commit = _run(["git", "rev-parse", "HEAD"], cwd=root)
    branch = _run(["git", "rev-parse", "--abbrev-ref", "HEAD"], cwd=root)
    remote = _run(["git", "config", "--get", "remote.origin.url"], cwd=root)
    status = _run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root)
    info["git"] = {
        "root": root,
        "commit": commit.strip() if commit else None,
        "branch": branch.strip() if branch else None,
        "remote": strip_credentials(remote.strip()) if remote else None,
        "dirty": bool(status and status.strip()),
    }
    if status and status.strip():
        diff = _run(["git", "diff", "HEAD", "--no-color", "--no-ext-diff"], cwd=root) or ""
        raw = diff.encode("utf-8", errors="replace")
        info["git"]["diff_truncated"] = len(raw) > MAX_DIFF_BYTES
        info["git"]["diff"] = raw[:MAX_DIFF_BYTES].decode("utf-8", errors="ignore")
    return info


def installed_packages() -> dict[str, str]:
    # Imported on use: importlib.metadata costs several milliseconds that `import assay`
    # should not pay when the environment is not captured.
    from importlib import metadata

    out: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"] if dist.metadata else None
        if name:
            out[str(name)] = str(dist.version)
    return dict(sorted(out.items(), key=lambda item: item[0].lower()))


def gpu_info() -> list[dict[str, Any]]:
    if shutil.which("nvidia-smi") is None:
        return []
    text = _run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader,nounits"])
    gpus = []
    for line in (text or "").splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 3:
            gpus.append({"name": parts[0], "memory_mb": _num(parts[1]), "driver": parts[2]})
    return gpus


def environment_info() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "executable": sys.executable,
        "os": platform.platform(),
        "system": platform.system(),
        "machine": platform.machine(),
        "host": socket.gethostname(),
        "cpu_count": os.cpu_count(),
        "gpus": gpu_info(),
        "packages": installed_packages(),
        "assay_sdk": __version__,
    }


def _num(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def peak_memory_mb() -> float | None:
    """Peak resident memory of this process (``ru_maxrss``), in MiB."""
    try:  # POSIX only, hence imported here
        import resource
    except ImportError:  # pragma: no cover - Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return round(peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024, 1)


def _rss_mb() -> float | None:
    try:  # optional (`pip install assay-sdk[system]`), hence imported here
        import psutil  # type: ignore[import-untyped,unused-ignore]

        return float(psutil.Process().memory_info().rss) / (1024 * 1024)
    except ImportError:
        pass
    try:
        with open("/proc/self/statm") as handle:
            pages = int(handle.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)
    except (OSError, ValueError, IndexError, AttributeError):
        return None


_GPU_LINE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*,\s*(\d+(?:\.\d+)?)\s*$")


def _gpu_sample() -> list[tuple[float, float]]:
    text = _run(["nvidia-smi", "--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits"])
    out = []
    for line in (text or "").splitlines():
        match = _GPU_LINE.match(line)
        if match:
            out.append((float(match.group(1)), float(match.group(2))))
    return out


class SystemMonitor:
    """Samples ``system/*`` metrics every ``interval`` seconds on a daemon thread."""

    def __init__(self, interval: float, emit: Callable[[int, float, dict[str, Any]], None]) -> None:
        self._interval = interval
        self._emit = emit
        self._stop = threading.Event()
        self._has_gpu = shutil.which("nvidia-smi") is not None
        self._thread = threading.Thread(target=self._loop, name="assay-system-metrics", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)

    def _loop(self) -> None:
        sample = 0
        last_cpu = time.process_time()
        last_wall = time.monotonic()
        while not self._stop.wait(self._interval):
            cpu, wall = time.process_time(), time.monotonic()
            values: dict[str, Any] = {
                "system/cpu_percent": 100.0 * (cpu - last_cpu) / max(wall - last_wall, 1e-6),
            }
            last_cpu, last_wall = cpu, wall
            rss = _rss_mb()
            if rss is not None:
                values["system/rss_mb"] = rss
            if self._has_gpu:
                for index, (util, mem) in enumerate(_gpu_sample()):
                    values[f"system/gpu{index}/utilization_percent"] = util
                    values[f"system/gpu{index}/memory_used_mb"] = mem
            self._emit(sample, time.time(), values)
            sample += 1
