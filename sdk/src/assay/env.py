"""Every environment variable the SDK reads, and the files it keeps.

One place for the names so that the README, the CLI and the code agree.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

URL = "ASSAY_URL"  # the server, e.g. http://127.0.0.1:8000
TOKEN = "ASSAY_TOKEN"  # noqa: S105 - an API token (manage.py create_token, or the dashboard)
PROJECT = "ASSAY_PROJECT"  # default "team/project" for assay.init()
EXPERIMENT = "ASSAY_EXPERIMENT"  # default experiment name
MODE = "ASSAY_MODE"  # online (default), offline or disabled
DIR = "ASSAY_DIR"  # where the spool lives (default ~/.assay)
CONFIG_DIR = "ASSAY_CONFIG_DIR"  # where `assay login` keeps credentials (default ~/.config/assay)
SILENT = "ASSAY_SILENT"  # 1: print nothing to stderr
RETRY_TIMEOUT = "ASSAY_RETRY_TIMEOUT"  # seconds of retrying a batch before spooling it (default 30)
SYSTEM_METRICS = "ASSAY_SYSTEM_METRICS"  # seconds between system/* samples; 0 turns sampling off (default 10)
CAPTURE_CODE = "ASSAY_CAPTURE_CODE"  # 0: do not record git state and command line
CAPTURE_ENVIRONMENT = "ASSAY_CAPTURE_ENVIRONMENT"  # 0: do not record Python, packages, OS, GPU
IF_TRIED = "ASSAY_IF_TRIED"  # warn (default), skip or ignore: what assay.init does when the config already ran
TRIED_TIMEOUT = "ASSAY_TRIED_TIMEOUT"  # seconds the "tried?" question may take (default 3)

ALL = [
    URL,
    TOKEN,
    PROJECT,
    EXPERIMENT,
    MODE,
    DIR,
    CONFIG_DIR,
    SILENT,
    RETRY_TIMEOUT,
    SYSTEM_METRICS,
    CAPTURE_CODE,
    CAPTURE_ENVIRONMENT,
    IF_TRIED,
    TRIED_TIMEOUT,
]

MODES = ("online", "offline", "disabled")
_FALSE = {"0", "false", "no", "off", ""}


def get(name: str) -> str | None:
    value = os.environ.get(name)
    return value if value else None


def flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() not in _FALSE


def number(name: str, default: float) -> float:
    value = os.environ.get(name)
    if not value:
        return default
    try:
        return float(value)
    except ValueError:
        return default


def assay_dir() -> Path:
    explicit = get(DIR)
    return Path(explicit).expanduser() if explicit else Path.home() / ".assay"


def spool_root() -> Path:
    return assay_dir() / "spool"


def config_dir() -> Path:
    explicit = get(CONFIG_DIR)
    if explicit:
        return Path(explicit).expanduser()
    xdg = get("XDG_CONFIG_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".config") / "assay"


def credentials_path() -> Path:
    return config_dir() / "credentials.json"


def load_credentials() -> dict[str, str]:
    """What `assay login` stored: {"url": ..., "token": ...}; empty when nothing is stored."""
    try:
        raw: Any = json.loads(credentials_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(raw, dict):
        return {}
    return {k: v for k, v in raw.items() if isinstance(k, str) and isinstance(v, str)}


def save_credentials(url: str, token: str) -> Path:
    """Write the credentials file with mode 0600 (created so, never widened, then replaced)."""
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump({"url": url, "token": token}, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def resolve_url(explicit: str | None = None) -> str | None:
    return explicit or get(URL) or load_credentials().get("url")


def resolve_token(explicit: str | None = None) -> str | None:
    return explicit or get(TOKEN) or load_credentials().get("token")
