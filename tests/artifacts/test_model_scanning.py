"""The content scan of the model formats users ship, on real files written in the test by
the libraries that write them (joblib plain and compressed, pickle protocols 0-5, numpy),
by hand where the format is simple and its writer is not installed (a PyTorch zip with
``archive/data.pkl``, safetensors, a Keras archive, the HDF5 signature), and by onnx.
Pure: ``inspection.inspect_file`` on local files, as the worker calls it.

Writers present in the test environment: joblib (zlib, gzip, bz2, xz, lzma; lz4 is not
installed, so an lz4 file is the "not scanned" case), pickle, numpy, onnx. Not
installed: torch, h5py, safetensors, lz4 — those formats are built byte by byte."""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import zipfile
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from sklearn.linear_model import SGDClassifier
from sklearn.preprocessing import StandardScaler

from artifacts import inspection
from artifacts.presenters import scan_state


class SystemCall:
    """Pickles to ``os.system("id")``; these tests write it and never load it."""

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.system, ("id",))


def sklearn_model() -> dict[str, Any]:
    """What examples/sklearn_train.py saves: a scaler and a classifier, in one dict."""
    rng = np.random.default_rng(0)
    features = rng.normal(size=(60, 8))
    labels = (features[:, 0] > 0).astype(int)
    return {
        "scaler": StandardScaler().fit(features),
        "classifier": SGDClassifier(random_state=0).fit(features, labels),
    }


def inspect(path: Path) -> dict[str, Any]:
    return inspection.inspect_file(path, path.name).findings


# --- joblib ------------------------------------------------------------------------------------


@pytest.mark.parametrize("compress", [None, "zlib", "gzip", "bz2", "xz", "lzma"])
def test_the_example_joblib_model_is_scanned_plain_and_compressed(tmp_path: Path, compress: str | None) -> None:
    # given: the example's model, as joblib.dump writes it (arrays raw between pickle frames)
    path = tmp_path / "model.joblib"
    joblib.dump(sklearn_model(), path, compress=(compress, 3) if compress else 0)

    # when
    findings = inspect(path)

    # then: read to the end, every array skipped, nothing dangerous, nothing "not scanned"
    assert findings["format"] == "joblib"
    assert findings["scan"] == {"state": "scanned"}
    assert "scan_error" not in findings
    assert "not_scanned" not in findings
    assert findings["unsafe"] is False
    assert findings["joblib_arrays"] >= 4
    assert "sklearn.linear_model._stochastic_gradient.SGDClassifier" in findings["globals"]
    assert "sklearn.preprocessing._data.StandardScaler" in findings["globals"]
    assert findings.get("compression") == compress


def test_a_compressed_joblib_named_by_its_compression_is_scanned(tmp_path: Path) -> None:
    path = tmp_path / "model.joblib.gz"
    joblib.dump(sklearn_model(), path)  # joblib picks gzip from the name

    findings = inspect(path)

    assert (findings["format"], findings["compression"], findings["unsafe"]) == ("joblib", "gzip", False)


@pytest.mark.parametrize("compress", [None, "gzip", "xz"])
def test_a_dangerous_global_after_a_joblib_array_is_found(tmp_path: Path, compress: str | None) -> None:
    # given: the payload sits after the first array, where a flat opcode reader stops
    path = tmp_path / "model.joblib"
    joblib.dump(
        {"a_weights": np.arange(1000.0), "z_payload": SystemCall()}, path, compress=(compress, 3) if compress else 0
    )

    findings = inspect(path)

    assert findings["unsafe"] is True
    assert "posix.system" in findings["unsafe_globals"] or "nt.system" in findings["unsafe_globals"]
    assert findings["scan"] == {"state": "scanned"}


def test_a_dangerous_global_inside_a_joblib_object_array_is_found(tmp_path: Path) -> None:
    # joblib writes arrays of Python objects as a nested pickle
    path = tmp_path / "model.joblib"
    joblib.dump({"w": np.zeros(3), "objects": np.array([SystemCall(), "x"], dtype=object)}, path)

    findings = inspect(path)

    assert findings["unsafe"] is True
    assert findings["pickles_scanned"] == 2


