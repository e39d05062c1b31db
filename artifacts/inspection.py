"""What a worker learns from an artifact's bytes, without executing any of them.

Pure helpers over a local file (no Django): media-type sniffing, model introspection
(safetensors header, ONNX graph signature), pickle scanning, image thumbnails and
CSV/JSON/text previews.

# SECURITY: nothing here unpickles, ``joblib.load``s, ``torch.load``s or runs a model.
# Pickles (plain, joblib plain or compressed, numpy object arrays, inside PyTorch zips) are
# walked opcode by opcode by artifacts/pickle_scan.py, which lists the globals they would
# import; picklescan's lists say which are dangerous (docs/architecture.md, "Scanning
# model files", says why this combination); archives are never extracted to disk (zip
# members are read as streams); images are decoded with Pillow under a pixel cap.
# SECURITY: the scanner holds a whole pickle's opcodes in memory, so what it may read is
# capped before it starts (security.md 2): the archive's member count, each pickle's
# uncompressed size (the central directory's size bounds what zipfile will inflate), the
# total, and the compression ratio of large members (a zip bomb). A file over a cap is not
# scanned and is flagged unsafe: what could not be checked must not look safe.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import lzma
import mimetypes
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from artifacts import pickle_scan

SNIFF_BYTES = 64 * 1024
MAX_SAFETENSORS_HEADER = 100 * 1024 * 1024
MAX_LISTED_TENSORS = 200
MAX_ONNX_BYTES = 2 * 1024**3
MAX_IMAGE_PIXELS = 64_000_000
THUMBNAIL_SIZE = (320, 320)
PREVIEW_ROWS = 20
PREVIEW_COLUMNS = 50
PREVIEW_LINES = 40
PREVIEW_CELL = 200
PREVIEW_LINE = 300

MAX_ZIP_MEMBERS = 100_000
MAX_SCAN_BYTES = 2 * 1024**3  # one pickle, uncompressed
MAX_SCAN_TOTAL_BYTES = 4 * 1024**3  # every pickle of one archive, uncompressed
MAX_RATIO = 200  # uncompressed / compressed, for members above RATIO_FLOOR bytes
RATIO_FLOOR = 1024**2
# What picklescan reads whole inside an archive: these suffixes, or these first bytes.
SCANNED_MEMBER_SUFFIXES = {".pkl", ".pickle", ".joblib", ".dat", ".data", ".npy"}
SCANNED_MEMBER_MAGIC = (b"\x80\x00", b"\x80\x01", b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05", b"\x93NUMPY")

# Formats that hold no pickle: nothing to scan, and the findings say why.
NO_PICKLE = {
    "safetensors": "safetensors holds raw tensors and a JSON header, no pickle",
    "onnx": "ONNX is a protobuf graph, no pickle",
    "hdf5": "HDF5 (Keras .h5) holds arrays and a JSON config, no pickle",
    "keras": "a Keras archive holds JSON config and HDF5 weights, no pickle",
}
PICKLE_SUFFIXES = {".pkl", ".pickle", ".joblib", ".pt", ".pth", ".bin", ".ckpt", ".sav", ".dill"}
TEXT_TYPES = {
    "application/json",
    "application/x-yaml",
    "application/yaml",
    "application/xml",
    "application/toml",
    "image/svg+xml",
}
EXTRA_TYPES = {
    ".safetensors": "application/vnd.safetensors",
    ".onnx": "application/vnd.onnx",
    ".pkl": "application/vnd.python.pickle",
    ".pickle": "application/vnd.python.pickle",
    ".joblib": "application/vnd.python.pickle",
    ".pt": "application/vnd.pytorch",
    ".pth": "application/vnd.pytorch",
    ".keras": "application/vnd.keras",
    ".h5": "application/x-hdf5",
    ".hdf5": "application/x-hdf5",
    ".ckpt": "application/vnd.pytorch",
    ".npy": "application/vnd.numpy",
    ".npz": "application/zip",
    ".parquet": "application/vnd.apache.parquet",
    ".yaml": "application/yaml",
    ".yml": "application/yaml",
    ".md": "text/markdown",
    ".csv": "text/csv",
    ".tsv": "text/tab-separated-values",
    ".jsonl": "application/jsonl",
    ".log": "text/plain",
    ".toml": "application/toml",
}


@dataclass
class Inspection:
    media_type: str
    findings: dict[str, Any] = field(default_factory=dict)
    preview: dict[str, Any] = field(default_factory=dict)
    thumbnail: bytes | None = None  # PNG, stored by the caller as a derived object


def _head(path: Path, size: int = SNIFF_BYTES) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(size)


def _suffix(name: str) -> str:
    dot = name.rfind(".")
    return name[dot:].lower() if dot > 0 else ""


def _pickle_suffix(name: str) -> str | None:
    """The pickle suffix among a file name's suffixes ("model.joblib.gz" -> ".joblib")."""
    base = name.rsplit("/", 1)[-1].lower()
    for part in base.split(".")[1:]:
        if f".{part}" in PICKLE_SUFFIXES:
            return f".{part}"
    return None


