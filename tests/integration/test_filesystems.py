"""File systems that say no: a root that is a file, read-only mounts, a disk that fills up
mid-download, names too long for the file system, and the modes files are written with.

Each ends in one message naming the path and what to do, the right exit code, no traceback,
nothing partial in a kind folder and every good file intact.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.fakes import CivitaiServer, HfServer
from tests.integration.catalog import MANIFEST, build
from tests.integration.conftest import Cli

CKPT = "Stable-diffusion/juggernaut_xl_v9.safetensors"


@contextmanager
def tmpfs(where: Path, size: str) -> Iterator[Path]:
    """A small tmpfs mounted at `where` (the test is skipped where mounting is impossible)."""
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN): {mounted.stderr}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def remount_read_only(where: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(where)], check=True)


@pytest.fixture
def locked(cli: Cli, civitai: CivitaiServer, hf: HfServer, tmp_path: Path) -> Path:
    build(tmp_path, civitai, hf)
    (tmp_path / "manifests" / "models.yaml").write_text(MANIFEST)
    cli.run("lock")
    return tmp_path / "manifests" / "models.lock.json"


def kind_folder_files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and ".sdprov" not in p.parts
    }


def one_message(stderr: str) -> str:
    errors = [line for line in stderr.splitlines() if line.startswith("sdprov: error:")]
    assert errors, stderr
    return "\n".join(errors)


def test_models_root_that_is_a_file(cli: Cli, locked: Path, tmp_path: Path) -> None:
    root = tmp_path / "models.txt"
    root.write_text("not a folder\n")
    for command in ("sync", "status"):
        out = cli.run(command, "--models-root", str(root), check=None)
        assert out.code in (1, 2), out
        message = one_message(out.stderr)
        assert str(root) in message and "not a folder" in message, out.stderr
    assert root.read_text() == "not a folder\n"


def test_read_only_root_keeps_every_good_file(cli: Cli, locked: Path, tmp_path: Path) -> None:
    with tmpfs(tmp_path / "ro", "128m") as root:
        cli.run("sync", "--models-root", str(root))
        before = kind_folder_files(root)
        assert CKPT in before
        (root / CKPT).unlink()  # something to do, on a file system that now refuses it
        remount_read_only(root)
        out = cli.run("sync", "--models-root", str(root), "--json", check=1)
        message = one_message(out.stderr)
        assert "read-only" in message and str(root) in message, out.stderr
        error = json.loads(out.stdout)["error"]
        assert error["path"].startswith(str(root)) and "read-only" in error["message"]
        after = kind_folder_files(root)
        assert after == {k: v for k, v in before.items() if k != CKPT}


def test_unwritable_webui_data_dir(cli: Cli, locked: Path, tmp_path: Path) -> None:
    root = tmp_path / "sd" / "models"
    cli.run("sync", "--models-root", str(root))
    with tmpfs(tmp_path / "data", "1m") as data:
        remount_read_only(data)
        out = cli.run(
            "webui",
            "seed-cache",
            "--models-root",
            str(root),
            "--data-dir",
            str(data),
            "--log-file",
            str(tmp_path / "debug.log"),
            check=1,
        )
        message = one_message(out.stderr)
        assert str(data) in message and "read-only" in message, out.stderr
        assert "Traceback" in (tmp_path / "debug.log").read_text()  # details where asked for
        assert "hint:" in out.stderr


def _fill(ballast: Path, *, leave: int) -> None:
    """Write zeros until `leave` bytes are free (or the disk is full: the sync writes too)."""
    block = b"\0" * (1 << 20)
    with ballast.open("wb", buffering=0) as fh:
        while (left := shutil.disk_usage(ballast.parent).free - leave) > 0:
            try:
                fh.write(block[: min(left, len(block))])
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                return


@pytest.mark.slow
def test_disk_full_mid_download(
    cli: Cli, civitai: CivitaiServer, locked: Path, tmp_path: Path
) -> None:
    with tmpfs(tmp_path / "small", "100m") as root:
        civitai.faults.throttle_bps = 2_000_000
        proc = cli.popen("sync", "--models-root", str(root), "--jobs", "1", "--json")
        partial_dir = root / ".sdprov" / "partial"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if partial_dir.exists() and any(
                p.stat().st_size > 300_000 for p in partial_dir.iterdir()
            ):
                break
            time.sleep(0.02)
        # Another program fills the disk while the download runs.
        ballast = root / "ballast.bin"
        try:
            _fill(ballast, leave=128 << 10)
        finally:
            report, err = proc.communicate(timeout=60)
        assert proc.returncode == 1, err
        assert "Traceback" not in err
        message = one_message(err)
        assert "disk filled up" in message and str(partial_dir) in message, err
        assert "more are needed" in message and "are free" in message
        errors = json.loads(report)["errors"]
        assert errors and all(e["type"] == "FileSystemError" for e in errors.values())
        assert all(e["path"].startswith(str(partial_dir)) for e in errors.values())
        placed = kind_folder_files(root)
        placed.pop("ballast.bin")
        for path in placed:  # whatever is in a kind folder is complete and verified
            assert not path.endswith((".tmp", ".partial")), path
        assert any(p.stat().st_size for p in partial_dir.iterdir())  # progress kept

        ballast.unlink()
        civitai.faults.throttle_bps = None
        cli.run("sync", "--models-root", str(root))
        cli.run("status", "--models-root", str(root), "--check")


def test_name_too_long_for_the_file_system(cli: Cli, locked: Path, tmp_path: Path) -> None:
    raw = json.loads(locked.read_text())
    long_name = "x" * 300
    for model in raw["models"]:
        if model["kind"] == "lora":
            model["path"] = f"Lora/{long_name}.safetensors"
            model["name"] = long_name
    bad_lock = tmp_path / "long.lock.json"
    bad_lock.write_text(json.dumps(raw, indent=2))
    root = tmp_path / "sd" / "models"
    out = cli.run("sync", "--lock", str(bad_lock), "--models-root", str(root), check=None)
    assert out.code in (1, 2), out
    message = one_message(out.stderr)
    assert "too long" in message and long_name[:50] in message, out.stderr
    assert "name:" in out.stderr  # what to do: a shorter `name:`
    assert not any(".sdprov" in p or p.endswith(".tmp") for p in kind_folder_files(root))


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_honour_the_umask(
    cli: Cli, civitai: CivitaiServer, hf: HfServer, tmp_path: Path, umask: int, mode: int
) -> None:
    build(tmp_path, civitai, hf)
    (tmp_path / "manifests" / "models.yaml").write_text(MANIFEST)
    root, data = tmp_path / "sd" / "models", tmp_path / "sd"
    old = os.umask(umask)  # inherited by the CLI subprocesses
    try:
        cli.run("lock")
        cli.run("sync", "--models-root", str(root))
        cli.run("webui", "seed-cache", "--models-root", str(root), "--data-dir", str(data))
    finally:
        os.umask(old)
    written = [
        tmp_path / "manifests" / "models.lock.json",
        root / ".sdprov" / "state.json",
        data / "cache.json",
        root / CKPT,
    ]
    for path in written:
        assert path.stat().st_mode & 0o777 == mode, (path, oct(path.stat().st_mode))
