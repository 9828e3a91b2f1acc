"""Server faults the basic suite (test_faults.py) does not cover, through the real CLI.

Each case ends in a verified file or a clear error naming the model and the redacted URL:
never a partial or unverified file in a kind folder, never a traceback, never a token in the
output (the `cli` fixture checks the last two on every run).
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from tests.fakes import CivitaiServer, HfServer
from tests.integration.catalog import MANIFEST, build
from tests.integration.conftest import Cli

CKPT = "Stable-diffusion/juggernaut_xl_v9.safetensors"
VAE = "VAE/sdxl_vae.safetensors"
# A URL with its query still on (a signed URL's signature) anywhere in the output is a leak.
QUERY = re.compile(r"https?://\S*\?\S*=")


@pytest.fixture
def locked(cli: Cli, civitai: CivitaiServer, hf: HfServer, tmp_path: Path) -> Path:
    build(tmp_path, civitai, hf)
    (tmp_path / "manifests" / "models.yaml").write_text(MANIFEST)
    cli.run("lock")
    civitai.clear_requests()
    return tmp_path / "sd" / "models"


@pytest.fixture(autouse=True)
def _storage_never_sees_a_token(civitai: CivitaiServer, hf: HfServer) -> Iterator[None]:
    """Whatever the fault, retries and re-resolves never carry a token to storage or a CDN."""
    yield
    for request in [*civitai.requests, *hf.requests]:
        if request.host in ("storage", "cdn"):
            assert "authorization" not in request.headers, request.path


def _visible(root: Path) -> list[str]:
    return sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and ".sdprov" not in p.parts
    )


def _starts(civitai: CivitaiServer) -> list[int]:
    ranges = [r.headers.get("range", "") for r in civitai.requests if r.host == "storage"]
    return [int(r[6:].partition("-")[0]) for r in ranges if r.startswith("bytes=")]


def _wipe(root: Path) -> None:
    """Remove the placed files (state and lease stay sdprov's business) for the next case."""
    for name in _visible(root):
        (root / name).unlink()


def _clean_error(stderr: str, model: str) -> None:
    assert model in stderr, stderr
    assert "http://127.0.0.1:" in stderr, stderr  # the redacted URL is named ...
    assert not QUERY.search(stderr), stderr  # ... without its query


def _sync(cli: Cli, root: Path, *args: str, check: int = 0, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    runner = replace(cli, env={**cli.env, **(env or {})})
    return runner.run("sync", "--models-root", str(root), *args, check=check)


def test_stall_past_the_read_timeout_resumes(
    cli: Cli, civitai: CivitaiServer, locked: Path
) -> None:
    civitai.faults.stall_after(2_000_000, 20.0)
    began = time.monotonic()
    _sync(cli, locked, "--jobs", "1", env={"SDPROV_READ_TIMEOUT": "0.5"})
    assert time.monotonic() - began < 15  # gave up on the silent connection, did not wait it out
    assert any(start >= 2_000_000 for start in _starts(civitai))
    cli.run("status", "--models-root", str(locked), "--check")


def test_server_that_stays_silent_fails_clearly(
    cli: Cli, civitai: CivitaiServer, locked: Path
) -> None:
    civitai.faults.stall_after(0, 30.0, times=1000)  # headers, then nothing
    out = _sync(cli, locked, check=1, env={"SDPROV_READ_TIMEOUT": "0.3"})
    _clean_error(out.stderr, CKPT)
    assert "ReadTimeout" in out.stderr
    assert _visible(locked) == [VAE]


def test_429_storm_gives_up_with_a_clear_error(
    cli: Cli, civitai: CivitaiServer, locked: Path
) -> None:
    civitai.faults.fail("storage", 429, times=1000)
    out = _sync(cli, locked, check=1)
    _clean_error(out.stderr, CKPT)
    assert "HTTP 429" in out.stderr
    assert _visible(locked) == [VAE]


def test_503_storm_with_retry_after_recovers(
    cli: Cli, civitai: CivitaiServer, locked: Path
) -> None:
    for after in ("1", email.utils.formatdate(time.time() + 1, usegmt=True)):  # both forms
        civitai.faults.fail("storage", 503, times=1, retry_after=after)
        civitai.faults.fail("api", 429, times=1, retry_after=after, path_contains="/api/download/")
        _sync(cli, locked, "--jobs", "1")
        cli.run("status", "--models-root", str(locked), "--check")
        _wipe(locked)


def test_rate_limit_storm_at_lock_is_a_clear_error(
    cli: Cli, civitai: CivitaiServer, hf: HfServer, tmp_path: Path
) -> None:
    build(tmp_path, civitai, hf)
    (tmp_path / "manifests" / "models.yaml").write_text(MANIFEST)
    civitai.faults.fail("api", 429, times=1000, retry_after="0", path_contains="/api/v1/")
    out = cli.run("lock", check=1)
    assert "rate-limited" in out.stderr and "lower --jobs" in out.stderr
    assert not QUERY.search(out.stderr)
    assert not (tmp_path / "manifests" / "models.lock.json").exists()


def test_signed_url_expiring_mid_resume_is_re_resolved(
    cli: Cli, civitai: CivitaiServer, locked: Path
) -> None:
    civitai.faults.reset_after(2_000_000)
    civitai.faults.on_reset = civitai.expire_signed_urls  # the URL dies with the connection
    _sync(cli, locked, "--jobs", "1")
    version_downloads = [
        r for r in civitai.requests if r.host == "api" and r.path == "/api/download/models/288982"
    ]
    assert len(version_downloads) == 2  # the stale URL was refused, a fresh one resolved
    # The resume tried the stale URL, then the fresh one (a reset loses what the kernel had
    # buffered, so the resume point is wherever the client got to).
    assert sum(start > 0 for start in _starts(civitai)) == 2
    cli.run("status", "--models-root", str(locked), "--check")


def test_json_with_200_is_refused_at_sync(cli: Cli, civitai: CivitaiServer, locked: Path) -> None:
    civitai.faults.json_instead = True
    out = _sync(cli, locked, check=1)
    assert "application/json instead of the model" in out.stderr and CKPT in out.stderr
    assert _visible(locked) == [VAE]


def test_html_with_200_is_refused_at_lock(
    cli: Cli, civitai: CivitaiServer, hf: HfServer, tmp_path: Path
) -> None:
    build(tmp_path, civitai, hf)
    (tmp_path / "manifests" / "models.yaml").write_text(MANIFEST)
    civitai.faults.html_instead = True
    out = cli.run("lock", check=1)
    assert "text/html instead of the model" in out.stderr
    assert not (tmp_path / "manifests" / "models.lock.json").exists()


def test_content_length_that_lies(cli: Cli, civitai: CivitaiServer, locked: Path) -> None:
    for delta in (-1_000_000, 1_000_000):  # shorter than the body, then longer
        civitai.clear_requests()
        civitai.faults.lie_content_length(delta)
        _sync(cli, locked, "--jobs", "1")
        if delta < 0:
            assert any(start > 0 for start in _starts(civitai))  # stopped where it said
        cli.run("status", "--models-root", str(locked), "--check")
        _wipe(locked)


def test_content_length_lie_on_the_hf_cdn(cli: Cli, hf: HfServer, locked: Path) -> None:
    hf.faults.lie_content_length(-100, host="cdn")
    _sync(cli, locked)
    cli.run("status", "--models-root", str(locked), "--check")


def test_body_longer_than_the_locked_size(
    cli: Cli, civitai: CivitaiServer, locked: Path, tmp_path: Path
) -> None:
    source = tmp_path / "catalog" / "juggernaut_v9.safetensors"
    size = source.stat().st_size
    with source.open("ab") as fh:
        fh.write(b"\0" * 3_000_000)  # the server's file grew after the lock
    # Ranges honoured: a 206 whose Content-Range total disagrees with the lock is refused.
    out = _sync(cli, locked, check=1)
    assert CKPT in out.stderr and CKPT not in _visible(locked)
    partials = list((locked / ".sdprov" / "partial").glob("*"))
    assert all(p.stat().st_size <= size for p in partials)  # never written past the size
    # Ranges ignored: a 200 with the whole, longer body is read up to the locked size only,
    # verified and placed.
    civitai.faults.ignore_range = True
    _sync(cli, locked)
    assert (locked / CKPT).stat().st_size == size