def _looks_like_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the end of the sniffed block is still text.
        return exc.start >= len(head) - 3
    return True


def _safetensors_header_length(head: bytes) -> int | None:
    if len(head) < 10:
        return None
    (length,) = struct.unpack("<Q", head[:8])
    if 2 <= length <= MAX_SAFETENSORS_HEADER and head[8:9] == b"{":
        return int(length)
    return None


def sniff(path: Path, name: str) -> tuple[str, str | None]:
    """(media type, format) from the first bytes, then the file name. Formats name what
    introspection applies: image, safetensors, onnx, hdf5, keras, pickle (plain, joblib,
    compressed joblib), pytorch, zip, numpy, csv, json, text, or None."""
    head = _head(path)
    suffix = _suffix(name)
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png", "image"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg", "image"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif", "image"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp", "image"
    if head.startswith(b"%PDF-"):
        return "application/pdf", None
    if head.startswith(b"\x93NUMPY"):
        return "application/vnd.numpy", "numpy"
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        if suffix in {".pt", ".pth", ".ckpt", ".bin"}:
            return "application/vnd.pytorch", "pytorch"
        if suffix == ".keras":
            return "application/vnd.keras", "keras"
        return EXTRA_TYPES.get(suffix, "application/zip"), "zip"
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return "application/x-hdf5", "hdf5"
    pickled_suffix = _pickle_suffix(name)
    if pickled_suffix and pickle_scan.compression_of(head):
        # joblib.dump(..., compress=...) / "model.joblib.gz": a pickle inside a compressed stream
        return EXTRA_TYPES.get(pickled_suffix, "application/vnd.python.pickle"), "pickle"
    if head.startswith(b"\x1f\x8b"):
        return "application/gzip", None
    if _safetensors_header_length(head) is not None and suffix in {".safetensors", ""}:
        return "application/vnd.safetensors", "safetensors"
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return EXTRA_TYPES.get(suffix, "application/vnd.python.pickle"), "pickle"
    if suffix == ".onnx":
        return "application/vnd.onnx", "onnx"
    if suffix in PICKLE_SUFFIXES:
        # Protocol 0/1 pickles have no magic number and protocol 0 is ASCII text; scanning a
        # non-pickle is harmless (it ends "not scanned" with the reason).
        return EXTRA_TYPES.get(suffix, "application/vnd.python.pickle"), "pickle"
    if _looks_like_text(head):
        guessed = EXTRA_TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "text/plain"
        if not (guessed.startswith("text/") or guessed in TEXT_TYPES or guessed == "application/jsonl"):
            guessed = "text/plain"
        if guessed in {"text/csv", "text/tab-separated-values"}:
            return guessed, "csv"
        if guessed in {"application/json"}:
            return guessed, "json"
        return guessed, "text"
    return EXTRA_TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream", None


# --- models ------------------------------------------------------------------------------------


