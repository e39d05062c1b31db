"""The model registry from the SDK: dataset fingerprints, registering versions, diff,
reproduce, pull and ``model_path``.

A model reference is ``team/project/model@ref`` or, inside ``ASSAY_PROJECT``, ``model@ref``;
``ref`` is ``vN``, ``latest`` (the default), an alias (``production``) or a content-hash
prefix (at least 7 hex characters).

Dataset digests are computed locally (nothing is uploaded) by ``assay.digests``, which
says how; every request goes through ``assay.client.Client``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

from assay import digests, env
from assay.artifacts import download_checked, store_client
from assay.client import Client
from assay.digests import file_sha256, path_digest
from assay.errors import AssayError, ConfigurationError, NotFoundError, UsageError

REF_PATTERN = re.compile(
    r"^(?:(?P<team>[a-z0-9][a-z0-9_-]{0,63})/(?P<project>[a-z0-9][a-z0-9_-]{0,63})/)?(?P<model>[a-z0-9][a-z0-9_-]{0,63})(?:@(?P<ref>[A-Za-z0-9_-]{1,64}))?$"
)
PYTHON_NAMES = re.compile(r"(^|/)python[0-9.]*$")


# --- dataset fingerprints ----------------------------------------------------------------------


def dataset_fingerprint(
    name: str,
    path: Union[str, Path, None] = None,
    uri: Optional[str] = None,
    digest: Optional[str] = None,
    rows: Optional[int] = None,
) -> dict[str, Any]:
    """``{name, path, uri, digest, size, rows}``: with ``path`` the digest and size are
    computed here (files and directories); otherwise ``digest`` is taken as given."""
    if not isinstance(name, str) or not name or len(name) > 128:
        raise UsageError("A dataset needs a name of 1-128 characters.")
    if rows is not None and (not isinstance(rows, int) or isinstance(rows, bool) or rows < 0):
        raise UsageError("rows must be an integer ≥ 0.")
    size: Optional[int] = None
    if path is not None:
        try:
            computed, size = path_digest(path)
        except ValueError as exc:  # neither a file nor a directory
            raise UsageError(str(exc)) from None
        if digest is not None and digest.lower().removeprefix("sha256:") != computed.removeprefix("sha256:"):
            raise UsageError(f"The digest given for {name!r} does not match the file(s) at {path}.")
        digest = computed
    return {
        "name": name,
        "path": str(path) if path is not None else None,
        "uri": uri,
        "digest": digest,
        "size": size,
        "rows": rows,
    }


# --- references --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelRef:
    team: str
    project: str
    model: str
    ref: str

    @property
    def team_project(self) -> str:
        return f"{self.team}/{self.project}"

    def __str__(self) -> str:
        return f"{self.team}/{self.project}/{self.model}@{self.ref}"


def parse_ref(text: str, project: Optional[str] = None) -> ModelRef:
    """``team/project/model@ref`` or ``model@ref`` (with ``project`` or ``ASSAY_PROJECT``)."""
    match = REF_PATTERN.match(text.strip().lower()) if isinstance(text, str) else None
    if not match:
        raise UsageError(
            f"{text!r} is not a model reference: team/project/model@ref or model@ref (ref: vN, latest, an alias or a hash)."
        )
    team, proj = match.group("team"), match.group("project")
    if team is None:
        default = (project or env.get(env.PROJECT) or "").strip().lower()
        if default.count("/") != 1:
            raise ConfigurationError(f"{text!r} names no project: write team/project/{text} or set ASSAY_PROJECT.")
        team, proj = default.split("/")
    return ModelRef(team, proj, match.group("model"), match.group("ref") or "latest")


# --- results -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelVersion:
    """A registered version as the server reports it."""

    model: str
    project: str
    number: int
    content_hash: str
    url: str
    aliases: list[str] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelVersion:
        return cls(
            model=str(data.get("model", "")),
            project=str(data.get("project", "")),
            number=int(data.get("number", 0)),
            content_hash=str(data.get("content_hash", "")),
            url=str(data.get("url", "")),
            aliases=[str(a) for a in data.get("aliases") or []],
            raw=data,
        )

    @property
    def ref(self) -> str:
        return f"{self.project}/{self.model}@v{self.number}"


def _obj(answer: Any) -> dict[str, Any]:
    if not isinstance(answer, dict):
        raise AssayError("The server answered with an unexpected JSON shape.")
    return answer


# --- registering -------------------------------------------------------------------------------


def register(
    client: Client,
    *,
    project: str,
    name: str,
    run_id: str,
    artifact: str,
    datasets: Optional[list[Any]] = None,
    parents: Optional[list[Any]] = None,
    aliases: Optional[list[str]] = None,
    description: Optional[str] = None,
    tags: Optional[dict[str, str]] = None,
    create: bool = True,
) -> ModelVersion:
    """POST a version; with ``create``, make the model first when it does not exist."""
    body: dict[str, Any] = {"run": run_id, "artifact": artifact}
    if datasets is not None:
        body["datasets"] = [d if isinstance(d, (str, dict)) else str(d) for d in datasets]
    if parents is not None:
        body["parents"] = list(parents)
    if aliases is not None:
        body["aliases"] = list(aliases)
    if description is not None:
        body["description"] = description
    if tags is not None:
        body["tags"] = dict(tags)
    try:
        return ModelVersion.from_json(client.create_model_version(project, name.lower(), body))
    except NotFoundError as exc:
        if not create or exc.field is not None:
            raise
    client.create_model(project, name)
    return ModelVersion.from_json(client.create_model_version(project, name.lower(), body))


def set_alias(
    ref: str, alias: str, *, reason: str = "", url: Optional[str] = None, token: Optional[str] = None
) -> ModelVersion:
    """Point ``alias`` at the version ``ref`` names. A protected alias (``production`` by
    default) raises ``ConflictError`` (code ``protected_alias``): it moves only by merging a
    review request."""
    target = parse_ref(ref)
    with Client.from_env(url, token) as client:
        version = client.get_model_version(target.team_project, target.model, target.ref)
        answer = client.set_model_alias(
            target.team_project, target.model, alias, version=int(version["number"]), reason=reason
        )
    return ModelVersion.from_json(_obj(answer.get("version")))


def get_version(ref: str, *, url: Optional[str] = None, token: Optional[str] = None) -> ModelVersion:
    target = parse_ref(ref)
    with Client.from_env(url, token) as client:
        return ModelVersion.from_json(client.get_model_version(target.team_project, target.model, target.ref))


def diff(ref_a: str, ref_b: str, *, url: Optional[str] = None, token: Optional[str] = None) -> dict[str, Any]:
    """The server's ingredient-by-ingredient diff of two versions of one model."""
    a, b = parse_ref(ref_a), parse_ref(ref_b)
    if (a.team, a.project, a.model) != (b.team, b.project, b.model):
        raise UsageError("Both references must name the same model (diff compares versions of one model).")
    with Client.from_env(url, token) as client:
        return client.diff_model_versions(a.team_project, a.model, a.ref, b.ref)