def test_joblib_arrays_of_every_layout_are_skipped_exactly(tmp_path: Path) -> None:
    arrays = {
        "fortran": np.asfortranarray(np.arange(12.0).reshape(3, 4)),
        "big_endian": np.arange(5, dtype=">i4"),
        "strings": np.array(["a", "bcd"]),
        "bytes": np.array([b"xy", b"z"]),
        "bools": np.array([True, False]),
        "complex": np.arange(3) * 1j,
        "dates": np.array(["2024-01-01"], dtype="datetime64[D]"),
        "records": np.zeros(2, dtype=[("a", "f4"), ("b", "i2")]),
        "empty": np.zeros((0, 5)),
        "scalar": np.array(3.5),
    }
    path = tmp_path / "arrays.joblib"
    joblib.dump({**arrays, "after": SystemCall()}, path)

    findings = inspect(path)

    assert findings["joblib_arrays"] == len(arrays)
    assert findings["unsafe"] is True  # the global after all of them was still reached


def test_an_lz4_joblib_is_scanned_with_lz4_and_otherwise_not_scanned_with_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "model.joblib"
    try:
        import lz4  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        # lz4 is not installed here (the usual case): the lz4 frame magic, then bytes
        path.write_bytes(b"\x04\x22\x4d\x18" + b"\x00" * 64)
        findings = inspect(path)
        assert findings["scan"]["state"] == "not_scanned"
        assert "lz4" in findings["not_scanned"]
        assert findings["unsafe"] is False  # unreadable is not dangerous: the review policy decides
    else:
        joblib.dump(sklearn_model(), path, compress=("lz4", 3))
        findings = inspect(path)
        assert (findings["scan"], findings["unsafe"]) == ({"state": "scanned"}, False)


# --- plain pickles -------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", range(6))
def test_pickles_of_every_protocol_are_scanned(tmp_path: Path, protocol: int) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps({"model": sklearn_model(), "w": np.ones(4)}, protocol=protocol))

    findings = inspect(path)

    assert findings["scan"] == {"state": "scanned"}, findings
    assert findings["unsafe"] is False
    assert "sklearn.preprocessing._data.StandardScaler" in findings["globals"]


@pytest.mark.parametrize("protocol", range(6))
def test_a_dangerous_global_is_found_in_every_protocol(tmp_path: Path, protocol: int) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps({"w": [1.0], "payload": SystemCall()}, protocol=protocol))

    findings = inspect(path)

    assert findings["unsafe"] is True
    assert any(g.endswith(".system") for g in findings["unsafe_globals"])


def test_a_global_named_through_the_memo_is_resolved(tmp_path: Path) -> None:
    # STACK_GLOBAL with its module and name fetched back from the memo
    data = b"\x80\x04\x8c\x02os\x94\x8c\x06system\x94h\x00h\x01\x93\x94\x8c\x02id\x94\x85\x94R\x94."
    path = tmp_path / "m.pkl"
    path.write_bytes(data)

    findings = inspect(path)

    assert "os.system" in findings["unsafe_globals"]


def test_protocol_5_out_of_band_style_buffers_are_walked(tmp_path: Path) -> None:
    path = tmp_path / "m.pkl"
    path.write_bytes(pickle.dumps(pickle.PickleBuffer(bytearray(b"abc" * 1000)), protocol=5))

    findings = inspect(path)

    assert (findings["scan"], findings["unsafe"]) == ({"state": "scanned"}, False)


def test_a_broken_pickle_is_not_scanned_with_its_reason_and_is_not_called_dangerous(tmp_path: Path) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps({"w": [1.0, 2.0]}, protocol=4)[:-5] + b"\xfe\xfe\xfe")

    findings = inspect(path)

    assert findings["scan"]["state"] == "not_scanned"
    assert findings["scan_error"] is True
    assert findings["not_scanned"]
    assert findings["unsafe"] is False
    assert scan_state(findings)["state"] == "not_scanned"