def inspect_safetensors(path: Path) -> dict[str, Any]:
    with open(path, "rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        if length > MAX_SAFETENSORS_HEADER:
            raise ValueError(f"safetensors header of {length} bytes is over the limit")
        header = json.loads(handle.read(length))
    if not isinstance(header, dict):
        raise ValueError("safetensors header is not a JSON object")
    metadata = header.pop("__metadata__", None)
    tensors: list[dict[str, Any]] = []
    parameters = 0
    for name in sorted(header):
        info = header[name]
        if not isinstance(info, dict):
            raise ValueError(f"safetensors entry {name!r} is not an object")
        shape = [int(d) for d in info.get("shape", [])]
        count = 1
        for dim in shape:
            count *= dim
        parameters += count
        if len(tensors) < MAX_LISTED_TENSORS:
            tensors.append({"name": str(name)[:200], "dtype": str(info.get("dtype", "?")), "shape": shape})
    out: dict[str, Any] = {
        "format": "safetensors",
        "tensor_count": len(header),
        "parameters": parameters,
        "tensors": tensors,
    }
    if isinstance(metadata, dict):
        out["metadata"] = {str(k)[:100]: str(v)[:500] for k, v in list(metadata.items())[:50]}
    return out


def _onnx_value_info(value: Any) -> dict[str, Any]:
    import onnx

    tensor = value.type.tensor_type
    dims: list[int | str] = []
    for dim in tensor.shape.dim:
        dims.append(dim.dim_value if dim.HasField("dim_value") else (dim.dim_param or "?"))
    return {
        "name": value.name,
        "dtype": onnx.TensorProto.DataType.Name(tensor.elem_type).lower() if tensor.elem_type else "?",
        "shape": dims,
    }


def inspect_onnx(path: Path) -> dict[str, Any]:
    """Read the protobuf (never run it): IR version, opsets, producer, graph inputs and outputs."""
    import onnx

    if path.stat().st_size > MAX_ONNX_BYTES:
        raise ValueError("ONNX file over 2 GiB (protobuf limit)")
    model = onnx.load(str(path), load_external_data=False)
    initializers = {init.name for init in model.graph.initializer}
    return {
        "format": "onnx",
        "ir_version": int(model.ir_version),
        "opset": {(op.domain or "ai.onnx"): int(op.version) for op in model.opset_import},
        "producer": f"{model.producer_name} {model.producer_version}".strip(),
        "inputs": [_onnx_value_info(v) for v in model.graph.input if v.name not in initializers],
        "outputs": [_onnx_value_info(v) for v in model.graph.output],
        "nodes": len(model.graph.node),
    }


class ScanRefused(Exception):
    """The file is over a scanning cap; the message says which."""


def check_scan_limits(path: Path, fmt: str) -> None:
    """Raise ScanRefused when scanning ``path`` would read more than the caps allow."""
    if fmt == "numpy":
        return  # raw numbers are not read; a pickled object array is capped as it is read
    if fmt not in {"pytorch", "zip"}:
        size = path.stat().st_size
        if size > MAX_SCAN_BYTES:
            raise ScanRefused(f"the pickle is {size} bytes; pickles over {MAX_SCAN_BYTES} bytes are not scanned")
        return
    total = 0
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
        if len(infos) > MAX_ZIP_MEMBERS:
            raise ScanRefused(f"the archive has {len(infos)} members; at most {MAX_ZIP_MEMBERS} are scanned")
        for info in infos:
            if info.is_dir():
                continue
            if _suffix(info.filename) not in SCANNED_MEMBER_SUFFIXES:
                with archive.open(info) as member:  # 8 bytes: what picklescan looks at first
                    if not member.read(8).startswith(SCANNED_MEMBER_MAGIC):
                        continue
            name = info.filename[:200]
            if info.file_size > MAX_SCAN_BYTES:
                raise ScanRefused(f"member {name!r} expands to {info.file_size} bytes (limit {MAX_SCAN_BYTES})")
            if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
                raise ScanRefused(
                    f"member {name!r} expands {info.file_size // max(info.compress_size, 1)}-fold "
                    f"(limit {MAX_RATIO}): a zip bomb"
                )
            total += info.file_size
            if total > MAX_SCAN_TOTAL_BYTES:
                raise ScanRefused(f"the archive's pickles expand to more than {MAX_SCAN_TOTAL_BYTES} bytes")


SCANNER = "assay-pickle"  # pickle_scan's walk; picklescan's lists classify the globals


def _classify(raw_globals: set[tuple[str, str]]) -> tuple[list[str], list[str], list[str]]:
    """(dangerous, suspicious, all) globals as "module.name", by picklescan's maintained
    lists: dangerous (os.system, builtins.eval, ... and any name we could not resolve),
    innocuous (numpy arrays, torch storages) or suspicious (everything else)."""
    from picklescan.scanner import SafetyLevel, _build_scan_result_from_raw_globals

    result = _build_scan_result_from_raw_globals(raw_globals, "artifact")
    dangerous = sorted({f"{g.module}.{g.name}" for g in result.globals if g.safety == SafetyLevel.Dangerous})
    suspicious = sorted({f"{g.module}.{g.name}" for g in result.globals if g.safety == SafetyLevel.Suspicious})
    return dangerous, suspicious, sorted({f"{module}.{name}" for module, name in raw_globals})


def _scan_stream(stream: pickle_scan.CappedReader, walked: pickle_scan.WalkResult) -> None:
    pickle_scan.walk(stream, walked)


def _scan_numpy(stream: pickle_scan.CappedReader, walked: pickle_scan.WalkResult) -> None:
    """A .npy holds raw numbers after its header, or a pickle when its dtype is object."""
    head = stream.read(65_536 + 12)
    offset = pickle_scan.numpy_object_offset(head)
    if offset is not None:
        stream.unread(head[offset:])
        _scan_stream(stream, walked)


def _scan_archive(path: Path, walked: pickle_scan.WalkResult) -> None:
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            with archive.open(info) as member:
                head = member.read(8)
            by_name = _suffix(info.filename) in SCANNED_MEMBER_SUFFIXES
            if not by_name and not head.startswith(SCANNED_MEMBER_MAGIC):
                continue
            with archive.open(info) as member:
                stream = pickle_scan.CappedReader(member, MAX_SCAN_BYTES)
                try:
                    if head.startswith(pickle_scan.NUMPY_MAGIC):
                        _scan_numpy(stream, walked)
                    else:
                        _scan_stream(stream, walked)
                except pickle_scan.Unscannable as exc:
                    raise pickle_scan.Unscannable(f"member {info.filename[:200]!r}: {exc}") from None


def scan_pickles(path: Path, fmt: str) -> dict[str, Any]:
    """List the globals a pickle (plain, joblib plain or compressed, numpy object arrays,
    or the pickles inside a zip such as a PyTorch checkpoint) would import, and flag the
    dangerous ones; nothing is unpickled (artifacts/pickle_scan.py walks the opcodes).

    The result keeps the keys clients know (``unsafe``, ``unsafe_globals``,
    ``suspicious_globals``, ``globals``, ``pickles_scanned``) and adds ``scan``:
    ``{"state": "scanned"}`` or ``{"state": "not_scanned", "reason": ...}``. A file over
    a cap is not scanned and also flagged ``unsafe`` (security: what could not be read
    must not look safe); a file the walk cannot follow (a parse failure, lz4 without its
    package) is not scanned, with ``scan_error`` and the reason in ``not_scanned``, and is
    not called unsafe: the review policy decides whether that blocks a merge."""
    try:
        check_scan_limits(path, fmt)
    except ScanRefused as exc:
        reason = str(exc)
        return {
            "scanner": SCANNER,
            "unsafe": True,
            "unsafe_globals": [],
            "not_scanned": reason,
            "scan": {"state": "not_scanned", "reason": reason, "refused": True},
        }
    walked = pickle_scan.WalkResult()
    compression: str | None = None
    try:
        if fmt in {"pytorch", "zip", "keras"}:
            _scan_archive(path, walked)
        elif fmt == "numpy":
            with open(path, "rb") as handle:
                _scan_numpy(pickle_scan.CappedReader(handle, MAX_SCAN_BYTES), walked)
        else:
            with pickle_scan.open_decompressed(path, MAX_SCAN_BYTES) as (stream, compression):
                _scan_stream(stream, walked)
    except pickle_scan.TooLarge as exc:
        reason = str(exc)
        return {
            "scanner": SCANNER,
            "unsafe": True,
            "unsafe_globals": [],
            "not_scanned": reason,
            "scan": {"state": "not_scanned", "reason": reason, "refused": True},
        }
    except (pickle_scan.Unscannable, OSError, EOFError, zlib.error, lzma.LZMAError) as exc:
        reason = str(exc)[:300] or type(exc).__name__
        # What was read before the walk stopped still counts: a dangerous global found
        # there fails the file whatever follows.
        dangerous, suspicious, imported = _classify(walked.globals)
        return {
            "scanner": SCANNER,
            "unsafe": bool(dangerous),
            "unsafe_globals": dangerous[:100],
            "suspicious_globals": suspicious[:100],
            "globals": imported[:200],
            "pickles_scanned": walked.pickles,
            "scan_error": True,
            "not_scanned": reason,
            "scan": {"state": "not_scanned", "reason": reason},
        }
    dangerous, suspicious, imported = _classify(walked.globals)
    findings: dict[str, Any] = {
        "scanner": SCANNER,
        "unsafe": bool(dangerous),
        "unsafe_globals": dangerous[:100],
        "suspicious_globals": suspicious[:100],
        "globals": imported[:200],
        "pickles_scanned": walked.pickles,
        "scan": {"state": "scanned"},
    }
    if compression:
        findings["compression"] = compression
    if walked.joblib_arrays:
        findings["joblib_arrays"] = walked.joblib_arrays
    if walked.trailing_bytes:
        findings["trailing_data"] = True
    return findings


def inspect_zip(path: Path) -> dict[str, Any]:
    """The member list from the central directory; nothing is extracted."""
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
        return {
            "format": "zip",
            "entries": len(infos),
            "uncompressed_bytes": sum(i.file_size for i in infos),
            "names": [i.filename[:300] for i in infos[:50]],
            "has_pickles": _has_pickles(archive, infos),
        }


def _has_pickles(archive: zipfile.ZipFile, infos: list[zipfile.ZipInfo]) -> bool:
    """Whether any member (not only the 50 listed: a pickle can hide at the end) is one the
    scanner reads: by name, or by its first bytes (for the first MAX_ZIP_MEMBERS members)."""
    if any(_suffix(i.filename) in PICKLE_SUFFIXES | SCANNED_MEMBER_SUFFIXES for i in infos):
        return True
    for info in infos[:MAX_ZIP_MEMBERS]:
        if not info.is_dir():
            with archive.open(info) as member:
                if member.read(8).startswith(SCANNED_MEMBER_MAGIC):
                    return True
    return False


# --- previews ----------------------------------------------------------------------------------


def image_preview(path: Path) -> tuple[dict[str, Any], bytes | None]:
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS  # larger images raise DecompressionBombError
    with Image.open(path) as image:
        width, height = image.size
        fmt = image.format
        image.thumbnail(THUMBNAIL_SIZE)
        frame = image.convert("RGBA") if image.mode not in ("RGB", "RGBA", "L", "LA") else image
        out = io.BytesIO()
        frame.save(out, format="PNG", optimize=True)
    return {"type": "image", "width": width, "height": height, "format": fmt}, out.getvalue()


def _text_head(path: Path, limit: int = SNIFF_BYTES) -> tuple[str, bool]:
    raw = _head(path, limit + 1)
    cut = len(raw) > limit
    return raw[:limit].decode("utf-8", errors="replace"), cut


def table_preview(path: Path, media_type: str) -> dict[str, Any]:
    text, cut = _text_head(path)
    lines = text.splitlines()
    if cut and lines:
        lines = lines[:-1]  # the last line may be cut in the middle
    delimiter = "\t" if media_type == "text/tab-separated-values" else ","
    reader = csv.reader(lines, delimiter=delimiter)
    rows = []
    for row in reader:
        rows.append([cell[:PREVIEW_CELL] for cell in row[:PREVIEW_COLUMNS]])
        if len(rows) > PREVIEW_ROWS:
            break
    if not rows:
        return {"type": "text", "lines": []}
    return {
        "type": "table",
        "columns": rows[0],
        "rows": rows[1 : PREVIEW_ROWS + 1],
        "truncated": len(rows) > PREVIEW_ROWS or cut,
    }


def text_preview(path: Path, *, as_json: bool = False) -> dict[str, Any]:
    text, cut = _text_head(path)
    if as_json and not cut:
        with contextlib.suppress(ValueError):
            text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    lines = text.splitlines()
    return {
        "type": "text",
        "lines": [line[:PREVIEW_LINE] for line in lines[:PREVIEW_LINES]],
        "truncated": cut or len(lines) > PREVIEW_LINES,
    }


# --- everything --------------------------------------------------------------------------------


def inspect_file(path: Path, name: str) -> Inspection:
    """Sniff, introspect, scan and preview one file. A failure of one step is recorded in
    ``findings["errors"]`` and does not stop the others: a broken preview is no reason to
    fail an artifact whose bytes were verified."""
    media_type, fmt = sniff(path, name)
    result = Inspection(media_type=media_type)
    findings = result.findings
    findings["format"] = fmt or "unknown"
    errors: list[str] = []

    def attempt(label: str, step: Any) -> None:
        try:
            step()
        except Exception as exc:  # noqa: BLE001 - a malformed file is data, not a crash
            errors.append(f"{label}: {type(exc).__name__}: {str(exc)[:200]}")

    if fmt == "safetensors":
        attempt("safetensors", lambda: findings.update(inspect_safetensors(path)))
        findings["scan"] = {"state": "not_needed", "reason": NO_PICKLE["safetensors"]}
    elif fmt == "onnx":
        attempt("onnx", lambda: findings.update(inspect_onnx(path)))
        findings["scan"] = {"state": "not_needed", "reason": NO_PICKLE["onnx"]}
    elif fmt == "hdf5":
        findings["scan"] = {"state": "not_needed", "reason": NO_PICKLE["hdf5"]}
    elif fmt in {"pickle", "pytorch"}:
        if _pickle_suffix(name) == ".joblib":
            findings["format"] = "joblib"
        attempt("pickle scan", lambda: findings.update(scan_pickles(path, fmt)))
    elif fmt == "numpy":
        attempt("pickle scan", lambda: findings.update(scan_pickles(path, fmt)))
    elif fmt in {"zip", "keras"}:
        attempt("zip", lambda: findings.update(inspect_zip(path)))
        findings["format"] = fmt
        if findings.get("has_pickles"):
            attempt("pickle scan", lambda: findings.update(scan_pickles(path, "zip")))
        elif fmt == "keras":
            findings["scan"] = {"state": "not_needed", "reason": NO_PICKLE["keras"]}
    elif fmt == "image":

        def image() -> None:
            result.preview, result.thumbnail = image_preview(path)

        attempt("image", image)
    elif fmt == "csv":
        attempt("preview", lambda: result.preview.update(table_preview(path, media_type)))
    elif fmt == "json":
        attempt("preview", lambda: result.preview.update(text_preview(path, as_json=True)))
    elif fmt == "text":
        attempt("preview", lambda: result.preview.update(text_preview(path)))
    if errors:
        findings["errors"] = errors
        if "scanner" in findings or fmt in {"pickle", "pytorch", "numpy"}:
            scan = findings.get("scan") or {}
            if scan.get("state") != "not_scanned" and "pickle scan" in " ".join(errors):
                reason = next(e for e in errors if e.startswith("pickle scan"))
                findings["scan"] = {"state": "not_scanned", "reason": reason}
                findings.setdefault("not_scanned", reason)
                findings["scan_error"] = True
    return result
