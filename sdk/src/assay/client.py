"""A thin HTTP client: one method per REST endpoint, JSON in and out, fixed error types.

Retries are not done here (except for connection refusals before a request was sent);
the transport decides what is safe to retry. Reads for users live in ``assay.Api``.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import httpx

from assay import env
from assay._version import __version__
from assay.errors import ApiError, AssayError, ConfigurationError, ServerUnreachableError, error_from_response

DEFAULT_TIMEOUT = 30.0
USER_AGENT = f"assay-sdk/{__version__}"


def normalize_url(url: str) -> str:
    """``http://host:8000/``, ``http://host:8000/api/v1`` → ``http://host:8000``."""
    url = url.strip().rstrip("/")
    for suffix in ("/api/v1", "/api"):
        if url.endswith(suffix):
            url = url[: -len(suffix)]
    if not url.startswith(("http://", "https://")):
        raise AssayError(f"The Assay URL {url!r} must start with http:// or https:// (check ASSAY_URL).")
    return url


class Client:
    """Explicit client over the REST API (compare ``MlflowClient``)."""

    def __init__(self, url: str, token: str | None, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.url = normalize_url(url)
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(
            base_url=self.url + "/api/v1",
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            follow_redirects=False,
        )

    @classmethod
    def from_env(cls, url: str | None = None, token: str | None = None, *, timeout: float = DEFAULT_TIMEOUT) -> Client:
        """A client for ``url`` and ``token``, by default ASSAY_URL and ASSAY_TOKEN, then what
        `assay login` stored."""
        server = env.resolve_url(url)
        if not server:
            raise ConfigurationError("No Assay server: set ASSAY_URL or run `assay login`.")
        return cls(server, env.resolve_token(token), timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- plumbing -------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        content: bytes | None = None,
        params: dict[str, Any] | None = None,
    ) -> Any:
        """Send one request; return the parsed JSON answer or raise an ``AssayError``."""
        if body is not None:
            content = json.dumps(body, separators=(",", ":"), allow_nan=False).encode()
        headers = {"Content-Type": "application/json"} if content is not None else None
        try:
            answer = self._http.request(method, path, content=content, params=params, headers=headers)
        except httpx.TimeoutException:
            raise ServerUnreachableError(
                f"The Assay server at {self.url} did not answer in time (check ASSAY_URL and the network)."
            ) from None
        except httpx.TransportError as exc:
            reason = _clean_reason(exc)
            raise ServerUnreachableError(
                f"Cannot reach the Assay server at {self.url}: {reason} (check ASSAY_URL)."
            ) from None
        if 300 <= answer.status_code < 400:
            raise ApiError(
                f"The server at {self.url} redirected to {answer.headers.get('location', '?')!r}; "
                "set ASSAY_URL to the server's final address (https?).",
                status=answer.status_code,
                code="redirect",
            )
        if answer.status_code >= 400:
            error = error_from_response(answer.status_code, answer.content)
            if error.code == "error" and "json" not in answer.headers.get("content-type", ""):
                error.args = (f"{error.message} from {self.url}; is ASSAY_URL an Assay server?",)
            raise error
        if not answer.content:
            return None
        try:
            return json.loads(answer.content)
        except ValueError:
            raise ApiError(
                f"The server at {self.url} did not answer with JSON (HTTP {answer.status_code}, "
                f"{answer.headers.get('content-type', 'no content type')}); is ASSAY_URL an Assay server?",
                status=answer.status_code,
                code="not_json",
            ) from None

    # --- endpoints ------------------------------------------------------------------------

    def me(self) -> dict[str, Any]:
        return _obj(self.request("GET", "/me/"))

    def create_run(self, body: dict[str, Any]) -> dict[str, Any]:
        return _obj(self.request("POST", "/runs/", body=body))

    def get_run(self, run_id: str) -> dict[str, Any]:
        return _obj(self.request("GET", f"/runs/{_seg(run_id)}/"))

    def update_run(self, run_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return _obj(self.request("PATCH", f"/runs/{_seg(run_id)}/", body=body))

    def log_batch(self, run_id: str, body: bytes) -> dict[str, Any]:
        """POST an already-encoded batch (the transport encodes once and retries the same bytes)."""
        return _obj(self.request("POST", f"/runs/{_seg(run_id)}/log/", content=body))

    def list_runs(self, project: str, **query: Any) -> dict[str, Any]:
        params = {"project": project, **{k: v for k, v in query.items() if v is not None}}
        return _obj(self.request("GET", "/runs/", params=params))

    def metric_summaries(self, run_id: str) -> list[dict[str, Any]]:
        answer = self.request("GET", f"/runs/{_seg(run_id)}/metrics/")
        return [item for item in answer if isinstance(item, dict)] if isinstance(answer, list) else []

    def metric_history(self, run_id: str, key: str, **query: Any) -> dict[str, Any]:
        params = {k: v for k, v in query.items() if v is not None}
        return _obj(self.request("GET", f"/runs/{_seg(run_id)}/metrics/{quote(key, safe='/')}/", params=params))

    def add_figure(self, run_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return _obj(self.request("POST", f"/runs/{_seg(run_id)}/figures/", body=body))

    def list_figures(self, run_id: str) -> list[dict[str, Any]]:
        answer = self.request("GET", f"/runs/{_seg(run_id)}/figures/")
        return [item for item in answer if isinstance(item, dict)] if isinstance(answer, list) else []

    # --- artifacts (see assay.artifacts) ------------------------------------------------------

    def declare_artifacts(self, run_id: str, files: list[dict[str, Any]], kind: str = "file") -> list[dict[str, Any]]:
        answer = _obj(self.request("POST", f"/runs/{_seg(run_id)}/artifacts/", body={"kind": kind, "files": files}))
        items = answer.get("artifacts")
        return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []

    def complete_artifact(self, run_id: str, artifact_id: str) -> dict[str, Any]:
        return _obj(self.request("POST", f"/runs/{_seg(run_id)}/artifacts/{_seg(artifact_id)}/complete/"))

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[dict[str, Any]]:
        params = {"path": path} if path else None
        answer = self.request("GET", f"/runs/{_seg(run_id)}/artifacts/", params=params)
        return [item for item in answer if isinstance(item, dict)] if isinstance(answer, list) else []

    def artifact_download(self, run_id: str, artifact_id: str) -> dict[str, Any]:
        return _obj(self.request("GET", f"/runs/{_seg(run_id)}/artifacts/{_seg(artifact_id)}/download/"))

    # --- model registry (see assay.registry); project is "team/project" -------------------------

    def create_model(self, project: str, name: str) -> dict[str, Any]:
        return _obj(self.request("POST", _models(project), body={"name": name}))

    def create_model_version(self, project: str, model: str, body: dict[str, Any]) -> dict[str, Any]:
        return _obj(self.request("POST", f"{_models(project)}{_seg(model)}/versions/", body=body))

    def get_model_version(self, project: str, model: str, ref: str) -> dict[str, Any]:
        return _obj(self.request("GET", f"{_models(project)}{_seg(model)}/versions/{_seg(ref)}/"))

    def set_model_alias(self, project: str, model: str, alias: str, *, version: int, reason: str) -> dict[str, Any]:
        body = {"version": version, "reason": reason}
        return _obj(self.request("PUT", f"{_models(project)}{_seg(model)}/aliases/{_seg(alias)}/", body=body))

    def diff_model_versions(self, project: str, model: str, a: str, b: str) -> dict[str, Any]:
        return _obj(self.request("GET", f"{_models(project)}{_seg(model)}/diff/", params={"a": a, "b": b}))

    def reproduce_manifest(self, project: str, model: str, ref: str) -> dict[str, Any]:
        return _obj(self.request("GET", f"{_models(project)}{_seg(model)}/versions/{_seg(ref)}/reproduce/"))

    def model_version_download(self, project: str, model: str, ref: str) -> dict[str, Any]:
        """A presigned URL of the version's binary (fetch it with ``assay.artifacts.download_checked``)."""
        return _obj(self.request("GET", f"{_models(project)}{_seg(model)}/versions/{_seg(ref)}/download/"))

    # --- review requests (see assay.reviews) -----------------------------------------------------

    def open_review_request(self, project: str, body: dict[str, Any]) -> dict[str, Any]:
        return _obj(self.request("POST", f"{_project(project)}review-requests/", body=body))

    def list_review_requests(self, project: str, *, state: str, limit: int) -> dict[str, Any]:
        params = {"state": state, "limit": limit}
        return _obj(self.request("GET", f"{_project(project)}review-requests/", params=params))

    def get_review_request(self, project: str, number: int) -> dict[str, Any]:
        return _obj(self.request("GET", f"{_project(project)}review-requests/{int(number)}/"))

    def submit_review(self, project: str, number: int, body: dict[str, Any]) -> dict[str, Any]:
        return _obj(self.request("POST", f"{_project(project)}review-requests/{int(number)}/reviews/", body=body))

    def add_review_comment(self, project: str, number: int, body: dict[str, Any]) -> dict[str, Any]:
        return _obj(self.request("POST", f"{_project(project)}review-requests/{int(number)}/comments/", body=body))

    def merge_review_request(self, project: str, number: int, body: dict[str, Any]) -> dict[str, Any]:
        return _obj(self.request("POST", f"{_project(project)}review-requests/{int(number)}/merge/", body=body))

    def list_webhooks(self, project: str) -> list[dict[str, Any]]:
        answer = self.request("GET", f"{_project(project)}webhooks/")
        if not isinstance(answer, list) or not all(isinstance(item, dict) for item in answer):
            raise AssayError("The server answered with an unexpected JSON shape.")
        return answer

    def test_webhook(self, project: str, webhook_id: str) -> dict[str, Any]:
        return _obj(self.request("POST", f"{_project(project)}webhooks/{_seg(webhook_id)}/test/"))

    def tried(self, project: str, config: dict[str, Any], *, exclude_run: str | None = None) -> dict[str, Any]:
        """Runs of ``project`` with this configuration, else the nearest (see assay.tried)."""
        body: dict[str, Any] = {"config": config}
        if exclude_run:
            body["exclude_run"] = exclude_run
        return _obj(self.request("POST", f"{_project(project)}tried/", body=body))

    def health(self) -> bool:
        try:
            return self._http.get(self.url + "/healthz", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False


def _seg(value: str) -> str:
    return quote(str(value), safe="")


def _project(project: str) -> str:
    team, name = project.split("/")
    return f"/projects/{_seg(team)}/{_seg(name)}/"


def _models(project: str) -> str:
    return f"{_project(project)}models/"


def _obj(answer: Any) -> dict[str, Any]:
    if not isinstance(answer, dict):
        raise ApiError("The server answered with an unexpected JSON shape.", code="bad_answer")
    return answer


def _clean_reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    if "Connection refused" in text:
        return "connection refused (is the server running on that port?)"
    if "Name or service not known" in text or "nodename nor servname" in text or "getaddrinfo" in text:
        return "unknown host name"
    return text.splitlines()[0][:200]
