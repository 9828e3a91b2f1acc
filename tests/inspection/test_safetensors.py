from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from provision.errors import InspectionError
from provision.inspection import inspect_file
from provision.inspection.safetensors import MAX_HEADER_BYTES, read_header
from tests.fixtures.modelfiles import make_checkpoint, write_safetensors


def _raw(path: Path, length: int, body: bytes, total: int | None = None) -> Path:
    with path.open("wb") as fh:
        fh.write(struct.pack("<Q", length) + body)
        if total is not None:
            fh.truncate(total)
    return path


def test_header_roundtrip_with_metadata(tmp_path: Path) -> None:
    path = write_safetensors(
        tmp_path / "x.safetensors",
        {"a.weight": ("F16", [4, 8]), "b": ("F32", [])},
        {"ss_base_model_version": "sd_v1"},
    )
    header = read_header(path)
    assert {k: v.shape for k, v in header.tensors.items()} == {"a.weight": (4, 8), "b": ()}
    assert header.tensors["a.weight"].dtype == "F16"
    assert header.metadata == {"ss_base_model_version": "sd_v1"}
    # 8 + header + 4*8*2 + 4 bytes of data: the generator lays the file out exactly.
    assert path.stat().st_size == 8 + header.header_bytes + 64 + 4


def test_absurd_header_length_is_refused_without_allocating(tmp_path: Path) -> None:
    path = _raw(tmp_path / "big.safetensors", MAX_HEADER_BYTES + 1, b"{}", total=1 << 30)
    with pytest.raises(InspectionError, match="limit"):
        read_header(path)


def test_header_longer_than_file_is_refused(tmp_path: Path) -> None:
    path = _raw(tmp_path / "short.safetensors", 5000, b'{"a": 1}')
    with pytest.raises(InspectionError, match="truncated"):
        inspect_file(path)


def test_truncated_download_is_caught_from_the_header(tmp_path: Path) -> None:
    path = make_checkpoint(tmp_path / "cut.safetensors", "sd1")
    with path.open("r+b") as fh:
        fh.truncate(path.stat().st_size - 1)
    with pytest.raises(InspectionError, match="truncated"):
        inspect_file(path)


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[1, 2]    ", b'{"t": {"dtype": "F16", "shape": "x", "data_offsets": [0, 0]}}'],
)
def test_corrupt_headers_raise(tmp_path: Path, body: bytes) -> None:
    path = _raw(tmp_path / "bad.safetensors", len(body), body, total=len(body) + 64)
    with pytest.raises(InspectionError):
        read_header(path)


def test_unreadable_file_raises(tmp_path: Path) -> None:
    with pytest.raises(InspectionError, match="cannot read"):
        inspect_file(tmp_path / "missing.safetensors")
    with pytest.raises(InspectionError, match="cannot read"):
        inspect_file(tmp_path)  # a directory


def test_numbers_in_metadata_are_kept_as_text(tmp_path: Path) -> None:
    header = {"__metadata__": {"ss_network_dim": 32}, "w": {"dtype": "F16", "shape": [1],
              "data_offsets": [0, 2]}}  # fmt: skip
    body = json.dumps(header).encode()
    path = _raw(tmp_path / "m.safetensors", len(body), body, total=8 + len(body) + 2)
    assert read_header(path).metadata == {"ss_network_dim": "32"}


def _bytes_read() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar")


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="needs Linux /proc/self/io")
def test_a_4_gib_file_costs_only_its_header(tmp_path: Path) -> None:
    # A sparse file: an SDXL checkpoint header, then a hole up to 4 GiB.
    path = make_checkpoint(tmp_path / "big.safetensors", "sdxl")
    with path.open("r+b") as fh:
        fh.truncate(4 << 30)
    before = _bytes_read()
    report = inspect_file(path)
    read = _bytes_read() - before
    assert report.kind == "checkpoint"
    assert report.family == "sdxl"
    assert read < 64 * 1024, f"read {read} bytes to inspect a 4 GiB file"
