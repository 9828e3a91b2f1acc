"""kill -9 anywhere in a sync never loses a good file, shows a bad one, or lies in the state.

The synced root has a LoRA and an embedding; the new lock renames the embedding (a move),
drops the LoRA (a removal) and adds a 10 MB checkpoint, another LoRA and a VAE (downloads). Each case copies that root, runs
the sync and kills it with SIGKILL, either at a named point (`SDPROV_CRASH_AT`, see
provision.sync.state.crash_point: after verifying, after placing, while saving the state, after
a move or a removal) or at a random moment of a download slowed by the fake CDN. After each
kill: every file in a kind folder holds bytes some lock vouches for, at a path some lock names;
every good file still exists somewhere; every state record matches the disk. Then the next run
completes, resumes a partial download with Range, and the root verifies.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from provision.sync.card_content import SUFFIXES
from tests.fakes import CivitaiServer, HfServer
from tests.integration.catalog import build
from tests.integration.conftest import Cli

BASE = """\
loras:
  - civitai: 122359@135000
embeddings:
  - civitai: urn:air:sdxl:embedding:civitai:7808@9208
"""
NEW = """\
checkpoints:
  - civitai: 133005@288982
loras:
  - civitai: 122359@135867
    name: add_detail_v2
embeddings:
  - civitai: urn:air:sdxl:embedding:civitai:7808@9208
    name: negative_renamed
vaes:
  - hf: madebyollin/sdxl-vae-fp16-fix/sdxl_vae.safetensors
"""
NAMED = [
    "verified:1", "verified:2", "verified:3",
    "placed:1", "placed:2", "placed:3", "placed:4",
    "state-save:1", "state-save:2",  # saves are grouped: after the move, at the end of apply
    "moved:1", "removed:1",
]  # fmt: skip
RANDOM_KILLS = 10
pytestmark = pytest.mark.slow


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _entries(lock: Path) -> dict[str, str]:
    return {m["path"]: m["sha256"] for m in json.loads(lock.read_text())["models"]}


CARD_SUFFIXES = tuple(SUFFIXES.values())


def _kind_files(root: Path) -> dict[str, Path]:
    """Every model file in the kind folders (the model cards beside them are not models)."""
    return {
        p.relative_to(root).as_posix(): p
        for p in root.rglob("*")
        if p.is_file()
        and ".sdprov" not in p.relative_to(root).parts
        and not p.name.endswith(CARD_SUFFIXES)
    }


class Scenario:
    def __init__(self, cli: Cli, civitai: CivitaiServer, hf: HfServer, tmp: Path) -> None:
        self.cli, self.civitai, self.hf, self.tmp = cli, civitai, hf, tmp
        build(tmp, civitai, hf)
        manifests = tmp / "manifests"
        (manifests / "base.yaml").write_text(BASE)
        (manifests / "new.yaml").write_text(NEW)
        cli.run("lock", "manifests/base.yaml")
        cli.run("lock", "manifests/new.yaml")
        self.base_lock = manifests / "base.lock.json"
        self.new_lock = manifests / "new.lock.json"
        self.synced = tmp / "synced"
        cli.run("sync", "--lock", str(self.base_lock), "--models-root", str(self.synced))
        self.old, self.new = _entries(self.base_lock), _entries(self.new_lock)
        self.good = set(self.old.values()) | set(self.new.values())

    def fresh_root(self, name: str) -> Path:
        root = self.tmp / name
        shutil.copytree(self.synced, root)  # copy2: mtimes kept, so the state still trusts them
        return root

    def check_after_kill(self, root: Path) -> None:
        paths = set(self.old) | set(self.new)
        for rel, path in _kind_files(root).items():
            assert rel in paths, f"{rel}: a file no lock names is in a kind folder"
            assert _sha(path) in self.good, f"{rel}: unverified bytes in a kind folder"
        present = {_sha(p) for p in _kind_files(root).values()}
        kept = {sha for path, sha in self.old.items() if sha in self.new.values()}
        assert kept <= present, "a good file was lost"
        state = json.loads((root / ".sdprov" / "state.json").read_text())["placed"]
        for rel, record in state.items():
            path = root / rel
            if not path.exists():
                # Only a removal or move between its rename/unlink and the state save.
                assert rel in self.old and rel not in self.new, f"{rel}: recorded but gone"
                continue
            stat = path.stat()
            assert (stat.st_size, stat.st_mtime_ns) == (record["size"], record["mtime_ns"]), rel
            assert _sha(path) == record["sha256"], f"{rel}: the state vouches for other bytes"

    def recover(self, root: Path) -> None:
        out = self.cli.run("sync", "--lock", str(self.new_lock), "--models-root", str(root))
        assert "sync complete" in out.stderr
        self.cli.run(
            "status", "--lock", str(self.new_lock), "--models-root", str(root), "--verify",
            "--check",
        )  # fmt: skip
        assert set(_kind_files(root)) == set(self.new)
        state = json.loads((root / ".sdprov" / "state.json").read_text())["placed"]
        assert set(state) == set(self.new)
        assert list((root / ".sdprov" / "partial").iterdir()) == []


@pytest.fixture
def scenario(cli: Cli, civitai: CivitaiServer, hf: HfServer, tmp_path: Path) -> Scenario:
    return Scenario(cli, civitai, hf, tmp_path)


def _partials(root: Path) -> Iterator[tuple[str, int]]:
    folder = root / ".sdprov" / "partial"
    if folder.is_dir():
        for p in folder.iterdir():
            yield p.name, p.stat().st_size


def test_kill_at_named_points(scenario: Scenario) -> None:
    for i, point in enumerate(NAMED):
        root = scenario.fresh_root(f"named{i}")
        env = scenario.cli.env | {"SDPROV_CRASH_AT": point}
        proc = Cli(scenario.cli.cwd, env).popen(
            "sync", "--lock", str(scenario.new_lock), "--models-root", str(root), "--jobs", "1"
        )
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL, f"{point} never reached: {err}"
        scenario.check_after_kill(root)
        scenario.recover(root)
        scenario.check_after_kill(root)


def test_kill_at_random_moments_of_slow_downloads(scenario: Scenario) -> None:
    rng = random.Random(8)  # reproducible kill moments
    killed = resumed = 0
    for i in range(RANDOM_KILLS):
        root = scenario.fresh_root(f"random{i}")
        scenario.civitai.faults.throttle_bps = 4_000_000  # the checkpoint takes about 2.5 s
        proc = scenario.cli.popen(
            "sync", "--lock", str(scenario.new_lock), "--models-root", str(root), "--jobs", "2"
        )
        time.sleep(rng.uniform(0.5, 2.8))
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
        killed += proc.returncode == -signal.SIGKILL
        scenario.check_after_kill(root)
        kept = dict(_partials(root))
        scenario.civitai.faults.throttle_bps = None
        scenario.civitai.clear_requests()
        scenario.recover(root)
        ranges = [
            int(r.headers["range"][6:].split("-")[0])
            for r in scenario.civitai.requests
            if r.host == "storage" and r.headers.get("range", "").startswith("bytes=")
        ]
        if any(size > 0 for size in kept.values()):
            resumed += any(start >= min(s for s in kept.values() if s) for start in ranges)
    assert killed >= RANDOM_KILLS - 2, killed  # nearly every kill landed mid-sync
    assert resumed >= 1  # at least one partial was resumed, not restarted
