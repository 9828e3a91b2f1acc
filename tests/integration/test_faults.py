"""Download faults: every one ends with a verified file or a clear error, never a bad file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provision.sync.card_content import SUFFIXES
from tests.fakes import CivitaiServer, HfServer
from tests.integration.catalog import MANIFEST, build
from tests.integration.conftest import TOKEN, Cli

CKPT = "Stable-diffusion/juggernaut_xl_v9.safetensors"


@pytest.fixture
def locked(cli: Cli, civitai: CivitaiServer, hf: HfServer, tmp_path: Path) -> Path:
    build(tmp_path, civitai, hf)
    (tmp_path / "manifests" / "models.yaml").write_text(MANIFEST)
    cli.run("lock")
    civitai.clear_requests()
    return tmp_path / "sd" / "models"


CARD_SUFFIXES = tuple(SUFFIXES.values())


def _kind_folder_files(root: Path) -> list[str]:
    """Model files only: the model cards written beside Civitai models are not counted."""
    return sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and ".sdprov" not in p.parts and not p.name.endswith(CARD_SUFFIXES)
    )


def _ranges(civitai: CivitaiServer) -> list[str]:
    return [r.headers.get("range", "") for r in civitai.requests if r.host == "storage"]


def _range_starts(civitai: CivitaiServer) -> list[int]:
    """Where each storage request started (downloads ask for closed ranges: `bytes=a-b`)."""
    return [int(r[6:].partition("-")[0]) for r in _ranges(civitai) if r.startswith("bytes=")]


def test_connection_reset_mid_download_resumes_with_range(
    cli: Cli, civitai: CivitaiServer, locked: Path
) -> None:
    civitai.faults.reset_after(3_000_000, times=2)
    cli.run("sync", "--models-root", str(locked), "--jobs", "1")
    assert any(start > 0 for start in _range_starts(civitai)), _ranges(civitai)
    assert len(_kind_folder_files(locked)) == 4
    cli.run("status", "--models-root", str(locked), "--check")


def test_server_ignoring_range_restarts_cleanly(
    cli: Cli, civitai: CivitaiServer, locked: Path
) -> None:
    civitai.faults.reset_after(2_000_000, times=1)
    civitai.faults.ignore_range = True
    cli.run("sync", "--models-root", str(locked), "--jobs", "1")
    cli.run("status", "--models-root", str(locked), "--check")


def test_truncated_body_is_resumed(cli: Cli, civitai: CivitaiServer, locked: Path) -> None:
    civitai.faults.truncate_to = 3_000_000
    proc = cli.popen("sync", "--models-root", str(locked), "--jobs", "1")
    # The first attempt gets 3 MB; turn the fault off so the resume can finish.
    import time

    time.sleep(0.5)
    civitai.faults.truncate_to = None
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    cli.run("status", "--models-root", str(locked), "--check")


def test_429_and_5xx_are_retried(cli: Cli, civitai: CivitaiServer, locked: Path) -> None:
    civitai.faults.fail("api", 429, times=1, retry_after="0", path_contains="/api/download/")
    civitai.faults.fail("api", 503, times=1, path_contains="/api/download/")
    civitai.faults.fail("storage", 500, times=2)
    cli.run("sync", "--models-root", str(locked), "--jobs", "1")
    assert len(_kind_folder_files(locked)) == 4


def test_html_page_posing_as_a_model_is_refused(
    cli: Cli, civitai: CivitaiServer, locked: Path
) -> None:
    civitai.faults.html_instead = True
    out = cli.run("sync", "--models-root", str(locked), check=1)
    assert "text/html instead of the model" in out.stderr
    # Civitai's 3 files failed, the Hugging Face VAE came through; nothing else is visible.
    assert _kind_folder_files(locked) == ["VAE/sdxl_vae.safetensors"]


def test_corrupted_bytes_never_replace_a_good_file(
    cli: Cli, civitai: CivitaiServer, locked: Path, tmp_path: Path
) -> None:
    cli.run("sync", "--models-root", str(locked))
    good = (locked / CKPT).read_bytes()
    # Upgrade the lock to new bytes whose download is corrupted on the way.
    lock_path = tmp_path / "manifests" / "models.lock.json"
    lock = json.loads(lock_path.read_text())
    civitai.faults.corrupt = True
    (locked / CKPT).unlink()
    out = cli.run("sync", "--models-root", str(locked), check=1)
    assert "sha256 mismatch" in out.stderr and "was not placed" in out.stderr
    assert not (locked / CKPT).exists()
    assert lock["models"]  # the lock is untouched by a failed sync
    civitai.faults.corrupt = False
    cli.run("sync", "--models-root", str(locked))
    assert (locked / CKPT).read_bytes() == good


def test_expired_signed_url_is_re_resolved(
    civitai: CivitaiServer, locked: Path, tmp_path: Path
) -> None:
    from provision.lock.lockfile import Lockfile
    from provision.sources import SourceContext
    from provision.sources.civitai import CivitaiBytes
    from provision.sources.registry import byte_source
    from provision.sync.download import DownloadJob, fetch

    lock = Lockfile.load(tmp_path / "manifests" / "models.lock.json")
    entry = lock.by_path()[CKPT]
    ctx = SourceContext(civitai_url=civitai.api_url, civitai_token=TOKEN)
    source = byte_source(entry.source, ctx, entry.path)
    assert isinstance(source, CivitaiBytes)
    with source.open(0) as response:
        assert response.status_code == 200
    assert source.signed_url is not None  # cached for the resume
    civitai.expire_signed_urls()
    civitai.clear_requests()
    job = DownloadJob(
        key=entry.path,
        dest=locked / entry.path,
        partial=tmp_path / "partial",
        size=entry.size,
        sha256=entry.sha256,
        source=source,
    )
    fetch(job, retry=ctx.retry)
    hosts = [(r.host, r.path.split("/")[1]) for r in civitai.requests]
    assert hosts[0] == ("storage", "file")  # the stale signed URL was tried first ...
    assert ("api", "api") in hosts[1:]  # ... then a fresh one came from the API
    assert (locked / entry.path).stat().st_size == entry.size


def test_kill_9_mid_download_leaves_nothing_visible_and_resumes(
    cli: Cli, civitai: CivitaiServer, locked: Path
) -> None:
    import os
    import signal
    import time

    civitai.faults.throttle_bps = 3_000_000
    proc = cli.popen("sync", "--models-root", str(locked), "--jobs", "1")
    partial_dir = locked / ".sdprov" / "partial"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        sizes = [p.stat().st_size for p in partial_dir.glob("*")] if partial_dir.exists() else []
        if any(s > 1_000_000 for s in sizes):
            break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=10)
    assert CKPT not in _kind_folder_files(locked)  # nothing partial or unverified is visible
    kept = max(p.stat().st_size for p in partial_dir.glob("*"))
    assert kept > 1_000_000
    civitai.faults.throttle_bps = None
    civitai.clear_requests()
    # The killed run's lease is still there, but its process on this host is gone: taken over.
    assert (locked / ".sdprov" / "lease").exists()
    out = cli.run("sync", "--models-root", str(locked))
    assert "sync complete" in out.stderr
    assert any(start >= kept for start in _range_starts(civitai)), _ranges(civitai)
    cli.run("status", "--models-root", str(locked), "--check")


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("require_auth", "requires login"),
        ("early_access", "Early Access until 2031-01-01"),
        ("archived", "archived"),
    ],
)
def test_final_errors_say_what_to_do(
    cli: Cli, civitai: CivitaiServer, tmp_path: Path, setup: str, expected: str
) -> None:
    from tests.fakes import FakeFile, FakeModel, FakeVersion
    from tests.fixtures.modelfiles import make_lora

    path = make_lora(tmp_path / "l.safetensors", "sdxl")
    version = FakeVersion(
        id=501,
        name="v1",
        base_model="SDXL 1.0",
        files=[FakeFile(id=601, name="l.safetensors", content=path, primary=True)],
        require_auth=setup == "require_auth",
        early_access_deadline="2031-01-01T00:00:00.000Z" if setup == "early_access" else None,
    )
    civitai.add(
        FakeModel(
            id=401,
            name="L",
            type="LORA",
            versions=[version],
            mode="Archived" if setup == "archived" else None,
        )
    )
    (tmp_path / "manifests" / "models.yaml").write_text("loras:\n  - civitai: 401@501\n")
    env_without_token = dict(cli.env)
    env_without_token.pop("CIVITAI_TOKEN")
    out = Cli(cwd=cli.cwd, env=env_without_token).run("lock", check=1)
    assert expected in out.stderr
    if setup == "require_auth":
        assert "CIVITAI_TOKEN" in out.stderr
    assert not (tmp_path / "manifests" / "models.lock.json").exists()


def test_ctrl_c_stops_promptly_and_keeps_the_partial(
    cli: Cli, civitai: CivitaiServer, locked: Path
) -> None:
    import signal
    import time

    civitai.faults.throttle_bps = 2_000_000  # the checkpoint alone would take ~5 s
    proc = cli.popen("sync", "--models-root", str(locked), "--jobs", "1")
    partial_dir = locked / ".sdprov" / "partial"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if partial_dir.exists() and any(p.stat().st_size > 500_000 for p in partial_dir.glob("*")):
            break
        time.sleep(0.02)
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=20)
    assert time.monotonic() - started < 5
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert CKPT not in _kind_folder_files(locked)
    assert any(p.stat().st_size > 500_000 for p in partial_dir.glob("*"))
    assert not (locked / ".sdprov" / "lease").exists()  # released on the way out
