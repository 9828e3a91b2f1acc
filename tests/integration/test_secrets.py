"""Secrets suite: every command, at the most verbose level and with --json, on success and on
failure, with distinctive CIVITAI_TOKEN, HF_TOKEN and WebUI password values. stdout, stderr,
the debug log file, the lockfile, state, WebUI cache files (every file the run wrote) hold
zero occurrences, and no storage host ever receives an `Authorization` header.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakes import CivitaiServer, HfServer
from tests.fakes_webui.server import Dirs, FakeWebui, Variant
from tests.integration.catalog import MANIFEST, build
from tests.integration.conftest import HF_TOKEN, TOKEN, Cli, Result

WEBUI_USER, WEBUI_PASSWORD = "admin", "webui-pass-Zq8Kx31"
SECRETS = (TOKEN, HF_TOKEN, WEBUI_PASSWORD)


def _leaks(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


def _scan_tree(where: Path) -> list[str]:
    found = []
    for path in where.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found += [f"{path}: {s}" for s in SECRETS if s.encode() in data]
    return found


class Session:
    """Runs commands at --verbose with a debug log file, collecting everything they print."""

    def __init__(self, cli: Cli, tmp_path: Path) -> None:
        self.cli = Cli(cli.cwd, {**cli.env, "SDPROV_WEBUI_AUTH": f"{WEBUI_USER}:{WEBUI_PASSWORD}"})
        self.log = tmp_path / "logs" / "debug.log"
        self.log.parent.mkdir(exist_ok=True)
        self.outputs: list[Result] = []

    def run(self, *args: str, check: int | None = 0) -> Result:
        result = self.cli.run("--verbose", "--log-file", str(self.log), *args, check=check)
        assert not _leaks(result.stdout + result.stderr), args
        self.outputs.append(result)
        return result


@pytest.mark.slow
def test_no_command_leaks_a_secret(
    cli: Cli, civitai: CivitaiServer, hf: HfServer, tmp_path: Path
) -> None:
    build(tmp_path, civitai, hf)
    manifest = tmp_path / "manifests" / "models.yaml"
    manifest.write_text(MANIFEST)
    root = tmp_path / "sd" / "models"
    s = Session(cli, tmp_path)

    # Failures first: their messages and tracebacks (in the debug log) are where leaks hide.
    civitai.faults.fail("api", 401, times=50)
    s.run("lock", "--json", check=1)
    civitai.faults.clear()
    civitai.faults.fail("api", 503, times=50, retry_after="0")
    s.run("lock", check=1)
    civitai.faults.clear()

    s.run("lock")
    s.run("lock", "--check", "--json")
    civitai.faults.fail("storage", 403, times=50)
    s.run("sync", "--models-root", str(root), "--json", check=1)
    civitai.faults.clear()
    civitai.faults.reset_after(100_000, times=2)
    s.run("sync", "--models-root", str(root), "--jobs", "1")

    dirs = Dirs.under(root, tmp_path / "sd")
    for folder in (dirs.ckpt, dirs.vae, dirs.lora, dirs.embeddings, dirs.hypernetworks):
        folder.mkdir(parents=True, exist_ok=True)
    with FakeWebui(
        Variant.A1111_110, dirs, auth=(WEBUI_USER, WEBUI_PASSWORD), model_width=2048
    ) as webui:
        s.run("sync", "--models-root", str(root), "--webui", webui.url, "--json")
        s.run("status", "--models-root", str(root), "--webui", webui.url, "--json")
        s.run("status", "--models-root", str(root), "--webui", webui.url, "--check")
    with FakeWebui(
        Variant.A1111_110, dirs, auth=(WEBUI_USER, "another-password"), model_width=2048
    ) as webui:
        s.run("sync", "--models-root", str(root), "--webui", webui.url, "--json", check=1)
        s.run("status", "--models-root", str(root), "--webui", webui.url, check=None)

    s.run("inspect", *(str(p) for p in sorted((tmp_path / "catalog").iterdir())), "--json")
    s.run("webui", "args", "--models-root", str(root), "--auth", "--json")
    s.run("webui", "args", "--models-root", str(root), "--data-dir", str(tmp_path / "sd"))
    s.run("webui", "seed-cache", "--models-root", str(root), "--data-dir", str(tmp_path / "sd"))
    s.run(
        "webui",
        "seed-cache",
        "--models-root",
        str(root),
        "--data-dir",
        str(tmp_path / "sd"),
        "--json",
    )

    log_text = s.log.read_text()
    assert "DEBUG" in log_text  # the log really is at the most verbose level
    assert "Traceback" not in "".join(r.stderr for r in s.outputs)
    assert (tmp_path / "manifests" / "models.lock.json").exists()
    assert (root / ".sdprov" / "state.json").exists()
    assert (tmp_path / "sd" / "cache.json").exists()
    assert _scan_tree(tmp_path) == []  # lockfile, state, cache, log, partials, everything
    storage_auth = [r for r in civitai.requests if r.host != "api" and "authorization" in r.headers]
    assert storage_auth == []
    assert [r for r in hf.requests if r.host == "cdn" and "authorization" in r.headers] == []


def test_scrubber_cuts_every_given_secret() -> None:
    from provision.console import Secrets

    secrets = Secrets(
        {"CIVITAI_TOKEN": TOKEN, "HF_TOKEN": HF_TOKEN, "SDPROV_WEBUI_AUTH": f"u:{WEBUI_PASSWORD}"}
    )
    text = f"GET https://x/?token={TOKEN} Bearer {HF_TOKEN} pw={WEBUI_PASSWORD}"
    assert _leaks(secrets.scrub(text)) == []
    assert secrets.scrub("nothing secret") == "nothing secret"
