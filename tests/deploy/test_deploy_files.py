"""The deploy/ files validated with the tools that run here (no Docker engine, no cluster):
hadolint for the Dockerfile, the Compose specification's JSON schema for the compose file,
Kubernetes' OpenAPI schemas (strict) for the manifests."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    path = BIN / name
    found = str(path) if path.exists() else shutil.which(name)
    assert found, f"{name} is not installed (it comes with requirements-dev.lock)"
    return found


def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run([_tool("hadolint"), str(DEPLOY / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_file_matches_the_compose_specification() -> None:
    result = subprocess.run(
        [_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(DEPLOY / "compose.yaml")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_publishes_only_web_and_object_store() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    published = sorted(name for name, service in compose["services"].items() if service.get("ports"))
    assert published == ["minio", "web"]


def _manifests() -> list[Path]:
    kustomization = yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text())
    return [DEPLOY / "k8s" / name for name in kustomization["resources"]] + [DEPLOY / "k8s" / "secret.example.yaml"]


@pytest.mark.parametrize("manifest", _manifests(), ids=lambda p: p.name)
def test_kubernetes_manifest_is_valid(manifest: Path) -> None:
    result = subprocess.run(
        [_tool("kubernetes-validate"), "--strict", "--quiet", str(manifest)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_web_deployment_probes_health_endpoints() -> None:
    docs = list(yaml.safe_load_all((DEPLOY / "k8s" / "web.yaml").read_text()))
    container = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_entrypoint_refuses_an_unknown_role() -> None:
    result = subprocess.run([str(DEPLOY / "entrypoint.sh"), "nonsense"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "unknown role" in result.stderr
