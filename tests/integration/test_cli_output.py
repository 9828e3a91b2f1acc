"""The error boundary and the output contract: one message per failure, JSON error objects,
-q/-v on every command, the status table on stdout, hints that fit the source."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakes import CivitaiServer, HfServer
from tests.fixtures.modelfiles import make_vae
from tests.integration.catalog import MANIFEST, build
from tests.integration.conftest import Cli
from tests.integration.test_inspection_gate import plain_http

__all__ = ["plain_http"]  # a fixture, used by name below

# Runs the real CLI with one command replaced by a bug: what a user sees of an internal error.
_BUGGY = """
import sys
import provision.commands.inspect as inspect_command
def run(args, console):
    raise ValueError("boom: unexpected state 42")
inspect_command.run = run
from provision.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _buggy(cli: Cli, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _BUGGY, *args],
        cwd=cli.cwd,
        env=cli.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_internal_error_is_one_line_and_the_traceback_only_under_verbose(
    cli: Cli, tmp_path: Path
) -> None:
    plain = _buggy(cli, "inspect", "x.safetensors")
    assert plain.returncode == 1
    assert plain.stderr.strip().splitlines() == [
        "sdprov: error: internal error (ValueError: boom: unexpected state 42); "
        "rerun with --verbose for the details"
    ]
    verbose = _buggy(cli, "inspect", "x.safetensors", "--verbose")
    assert verbose.returncode == 1 and "Traceback" in verbose.stderr
    log = tmp_path / "debug.log"
    logged = _buggy(cli, "--log-file", str(log), "inspect", "x.safetensors", "--json")
    assert logged.returncode == 1 and "Traceback" not in logged.stderr
    assert "Traceback" in log.read_text() and "boom" in log.read_text()
    error = json.loads(logged.stdout)
    assert error["ok"] is False
    assert error["error"]["type"] == "InternalError" and error["error"]["exit_code"] == 1


def test_json_failures_are_one_error_object(cli: Cli, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.lock.json"
    out = cli.run(
        "sync", "--lock", str(missing), "--models-root", str(tmp_path / "m"), "--json", check=2
    )
    report = json.loads(out.stdout)  # exactly one object: json.loads fails on two
    assert report["ok"] is False
    assert report["error"]["type"] == "LockfileError"
    assert str(missing) in report["error"]["message"]
    assert report["error"]["exit_code"] == 2
    assert "sdprov: error:" in out.stderr  # and the message for a human, on stderr


@pytest.fixture
def synced(cli: Cli, civitai: CivitaiServer, hf: HfServer, tmp_path: Path) -> Path:
    build(tmp_path, civitai, hf)
    (tmp_path / "manifests" / "models.yaml").write_text(MANIFEST)
    cli.run("lock")
    root = tmp_path / "sd" / "models"
    quiet = cli.run("sync", "--models-root", str(root), "-q")
    assert quiet.stderr == "" and quiet.stdout == ""
    return root


def test_status_table_pipes_and_quiet_verbose_work_everywhere(cli: Cli, synced: Path) -> None:
    (synced / "Lora" / "add-detail-xl.safetensors").unlink()
    status = cli.run("status", "--models-root", str(synced))
    rows = [line for line in status.stdout.splitlines() if line.startswith("missing")]
    assert rows == [rows[0]] and "Lora/add-detail-xl.safetensors" in rows[0]  # `| grep missing`
    assert "missing" not in status.stderr.replace("1 missing", "")  # only the count is a message
    for placement in (("-q", "status"), ("status", "-q")):
        args = [*placement, "--models-root", str(synced), "--check"]
        quiet = cli.run(*args, check=1)
        assert quiet.stdout == "" and quiet.stderr == ""  # the exit code says it
    verbose = cli.run("-v", "sync", "--models-root", str(synced))
    assert "DEBUG" in verbose.stderr and "sync complete" in verbose.stderr
    for command in (["lock"], ["inspect", "--help"], ["webui", "args", "--help"]):
        cli.run(*command, "--verbose", check=None if command[0] == "lock" else 0)


def test_url_checksum_mismatch_hint_fits_the_source(
    cli: Cli, tmp_path: Path, plain_http: tuple[str, Path]
) -> None:
    base, www = plain_http
    make_vae(www / "vae.safetensors")
    wrong = "ab" * 32
    (tmp_path / "manifests" / "models.yaml").write_text(
        f"vaes:\n  - url: {base}/vae.safetensors\n    sha256: {wrong}\n"
    )
    cli.run("lock")  # a HEAD gives the size; the sha256 is the manifest's word
    root = tmp_path / "m"
    out = cli.run("sync", "--models-root", str(root), check=1)
    assert "sha256 mismatch" in out.stderr
    assert "fix `sha256:` in the manifest" in out.stderr
    assert "Civitai" not in out.stderr and "--upgrade" not in out.stderr
    assert not (root / "VAE" / "vae.safetensors").exists()


def test_free_space_message_shows_the_margin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from provision.errors import FileSystemError
    from provision.sync import apply as apply_module

    class Plan:
        download_bytes = 5 << 20

    usage = shutil.disk_usage(tmp_path)._replace(free=20 << 20)
    monkeypatch.setattr(shutil, "disk_usage", lambda _: usage)
    with pytest.raises(FileSystemError) as caught:
        apply_module._check_free_space(tmp_path, Plan())  # type: ignore[arg-type]
    message = caught.value.message
    assert "needs 69.0 MiB (5.0 MiB to download plus a 64.0 MiB safety margin)" in message
    assert "20.0 MiB are free" in message
