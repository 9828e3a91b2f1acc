"""Model files built to attack the reader: `sdprov inspect` answers each quickly, in bounded memory.

Each case runs the real CLI in a child process; a small wrapper reports the child's peak RSS
(`resource.getrusage(RUSAGE_CHILDREN)` of a process whose only child is the CLI), so a reader
that allocates what the file claims shows up as memory, not as a slow test.
"""

from __future__ import annotations

import json
import os
import pickle
import struct
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.torchpickle import write_malicious_pickle

MIB = 1 << 20
# The CLI's own baseline is ~35 MB; every hostile file must stay far below what it claims.
RSS_LIMIT = 200 * MIB
WALL_LIMIT = 60.0  # seconds, with slack for 2 shared cores; unloaded runs take 1-5 s

_WRAPPER = """
import resource, subprocess, sys
proc = subprocess.run(sys.argv[1:], capture_output=True, text=True)
sys.stderr.write(proc.stderr)
sys.stdout.write(proc.stdout)
print("\\nRSS-KB", resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)
sys.exit(proc.returncode)
"""


@dataclass(frozen=True)
class Run:
    code: int
    out: dict[str, Any]
    stderr: str
    rss: int
    seconds: float


def inspect(path: Path) -> Run:
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", _WRAPPER, sys.executable, "-m", "provision.cli", "inspect",
         str(path), "--json"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "NO_COLOR": "1"},
    )  # fmt: skip
    seconds = time.monotonic() - start
    stderr, _, rss = proc.stderr.rpartition("RSS-KB ")
    assert "Traceback" not in stderr, stderr
    return Run(proc.returncode, json.loads(proc.stdout), stderr, int(rss) * 1024, seconds)


def _safetensors(path: Path, header: bytes, *, length: int | None = None) -> Path:
    raw_length = struct.pack("<Q", len(header) if length is None else length)
    path.write_bytes(raw_length + header)
    return path


def _tensors(count: int) -> bytes:
    entry = b'"t%d":{"dtype":"F16","shape":[1],"data_offsets":[0,0]}'
    return b"{" + b",".join(entry % i for i in range(count)) + b"}"


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _dag_pickle(path: Path, levels: int = 80) -> Path:
    """t[i+1] = (t[i], t[i]) through the memo: 2^80 nodes if hashed or printed, as a dict key
    and as the callable of a REDUCE."""
    ops = bytearray(b"\x80\x04N\x94")  # None, MEMOIZE -> memo 0
    for i in range(levels):
        ops += b"j" + struct.pack("<I", i) + b"j" + struct.pack("<I", i) + b"\x86\x94"
    top = b"j" + struct.pack("<I", levels)
    ops += b"}" + top + b"K\x01s" + top + b")R" + b"\x86."
    return _write(path, bytes(ops))


def _long_keys(path: Path) -> Path:
    """One 1 MB key memoised at every level of a 60-deep dict with 2,000 leaves."""
    big = "k" * MIB
    root: dict[str, object] = {}
    node = root
    for _ in range(60):
        child: dict[str, object] = {}
        node[big] = child
        node = child
    node.update({f"x{i}": 1 for i in range(2000)})
    path.write_bytes(pickle.dumps(root, protocol=4))
    return path


# name -> (builder, expected error text or None when the file is read and judged)
CASES: dict[str, tuple[Callable[[Path], Path], str | None]] = {
    "length-2^63": (
        lambda d: _safetensors(d / "a.safetensors", b"{}", length=1 << 63),
        "header claims 9223372036854775808 bytes",
    ),
    "length-negative-if-signed": (
        lambda d: _safetensors(d / "a.safetensors", b"{}", length=(1 << 64) - 8),
        "header claims 18446744073709551608 bytes",
    ),
    "length-past-end": (
        lambda d: _safetensors(d / "a.safetensors", b"{}", length=4096),
        "the file has only",
    ),
    "not-json": (
        lambda d: _safetensors(d / "a.safetensors", b"{\xff\xfe not json"),
        "not valid JSON",
    ),
    "deeply-nested-json": (
        lambda d: _safetensors(
            d / "a.safetensors", b'{"a":' + b"[" * 200_000 + b"]" * 200_000 + b"}"
        ),
        "deeply nested",
    ),
    "huge-integer": (
        lambda d: _safetensors(
            d / "a.safetensors",
            b'{"a":{"dtype":"F16","shape":[' + b"9" * 50_000 + b'],"data_offsets":[0,0]}}',
        ),
        "not valid JSON",
    ),
    "too-many-tensors": (
        lambda d: _safetensors(d / "a.safetensors", _tensors(60_000)),
        "more than the 50000 tensors",
    ),
    "offsets-outside": (
        lambda d: _safetensors(
            d / "a.safetensors", b'{"a":{"dtype":"F16","shape":[1],"data_offsets":[0,999999999]}}'
        ),
        "the file is truncated",
    ),
    "zip-bomb-data-pkl": (
        lambda d: _zip(d / "a.ckpt", {"archive/data.pkl": b"\x80\x02" + b"N" * (250 * MIB) + b"."}),
        "more than any model",
    ),
    "opcode-flood": (
        lambda d: _write(d / "a.ckpt", b"\x80\x02" + b"}" * 1_100_000 + b"."),
        "more than 1000000 pickle opcodes",
    ),
    "hash-bomb-dag": (lambda d: _dag_pickle(d / "a.ckpt"), None),
    "megabyte-keys": (lambda d: _long_keys(d / "a.ckpt"), None),
    "huge-integer-scalar": (
        lambda d: _write(d / "a.ckpt", pickle.dumps({"step": 10**30_000}, protocol=2)),
        "unsafe pickle: the scanner could not read it",
    ),
}