def format_diff(result: dict[str, Any]) -> str:
    """A diff as readable lines (what `assay models diff` prints)."""
    a, b = result.get("a", {}), result.get("b", {})
    out = [
        f"v{a.get('number')} ({str(a.get('content_hash'))[:12]}) → v{b.get('number')} ({str(b.get('content_hash'))[:12]})"
    ]
    params = result.get("params", {})
    for key, value in params.get("added", {}).items():
        out.append(f"  param + {key} = {value}")
    for key, value in params.get("removed", {}).items():
        out.append(f"  param - {key} = {value}")
    for key, change in params.get("changed", {}).items():
        out.append(f"  param ~ {key}: {change['from']} → {change['to']}")
    for row in result.get("metrics", []):
        if row.get("status") == "same":
            continue
        delta = row.get("delta")
        shown = f" (Δ {delta:+.6g})" if isinstance(delta, (int, float)) else ""
        out.append(f"  metric {row['key']}: {row.get('a')} → {row.get('b')}{shown}")
    packages = result.get("environment", {}).get("packages", {})
    for kind, sign in (("added", "+"), ("removed", "-")):
        for name, version in packages.get(kind, {}).items():
            out.append(f"  package {sign} {name} {version}")
    for kind in ("upgraded", "downgraded", "changed"):
        for name, change in packages.get(kind, {}).items():
            out.append(f"  package {kind} {name}: {change['from']} → {change['to']}")
    for key, change in result.get("code", {}).items():
        if change:
            out.append(f"  code {key}: {change['from']} → {change['to']}")
    datasets = result.get("datasets", {})
    for item in datasets.get("added", []):
        out.append(f"  dataset + {item.get('name')} {item.get('digest') or ''}".rstrip())
    for item in datasets.get("removed", []):
        out.append(f"  dataset - {item.get('name')}")
    for item in datasets.get("changed", []):
        fields = ", ".join(f"{k}: {v['from']} → {v['to']}" for k, v in item.get("fields", {}).items())
        out.append(f"  dataset ~ {item.get('name')}: {fields}")
    binary = result.get("binary", {})
    if binary.get("changed"):
        out.append(f"  binary: {str(binary.get('from'))[:12]} → {str(binary.get('to'))[:12]}")
    if len(out) == 1:
        out.append("  identical ingredients")
    return "\n".join(out)


