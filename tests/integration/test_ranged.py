"""Parallel ranged downloads (provision.sync.ranged) against the loopback Civitai storage.

Pieces are shrunk to 64 KiB so a 1.3 MB file takes the ranged path; the faults are the same
knobs the single-stream suite uses. What must hold: the placed file is the locked bytes, the
partial is only ever a prefix of the file, and every failure is a clear error or a resume.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from provision.errors import ChecksumMismatch
from provision.net.http import RetryPolicy
from provision.sources import SourceContext
from provision.sources.civitai import CivitaiBytes
from provision.sync import ranged
from provision.sync.download import Cancelled, DownloadJob, fetch
from tests.fakes import CivitaiServer, FakeFile, FakeModel, FakeVersion

SIZE = 1_300_007  # not a multiple of the piece size: the last piece is short
CONTENT = os.urandom(SIZE)
RETRY = RetryPolicy(attempts=4, base_delay=0.01)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[CivitaiServer]:
    monkeypatch.setattr(ranged, "PIECE", 64 << 10)
    monkeypatch.setattr(ranged, "MIN_RANGED", 256 << 10)
    monkeypatch.setenv("SDPROV_CONNECTIONS", "4")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    with CivitaiServer() as civitai:
        file = FakeFile(id=7, name="big.safetensors", content=CONTENT, primary=True)
        version = FakeVersion(id=70, name="v1", base_model="SD 1.5", files=[file])
        civitai.add(FakeModel(id=1, name="Big", type="Checkpoint", versions=[version]))
        yield civitai


def _job(
    civitai: CivitaiServer, tmp_path: Path, cancel: threading.Event | None = None
) -> DownloadJob:
    ctx = SourceContext(civitai_url=civitai.api_url)
    source = CivitaiBytes(ctx=ctx, version_id=70, file_id=7, what="big")
    return DownloadJob(
        key="Stable-diffusion/big.safetensors",
        dest=tmp_path / "models" / "big.safetensors",
        partial=tmp_path / "partial",
        size=SIZE,
        sha256=hashlib.sha256(CONTENT).hexdigest(),
        source=source,
        cancel=cancel,
    )


def _storage_ranges(civitai: CivitaiServer) -> list[str]:
    return [r.headers.get("range", "") for r in civitai.requests if r.host == "storage"]


def test_pieces_over_several_connections_make_the_exact_file(
    server: CivitaiServer, tmp_path: Path
) -> None:
    job = _job(server, tmp_path)
    fetch(job, retry=RETRY)
    assert job.dest.read_bytes() == CONTENT
    ranges = _storage_ranges(server)
    # One open-ended probe, then closed 64 KiB pieces; the last one ends at the size.
    assert ranges[0] == f"bytes=0-{SIZE - 1}"
    assert f"bytes={65536}-{2 * 65536 - 1}" in ranges
    assert f"bytes={(SIZE // 65536) * 65536}-{SIZE - 1}" in ranges
    assert len(ranges) == -(-SIZE // 65536)
    assert not job.partial.exists()


def test_one_connection_keeps_the_single_stream(
    server: CivitaiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SDPROV_CONNECTIONS", "1")
    job = _job(server, tmp_path)
    fetch(job, retry=RETRY)
    assert job.dest.read_bytes() == CONTENT
    assert _storage_ranges(server) == [f"bytes=0-{SIZE - 1}"]


def test_by_default_a_fast_stream_stays_single(
    server: CivitaiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SDPROV_CONNECTIONS")
    monkeypatch.setattr(ranged, "PROBE", 0.0)
    monkeypatch.setattr(ranged, "FAST", 1)  # any stream is fast
    job = _job(server, tmp_path)
    fetch(job, retry=RETRY)
    assert job.dest.read_bytes() == CONTENT
    assert _storage_ranges(server) == [f"bytes=0-{SIZE - 1}"]


def test_by_default_a_slow_stream_hands_the_rest_to_several_connections(
    server: CivitaiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SDPROV_CONNECTIONS")
    monkeypatch.setattr(ranged, "PROBE", 0.0)
    monkeypatch.setattr(ranged, "FAST", 1 << 60)  # any stream is slow
    job = _job(server, tmp_path)
    fetch(job, retry=RETRY)
    assert job.dest.read_bytes() == CONTENT
    ranges = _storage_ranges(server)
    assert ranges[0] == f"bytes=0-{SIZE - 1}"  # the probe stream, cut short
    rest = ranges[1]  # the rest re-opened where the probe stopped, then pieces
    assert rest.startswith("bytes=") and rest.endswith(f"-{SIZE - 1}") and rest != ranges[0]
    assert len(ranges) > 2 and all(r.startswith("bytes=") for r in ranges)
    assert not job.partial.exists()


def test_resets_mid_piece_resume_from_a_prefix(server: CivitaiServer, tmp_path: Path) -> None:
    server.faults.reset_after(20_000, times=3)
    job = _job(server, tmp_path)
    fetch(job, retry=RETRY)
    assert job.dest.read_bytes() == CONTENT


def test_server_ignoring_range_after_the_probe_restarts_cleanly(
    server: CivitaiServer, tmp_path: Path
) -> None:
    # The probe from 0 is answered 200 (a ranged answer is expected only from a resume)
    # when Range is ignored: the single stream takes the whole file.
    server.faults.ignore_range = True
    job = _job(server, tmp_path)
    job.partial.write_bytes(CONTENT[:300_000])  # a resume: the 200 means start over
    fetch(job, retry=RETRY)
    assert job.dest.read_bytes() == CONTENT


def test_wrong_bytes_are_never_placed(server: CivitaiServer, tmp_path: Path) -> None:
    server.faults.corrupt = True
    job = _job(server, tmp_path)
    with pytest.raises(ChecksumMismatch):
        fetch(job, retry=RETRY)
    assert not job.dest.exists()


def test_body_past_the_size_is_cut(server: CivitaiServer, tmp_path: Path) -> None:
    server.faults.lie_content_length(1000, times=4)
    job = _job(server, tmp_path)
    fetch(job, retry=RETRY)
    assert job.dest.read_bytes() == CONTENT


def test_cancel_stops_promptly_and_leaves_a_prefix(server: CivitaiServer, tmp_path: Path) -> None:
    server.faults.throttle_bps = 200_000  # per connection: the file would take seconds
    cancel = threading.Event()
    job = _job(server, tmp_path, cancel)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            fetch(job, retry=RETRY)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(0.8)
    started = time.monotonic()
    cancel.set()
    thread.join(10)
    assert time.monotonic() - started < 2
    assert len(errors) == 1 and isinstance(errors[0], Cancelled)
    kept = job.partial.read_bytes()
    assert 0 < len(kept) < SIZE and CONTENT.startswith(kept)
    assert not job.dest.exists()
    # The next run resumes from that prefix and asks only for what is missing.
    server.faults.throttle_bps = None
    server.clear_requests()
    fetch(_job(server, tmp_path), retry=RETRY)
    assert job.dest.read_bytes() == CONTENT
    assert _storage_ranges(server)[0] == f"bytes={len(kept)}-{SIZE - 1}"


def test_signed_url_expiring_mid_download_is_re_resolved(
    server: CivitaiServer, tmp_path: Path
) -> None:
    server.faults.reset_after(200_000, times=1)
    server.faults.on_reset = server.expire_signed_urls
    job = _job(server, tmp_path)
    fetch(job, retry=RETRY)
    assert job.dest.read_bytes() == CONTENT
    assert sum(1 for r in server.requests if r.host == "api") >= 2


def test_bad_connections_setting_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from provision.errors import UsageError

    monkeypatch.setenv("SDPROV_CONNECTIONS", "0")
    with pytest.raises(UsageError, match="SDPROV_CONNECTIONS"):
        ranged.connections()
    monkeypatch.delenv("SDPROV_CONNECTIONS")
    assert ranged.connections() == ranged.DEFAULT_CONNECTIONS


def test_the_window_stays_within_its_memory_budget() -> None:
    assert ranged.piece_size(ranged.DEFAULT_CONNECTIONS) == ranged.PIECE
    for count in range(2, ranged.MAX_CONNECTIONS + 1):
        assert ranged.window(count) > count  # a spare buffer: the head never waits on itself
        assert ranged.window(count) * ranged.piece_size(count) <= ranged.WINDOW_BYTES


def test_hugging_face_pieces_resolve_once_then_go_to_the_cdn(
    server: CivitaiServer, tmp_path: Path
) -> None:
    from provision.sources.huggingface import HfBytes
    from tests.fakes import HfServer

    with HfServer() as hf:
        commit = hf.add_file("org/big", "big.safetensors", CONTENT)
        ctx = SourceContext(hf_endpoint=hf.endpoint)
        source = HfBytes(ctx=ctx, repo="org/big", commit=commit, path="big.safetensors", what="b")
        job = _job(server, tmp_path)
        job = DownloadJob(
            key=job.key, dest=job.dest, partial=job.partial, size=SIZE, sha256=job.sha256,
            source=source,
        )  # fmt: skip
        fetch(job, retry=RETRY)
        assert job.dest.read_bytes() == CONTENT
        hosts = [r.host for r in hf.requests]
        # One resolve (the probe) at most per worker racing it; every piece after that
        # goes straight to the CDN URL it redirected to.
        assert hosts.count("hf") <= 4 and hosts.count("cdn") == -(-SIZE // 65536)