def test_a_dangerous_global_before_a_parse_failure_still_counts(tmp_path: Path) -> None:
    data = pickle.dumps([SystemCall(), 1], protocol=2)
    path = tmp_path / "model.pkl"
    path.write_bytes(data[:-3] + b"\xfe\xfe\xfe")

    findings = inspect(path)

    assert findings["scan"]["state"] == "not_scanned"
    assert findings["unsafe"] is True


def test_pickles_written_one_after_another_are_all_scanned(tmp_path: Path) -> None:
    # legacy torch.save: several pickles, then raw storage bytes
    out = io.BytesIO()
    pickle.dump(0x1950A86A20F9469CFC6C, out, protocol=2)
    pickle.dump({"model": 1}, out, protocol=2)
    pickle.dump(SystemCall(), out, protocol=2)
    out.write(bytes(range(256)) * 4)
    path = tmp_path / "legacy.pt"
    path.write_bytes(out.getvalue())

    findings = inspect(path)

    assert findings["pickles_scanned"] == 3
    assert findings["trailing_data"] is True
    assert findings["unsafe"] is True


# --- numpy, PyTorch zips, and formats without pickles --------------------------------------------


def test_a_numpy_file_of_numbers_needs_no_pickle_and_an_object_array_is_scanned(tmp_path: Path) -> None:
    numbers, objects = tmp_path / "w.npy", tmp_path / "o.npy"
    np.save(numbers, np.arange(10.0))
    np.save(objects, np.array([SystemCall()], dtype=object), allow_pickle=True)

    assert inspect(numbers)["unsafe"] is False
    assert inspect(numbers)["scan"] == {"state": "scanned"}
    assert inspect(objects)["unsafe"] is True


def _torch_like(path: Path, payload: Any) -> Path:
    """torch.save's zip layout: archive/data.pkl (storages as persistent ids), tensors
    stored raw under archive/data/, a version file."""

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj: Any) -> Any:
            if isinstance(obj, bytes):
                return ("storage", "FloatStorage", "0", "cpu", 4)
            return None

    body = io.BytesIO()
    Pickler(body, protocol=2).dump({"state_dict": {"w": b"tensor"}, "extra": payload})
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", body.getvalue())
        archive.writestr("archive/data/0", struct.pack("<4f", 1, 2, 3, 4))
        archive.writestr("archive/version", b"3\n")
    return path


def test_a_pytorch_checkpoint_is_scanned_through_its_data_pkl(tmp_path: Path) -> None:
    safe = inspect(_torch_like(tmp_path / "model.pt", {"epoch": 3}))
    unsafe = inspect(_torch_like(tmp_path / "evil.pt", SystemCall()))

    assert (safe["format"], safe["scan"], safe["unsafe"], safe["pickles_scanned"]) == (
        "pytorch",
        {"state": "scanned"},
        False,
        1,
    )
    assert unsafe["unsafe"] is True


def test_safetensors_onnx_hdf5_and_keras_need_no_pickle_scan_and_say_so(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    header = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    (tmp_path / "m.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + b"\x00" * 8)
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    onnx.save(helper.make_model(graph), str(tmp_path / "m.onnx"))
    # h5py is not installed: the HDF5 superblock signature is what detection reads
    (tmp_path / "m.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 56)
    with zipfile.ZipFile(tmp_path / "m.keras", "w") as archive:
        archive.writestr("config.json", json.dumps({"class_name": "Sequential"}))
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.0.0"}))
        archive.writestr("model.weights.h5", b"\x89HDF\r\n\x1a\n" + b"\x00" * 56)

    for name, fmt in [("m.safetensors", "safetensors"), ("m.onnx", "onnx"), ("m.h5", "hdf5"), ("m.keras", "keras")]:
        findings = inspect(tmp_path / name)
        assert findings["format"] == fmt
        assert findings["scan"]["state"] == "not_needed", name
        assert "no pickle" in findings["scan"]["reason"]
        assert "unsafe" not in findings


def test_the_run_page_facts_say_not_scanned_with_the_reason() -> None:
    from frontend.artifact_views import _facts

    facts = _facts({"format": "joblib", "scanner": "assay-pickle", "unsafe": False, "not_scanned": "opcode unknown"})

    assert facts == ["not scanned: opcode unknown"]