# --- pull and model_path -------------------------------------------------------------------------


def _download(client: Client, target: ModelRef, destination: Path) -> tuple[dict[str, Any], Path]:
    manifest = client.reproduce_manifest(target.team_project, target.model, target.ref)
    link = client.model_version_download(target.team_project, target.model, f"v{manifest.get('version')}")
    expected = str(manifest["binary"]["sha256"])
    name = Path(str(manifest["binary"]["path"])).name or "model.bin"
    destination.mkdir(parents=True, exist_ok=True)
    binary = destination / name
    if not (binary.exists() and file_sha256(binary) == expected):
        with store_client() as store:
            download_checked(store, str(link["url"]), binary, expected, f"the binary of {target}")
    (destination / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")
    return manifest, binary


def pull(ref: str, out_dir: Union[str, Path], *, url: Optional[str] = None, token: Optional[str] = None) -> Path:
    """Download the version's binary (checked against its sha256) and ``manifest.json``
    into ``out_dir``; returns the binary's path."""
    target = parse_ref(ref)
    with Client.from_env(url, token) as client:
        return _download(client, target, Path(out_dir))[1]


def model_path(ref: str, *, url: Optional[str] = None, token: Optional[str] = None) -> Path:
    """The local path of a version's binary, downloaded once into
    ``$ASSAY_DIR/models/<team>/<project>/<model>/<content hash>/`` (an alias is resolved on
    every call; the bytes are fetched only when that version is not cached)."""
    target = parse_ref(ref)
    with Client.from_env(url, token) as client:
        version = client.get_model_version(target.team_project, target.model, target.ref)
        pinned = ModelRef(target.team, target.project, target.model, f"v{version['number']}")
        where = env.assay_dir() / "models" / target.team / target.project / target.model / str(version["content_hash"])
        return _download(client, pinned, where)[1]


# --- reproduce -----------------------------------------------------------------------------------


def verify_script() -> str:
    """The ``verify.py`` written beside a rebuild: ``assay.digests`` itself, which runs on the
    standard library alone (see its docstring)."""
    return Path(digests.__file__).read_text(encoding="utf-8")


def _command_line(command: Any) -> Optional[str]:
    """The recorded argv as a shell line; a Python interpreter becomes ``"$PYTHON"``."""
    if isinstance(command, str):
        return command
    if not isinstance(command, list) or not command:
        return None
    parts = [str(p) for p in command]
    if PYTHON_NAMES.search(parts[0]):
        return '"$PYTHON" ' + " ".join(shlex.quote(p) for p in parts[1:])
    return " ".join(shlex.quote(p) for p in parts)


def reproduce_script(manifest: dict[str, Any], *, repo: Optional[str] = None) -> str:
    code = manifest.get("code") or {}
    remote = repo or code.get("remote") or ""
    lines = [
        "#!/bin/sh",
        f"# Rebuild {manifest.get('model')} v{manifest.get('version')} (content hash {manifest.get('content_hash')}).",
        "# Generated by `assay reproduce`. PYTHON picks the interpreter; ASSAY_SKIP_INSTALL=1 skips pip;",
        "# the training run is not logged again unless ASSAY_MODE says so.",
        "set -eu",
        'HERE="$(cd "$(dirname "$0")" && pwd)"',
        'PYTHON="${PYTHON:-python3}"',
        f'REPO="${{ASSAY_REPRODUCE_REPO:-{remote}}}"',
        'SRC="$HERE/src"',
        'export ASSAY_MODE="${ASSAY_MODE:-disabled}"',
        'export ASSAY_REPRODUCE_CONFIG="$HERE/config.json"',
    ]
    for problem in manifest.get("problems", []):
        lines.append(f"# CANNOT BE REPRODUCED: {problem}")
    if not code.get("commit"):
        lines += ['echo "assay: no git commit was recorded; nothing to check out" >&2', "exit 2"]
        return "\n".join(lines) + "\n"
    lines += [
        'if [ -z "$REPO" ]; then echo "assay: no git remote recorded: set ASSAY_REPRODUCE_REPO" >&2; exit 2; fi',
        'if [ ! -d "$SRC/.git" ]; then git clone --quiet "$REPO" "$SRC"; fi',
        'cd "$SRC"',
        f"git checkout --quiet --force --detach {shlex.quote(str(code['commit']))}",
    ]
    if code.get("diff"):
        lines.append('git apply --whitespace=nowarn "$HERE/code.diff"')
    if (manifest.get("environment") or {}).get("packages"):
        lines.append(
            'if [ "${ASSAY_SKIP_INSTALL:-0}" != "1" ]; then "$PYTHON" -m pip install --quiet -r "$HERE/requirements.txt"; fi'
        )
    cwd = code.get("cwd") or "."
    if os.path.isabs(str(cwd)):
        cwd = "."
    lines.append(f'cd "$SRC"/{shlex.quote(str(cwd))}')
    command = _command_line(code.get("command"))
    if command is None:
        lines += ['echo "assay: no command line was recorded" >&2', "exit 2"]
        return "\n".join(lines) + "\n"
    lines += [command, 'export ASSAY_REPRODUCE_WORKDIR="$(pwd)"', '"$PYTHON" "$HERE/verify.py"']
    return "\n".join(lines) + "\n"


def reproduce(
    ref: str,
    out_dir: Union[str, Path],
    *,
    repo: Optional[str] = None,
    url: Optional[str] = None,
    token: Optional[str] = None,
) -> dict[str, Any]:
    """Write into ``out_dir``: ``reproduce.sh`` (clone, checkout, apply the recorded diff,
    install the recorded packages, run the recorded command, then verify), ``verify.py``,
    ``manifest.json``, ``config.json``, ``code.diff``, ``requirements.txt`` and
    ``CANNOT_REPRODUCE.txt`` when something cannot be reproduced. Returns the manifest."""
    target = parse_ref(ref)
    with Client.from_env(url, token) as client:
        manifest = client.reproduce_manifest(target.team_project, target.model, target.ref)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")
    (out / "config.json").write_text(
        json.dumps(manifest.get("config") or {}, indent=2, sort_keys=True), encoding="utf-8"
    )
    code = manifest.get("code") or {}
    if code.get("diff"):
        (out / "code.diff").write_text(str(code["diff"]), encoding="utf-8")
    packages = (manifest.get("environment") or {}).get("packages") or {}
    (out / "requirements.txt").write_text(
        "".join(
            f"{name}=={version}\n"
            for name, version in sorted(packages.items())
            if name.lower() not in {"assay-sdk", "assay-server"}
        ),
        encoding="utf-8",
    )
    (out / "verify.py").write_text(verify_script(), encoding="utf-8")
    script = out / "reproduce.sh"
    script.write_text(reproduce_script(manifest, repo=repo), encoding="utf-8")
    script.chmod(0o755)
    notes = list(manifest.get("problems") or []) + list(manifest.get("warnings") or [])
    if notes:
        (out / "CANNOT_REPRODUCE.txt").write_text("\n".join(f"- {n}" for n in notes) + "\n", encoding="utf-8")
    return manifest
