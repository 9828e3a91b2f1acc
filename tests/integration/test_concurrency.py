"""Several `sdprov sync` processes on one models root: one writer at a time, nothing lost.

Each case starts the processes at once against a slowed CDN and watches the lease file while
they run. Afterwards every locked file is re-hashed in place (`status --verify`), the state
lists exactly the placed files, no partial is left, and each file was fetched exactly once (two
writers would have fetched it twice).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.fakes import CivitaiServer, HfServer
from tests.integration.catalog import MANIFEST, build
from tests.integration.conftest import Cli

PATHS = {
    "Stable-diffusion/juggernaut_xl_v9.safetensors",
    "Lora/add-detail-xl.safetensors",
    "embeddings/negative_xl.safetensors",
    "VAE/sdxl_vae.safetensors",
}
HELD = "another sdprov sync is writing to"


@pytest.fixture
def root(cli: Cli, civitai: CivitaiServer, hf: HfServer, tmp_path: Path) -> Path:
    build(tmp_path, civitai, hf)
    (tmp_path / "manifests" / "models.yaml").write_text(MANIFEST)
    cli.run("lock")
    civitai.clear_requests()
    hf.clear_requests()
    return tmp_path / "sd" / "models"


class LeaseWatch:
    """Records the owner of the lease file every few milliseconds while syncs run."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.owners: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> LeaseWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            try:
                owner = json.loads(self.path.read_text())["owner"]
            except (OSError, ValueError, KeyError):
                continue
            if not self.owners or self.owners[-1] != owner:
                self.owners.append(owner)

    def assert_one_writer_at_a_time(self) -> None:
        # A lease handed back and forth (A, B, A) would mean two live writers.
        assert len(self.owners) == len(set(self.owners)), self.owners


def _communicate(procs: list[subprocess.Popen[str]]) -> list[tuple[int, str]]:
    results = []
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert "Traceback" not in err, err
        results.append((proc.returncode, err))
    return results


def _assert_complete(cli: Cli, civitai: CivitaiServer, hf: HfServer, root: Path) -> None:
    cli.run("status", "--models-root", str(root), "--verify", "--check")
    state = json.loads((root / ".sdprov" / "state.json").read_text())["placed"]
    assert set(state) == PATHS  # nothing lost, nothing orphaned
    assert list((root / ".sdprov" / "partial").iterdir()) == []
    assert not (root / ".sdprov" / "lease").exists()
    storage = [r for r in civitai.requests if r.host == "storage" and r.method == "GET"]
    cdn = [r for r in hf.requests if r.host == "cdn" and r.method == "GET"]
    assert len(storage) == 3 and len(cdn) == 1, (storage, cdn)


@pytest.mark.parametrize("wait", [False, True], ids=["fail-fast", "lease-wait"])
@pytest.mark.parametrize("count", [2, 5])
def test_syncs_started_at_once_take_turns(
    cli: Cli, civitai: CivitaiServer, hf: HfServer, root: Path, count: int, wait: bool
) -> None:
    civitai.faults.throttle_bps = 6_000_000
    extra = ["--lease-wait", "90"] if wait else []
    with LeaseWatch(root / ".sdprov" / "lease") as watch:
        procs = [
            cli.popen("sync", "--models-root", str(root), "--jobs", "2", *extra)
            for _ in range(count)
        ]
        results = _communicate(procs)
    codes = [code for code, _ in results]
    assert codes.count(0) >= 1, results
    for code, err in results:
        if wait:
            assert code == 0, err
        elif code != 0:
            assert code == 1 and HELD in err and "pid" in err, err
    watch.assert_one_writer_at_a_time()
    civitai.faults.throttle_bps = None
    _assert_complete(cli, civitai, hf, root)


def test_lease_of_a_killed_sync_is_taken_over_at_once(
    cli: Cli, civitai: CivitaiServer, hf: HfServer, root: Path
) -> None:
    civitai.faults.throttle_bps = 2_000_000
    victim = cli.popen("sync", "--models-root", str(root), "--jobs", "1")
    partial = root / ".sdprov" / "partial"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if partial.is_dir() and any(p.stat().st_size > 300_000 for p in partial.iterdir()):
            break
        time.sleep(0.01)
    os.kill(victim.pid, signal.SIGKILL)
    victim.communicate(timeout=10)
    assert (root / ".sdprov" / "lease").exists()
    civitai.faults.throttle_bps = None
    civitai.clear_requests()
    hf.clear_requests()
    started = time.monotonic()
    results = _communicate(
        [cli.popen("sync", "--models-root", str(root), "--lease-wait", "30") for _ in range(2)]
    )
    assert [code for code, _ in results] == [0, 0], results
    assert time.monotonic() - started < 25  # the dead pid's 60 s lease was not waited out
    cli.run("status", "--models-root", str(root), "--verify", "--check")
    ranges = [r.headers.get("range", "") for r in civitai.requests if r.host == "storage"]
    assert any(r.startswith("bytes=") and r != "bytes=0-" for r in ranges), ranges


def test_lease_of_another_host_is_taken_over_only_after_expiry(cli: Cli, root: Path) -> None:
    lease = root / ".sdprov" / "lease"
    lease.parent.mkdir(parents=True)
    other = f"not-{socket.gethostname()}"
    expires = time.time() + 4
    lease.write_text(json.dumps({"owner": f"{other}:1:x", "host": other, "pid": 1,
                                 "expires": expires}))  # fmt: skip
    refused = cli.run("sync", "--models-root", str(root), check=1)
    assert HELD in refused.stderr and other in refused.stderr
    assert not (root / "Lora").exists()
    cli.run("sync", "--models-root", str(root), "--lease-wait", "30")
    assert time.time() >= expires
    cli.run("status", "--models-root", str(root), "--check")
