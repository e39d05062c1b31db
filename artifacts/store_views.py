"""The local store's presigned-URL endpoint: what S3 would answer, served by this server in
the embedded profile (``ASSAY_ARTIFACTS`` a folder).

``PUT /-/store/?t=<token>`` writes an upload or a part, ``GET /-/store/?t=<token>``
streams an object. The token (``django.core.signing``, expiring) was issued by the API
after its permission check and names the store key, the exact size and the operation;
like an S3 presigned URL it is the credential, so no session or CSRF applies.
"""

from __future__ import annotations

import logging

from django.core import signing
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from artifacts import storage
from artifacts.models import Blob
from core.api import error_body
from core.http import body_limit_exempt

log = logging.getLogger(__name__)


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse(error_body(code, message), status=status)


@csrf_exempt
@body_limit_exempt  # an upload part is up to ASSAY_MAX_ARTIFACT_BYTES; its token names the exact size
def local_store(request: HttpRequest) -> HttpResponse | FileResponse:
    store = storage.artifact_store()
    if not isinstance(store, storage.LocalStore):
        return _error(404, "not_found", "This server keeps artifacts in S3; use the URLs the API gives.")
    token = request.GET.get("t", "")
    if request.method == "PUT":
        try:
            payload = storage.read_token(token, op="put")
        except signing.SignatureExpired:
            return _error(403, "expired", "This upload URL has expired; declare the file again for a fresh one.")
        except (signing.BadSignature, ValueError):
            return _error(403, "bad_signature", "This upload URL is not valid.")
        key = str(payload["k"])
        if (
            key.startswith("staging/")
            and not Blob.objects.filter(pk=key.removeprefix("staging/"), status=Blob.Status.PENDING).exists()
        ):
            # SECURITY: a URL outlives its upload; once completed, staging takes no more bytes.
            return _error(409, "upload_closed", "This upload is complete or was aborted; declare the file again.")
        try:
            written = store.write_upload(payload, request)
        except OverflowError:
            return _error(413, "too_large", f"The URL was signed for {payload['s']} bytes; more arrived.")
        except EOFError as exc:
            return _error(400, "size_mismatch", str(exc))
        except FileNotFoundError:
            return _error(404, "no_such_upload", "This upload was aborted or completed.")
        response = HttpResponse(status=200)
        response["ETag"] = f'"{written}"'
        return response
    if request.method in ("GET", "HEAD"):
        try:
            payload = storage.read_token(token, op="get")
        except signing.SignatureExpired:
            return _error(403, "expired", "This download URL has expired; ask the API for a fresh one.")
        except (signing.BadSignature, ValueError):
            return _error(403, "bad_signature", "This download URL is not valid.")
        path = store.path(str(payload["k"]))
        if not path.is_file():
            return _error(404, "not_found", "No such object.")
        inline = bool(payload.get("i")) and str(payload.get("t")) in storage.INLINE_TYPES
        media_type = str(payload.get("t") or "application/octet-stream")
        download = FileResponse(
            open(path, "rb"),  # noqa: SIM115 - FileResponse closes it
            content_type=media_type if inline else storage.safe_content_type(media_type),
        )
        # SECURITY: uploaded bytes never render in our origin (HTML/SVG would run as our
        # pages): attachment unless a raster image was asked for inline; nosniff comes
        # from SecurityMiddleware; a sandboxing CSP on top.
        download["Content-Disposition"] = storage.content_disposition(str(payload.get("f", "download")), inline=inline)
        download["Content-Security-Policy"] = "sandbox; default-src 'none'"
        download["Cache-Control"] = "private, max-age=60"
        return download
    return _error(405, "method_not_allowed", "PUT or GET.")
