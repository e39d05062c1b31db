"""Archives and pickles the worker scans: the caps on what the scanner may read (zip bombs,
huge members, too many members), with crafted files. Pure: ``inspection.inspect_file`` on
local files, as the worker calls it."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import pytest

from artifacts import inspection

UNSAFE = (
    b"\x80\x04\x95\x1c\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x94\x8c\x06system\x94\x93\x94\x8c\x02id\x94\x85\x94R\x94."
)


def _zip(path: Path, members: dict[str, bytes], *, compression: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_a_zip_bomb_pickle_member_is_not_scanned_and_is_flagged(tmp_path: Path) -> None:
    # 64 MiB of a pickle-looking member deflated to ~64 KiB: the scanner would hold it all
    path = tmp_path / "model.pt"
    block = b"\x00" * 1024 * 1024
    with (
        zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive,
        archive.open("archive/data.pkl", "w") as member,
    ):
        member.write(b"\x80\x02")
        for _ in range(64):
            member.write(block)
    assert path.stat().st_size < 1024 * 1024

    result = inspection.inspect_file(path, "model.pt")

    assert result.findings["format"] == "pytorch"
    assert result.findings["unsafe"] is True
    assert "zip bomb" in result.findings["not_scanned"]
    assert "archive/data.pkl" in result.findings["not_scanned"]


def test_a_member_over_the_scan_size_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inspection, "MAX_SCAN_BYTES", 1_000)
    big = pickle.dumps(list(range(2_000)), protocol=4)  # stored: no compression ratio to blame
    path = _zip(tmp_path / "ckpt.pt", {"archive/data.pkl": big})

    findings = inspection.inspect_file(path, "ckpt.pt").findings

    assert findings["unsafe"] is True
    assert f"expands to {len(big)} bytes" in findings["not_scanned"]


def test_a_plain_pickle_over_the_scan_size_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inspection, "MAX_SCAN_BYTES", 1_000)
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(list(range(2_000)), protocol=4))

    findings = inspection.inspect_file(path, "model.pkl").findings

    assert (findings["format"], findings["unsafe"]) == ("pickle", True)
    assert "not scanned" in findings["not_scanned"]


def test_an_archive_with_too_many_members_is_not_scanned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inspection, "MAX_ZIP_MEMBERS", 10)
    path = _zip(tmp_path / "m.pt", {f"archive/data/{i}": b"t" for i in range(20)} | {"archive/data.pkl": UNSAFE})

    findings = inspection.inspect_file(path, "m.pt").findings

    assert findings["unsafe"] is True
    assert "21 members" in findings["not_scanned"]


def test_the_total_a_scan_may_read_is_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inspection, "MAX_SCAN_TOTAL_BYTES", 2_000)
    members = {f"archive/part{i}.pkl": pickle.dumps(list(range(300)), protocol=4) for i in range(4)}
    path = _zip(tmp_path / "m.pt", members)

    findings = inspection.inspect_file(path, "m.pt").findings

    assert findings["unsafe"] is True
    assert "more than 2000 bytes" in findings["not_scanned"]


def test_a_checkpoint_with_large_stored_tensors_is_scanned_normally(tmp_path: Path) -> None:
    # torch.save's layout: a small data.pkl and big, incompressible, stored tensor members
    tensors = {f"archive/data/{i}": bytes(range(256)) * 8192 for i in range(3)}  # 2 MiB each
    path = _zip(tmp_path / "model.pt", {"archive/data.pkl": pickle.dumps({"w": 1}, protocol=2), **tensors})

    findings = inspection.inspect_file(path, "model.pt").findings

    assert "not_scanned" not in findings
    assert findings["unsafe"] is False
    assert findings["pickles_scanned"] == 1


def test_a_pickle_hidden_after_the_listed_members_of_a_zip_is_scanned(tmp_path: Path) -> None:
    members = {f"images/{i:03d}.txt": b"x" for i in range(60)} | {"zz/payload.bin": UNSAFE}
    path = _zip(tmp_path / "dataset.zip", members, compression=zipfile.ZIP_DEFLATED)

    findings = inspection.inspect_file(path, "dataset.zip").findings

    assert findings["entries"] == 61
    assert "zz/payload.bin" not in findings["names"]  # beyond the 50 listed
    assert findings["unsafe"] is True
    assert "os.system" in findings["unsafe_globals"]


def test_a_zip_without_pickles_is_listed_not_scanned(tmp_path: Path) -> None:
    path = _zip(tmp_path / "d.zip", {"a.csv": b"x,y\n1,2\n", "b.txt": b"hello"}, compression=zipfile.ZIP_DEFLATED)

    findings = inspection.inspect_file(path, "d.zip").findings

    assert findings["format"] == "zip"
    assert findings["has_pickles"] is False
    assert "scanner" not in findings


def test_the_dashboard_says_why_a_file_was_not_scanned() -> None:
    from frontend.artifact_views import _facts

    facts = _facts({"format": "pytorch", "scanner": "picklescan", "unsafe": True, "not_scanned": "a zip bomb"})

    assert facts == ["not scanned, treat as unsafe: a zip bomb"]