@pytest.mark.parametrize("label", sorted(CASES))
def test_hostile_file_gets_a_clear_verdict_in_bounded_memory(tmp_path: Path, label: str) -> None:
    build, expected = CASES[label]
    path = build(tmp_path)
    run = inspect(path)
    assert run.rss < RSS_LIMIT, f"{label}: peak RSS {run.rss // MIB} MiB"
    assert run.seconds < WALL_LIMIT, f"{label}: {run.seconds:.1f} s"
    (entry,) = run.out["files"]
    if expected is None:
        assert run.code == 0 and entry["kind"] == "unknown", run.out
    else:
        assert run.code == 1
        message = entry.get("error") or entry["pickle_scan"]["message"]
        assert expected in message, message
        assert f"{path}" in run.stderr or path.name in run.stderr


@pytest.mark.slow
def test_storage_zip_bomb_is_never_unpacked(tmp_path: Path) -> None:
    # 600 MB of zeros in the storages (a 1 MB file): only data.pkl is ever read.
    data_pkl = b"\x80\x02}q\x00."
    members = {"archive/data.pkl": data_pkl, "archive/version": b"3\n"}
    members |= {f"archive/data/{i}": bytes(300 * MIB) for i in range(2)}
    run = inspect(_zip(tmp_path / "a.ckpt", members))
    assert run.rss < RSS_LIMIT and run.code == 0
    assert run.out["files"][0]["pickle_scan"]["safe"] is True


def test_protocol_0_pickle_is_scanned_not_waved_through(tmp_path: Path) -> None:
    # No PROTO opcode: `cos\nsystem\n(S'…'\ntR.` used to be "not a model file" and skip the scan.
    path = tmp_path / "embedding.pt"
    path.write_bytes(b"cos\nsystem\n(S'echo pwned'\ntR.")
    run = inspect(path)
    entry = run.out["files"][0]
    assert run.code == 1 and entry["format"] == "pickle"
    assert "os.system" in entry["pickle_scan"]["message"]
    assert not entry["pickle_scan"]["safe"]


def test_malicious_pickle_named_safetensors_is_not_read_as_one(tmp_path: Path) -> None:
    path = write_malicious_pickle(tmp_path / "lora.safetensors")
    run = inspect(path)
    entry = run.out["files"][0]
    assert run.code == 1 and entry["format"] == "pickle"
    assert "extension-mismatch" in entry["flags"]


@pytest.mark.slow
def test_gigantic_header_at_the_format_limit_stays_bounded(tmp_path: Path) -> None:
    # 95 MB of metadata: under safetensors' own 100 MB limit, so it is parsed, once.
    header = b'{"__metadata__":{"ss_tag_frequency":"' + b"x" * (95 * MIB) + b'"}}'
    run = inspect(_safetensors(tmp_path / "a.safetensors", header))
    assert run.code == 0, run.stderr
    assert run.rss < 500 * MIB, f"peak RSS {run.rss // MIB} MiB"


@pytest.mark.slow
def test_pickle_stream_past_64_mib_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.bin"
    with path.open("wb") as fh:
        fh.write(b"\x80\x04\x8e" + struct.pack("<Q", 80 * MIB))  # BINBYTES8 of 80 MiB
        fh.truncate(80 * MIB + 11)
    run = inspect(path)
    assert run.code == 1 and run.rss < RSS_LIMIT
    assert "longer than" in run.out["files"][0]["error"]
