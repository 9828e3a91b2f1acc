"""`sdprov sync --shard I/N`: N real worker processes on one models root.

Each case starts the workers at once against the loopback HF fake (CDN slowed so they overlap),
then checks every file in place by re-hashing it (`status --verify`), that the CDN served each
file exactly once (two workers on one file would fetch it twice), that no partial or claim is
left, and that a plain `sync` afterwards sends no request and hashes nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.fakes import HfServer
from tests.fixtures.modelfiles import lora_tensors, write_safetensors
from tests.integration.conftest import Cli

REPO = "team/loras"
# Wildly different sizes: one file is a third of the whole, most are tiny.
SIZES = [3_000_000, 1_500_000, 900_000, 600_000, 400_000, 250_000, 120_000, 60_000, 30_000,
         15_000, 8_000, 4_000, 2_000, 1_000]  # fmt: skip


def _build(tmp: Path, hf: HfServer) -> list[str]:
    names = []
    src = tmp / "catalog"
    for i, pad in enumerate(SIZES):
        name = f"style_{i:02d}.safetensors"
        tensors = dict(lora_tensors("sd1", "LoRA")) | {"pad": ("U8", (pad,))}
        write_safetensors(src / name, tensors)
        hf.add_file(REPO, name, src / name)
        names.append(name)
    manifest = "loras:\n" + "".join(f"  - hf: {REPO}/{n}\n" for n in names)
    (tmp / "manifests").mkdir(exist_ok=True)
    (tmp / "manifests" / "models.yaml").write_text(manifest)
    return [f"Lora/{n}" for n in names]


@pytest.fixture
def paths(cli: Cli, hf: HfServer, tmp_path: Path) -> list[str]:
    names = _build(tmp_path, hf)
    cli.run("lock")
    hf.clear_requests()
    return names


def _root(cli: Cli) -> Path:
    return cli.cwd / "sd" / "models"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _cdn_gets(hf: HfServer) -> Counter[str]:
    return Counter(
        r.path.rsplit("/", 1)[-1] for r in hf.requests if r.host == "cdn" and r.method == "GET"
    )


def _wait_all(procs: list[subprocess.Popen[str]]) -> list[tuple[int, str]]:
    out = []
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert "Traceback" not in err, err
        out.append((proc.returncode, err))
    return out


def _assert_no_op_afterwards(cli: Cli, hf: HfServer, root: Path, paths: list[str]) -> None:
    hf.clear_requests()
    done = cli.run("sync", "--models-root", str(root), "--json")
    report = json.loads(done.stdout)
    assert report["downloaded"] == [] and report["adopted"] == [], report
    assert sorted(report["kept"]) == sorted(paths)
    assert hf.requests == []  # no request at all
    state = json.loads((root / ".sdprov" / "state.json").read_text())["placed"]
    assert set(state) == set(paths)  # the shards' records were folded in
    assert not (root / ".sdprov" / "shards").exists() or not list(
        (root / ".sdprov" / "shards").iterdir()
    )
    assert list((root / ".sdprov" / "partial").iterdir()) == []
    assert list((root / ".sdprov" / "claims").iterdir()) == []
    cli.run("status", "--models-root", str(root), "--verify", "--check")


@pytest.mark.parametrize("count", [2, 3, pytest.param(5, marks=pytest.mark.slow)])
def test_workers_split_one_lock_and_fetch_each_file_once(
    cli: Cli, hf: HfServer, paths: list[str], count: int
) -> None:
    root = _root(cli)
    hf.faults.throttle_bps = 8_000_000
    procs = [
        cli.popen("sync", "--models-root", str(root), "--shard", f"{i}/{count}", "--jobs", "2")
        for i in range(count)
    ]
    results = _wait_all(procs)
    assert [code for code, _ in results] == [0] * count, results
    hf.faults.throttle_bps = None
    gets = _cdn_gets(hf)
    # The CDN serves by content hash: one GET per file, by its sha256.
    assert sorted(gets) == sorted(_sha(cli.cwd / "catalog" / Path(p).name) for p in paths), gets
    assert set(gets.values()) == {1}, gets  # every file fetched exactly once
    for path in paths:  # placed by some worker, never a partial in a kind folder
        assert (root / path).is_file()
    assert sorted(p.name for p in (root / "Lora").iterdir()) == sorted(
        p.split("/", 1)[1] for p in paths
    )
    shard_files = sorted(p.name for p in (root / ".sdprov" / "shards").iterdir())
    assert shard_files == [f"{i}of{count}.json" for i in range(count)]
    placed: set[str] = set()
    for name in shard_files:
        record = json.loads((root / ".sdprov" / "shards" / name).read_text())
        assert record["finished"] is True
        assert not placed & set(record["placed"])  # no file placed by two workers
        placed |= set(record["placed"])
    assert placed == set(paths)
    _assert_no_op_afterwards(cli, hf, root, paths)


@pytest.mark.slow
def test_killed_worker_files_are_finished_by_the_next_run(
    cli: Cli, hf: HfServer, paths: list[str]
) -> None:
    root = _root(cli)
    hf.faults.throttle_bps = 1_000_000
    # Worker 0 of 2 owns the largest file (3 MB: 3 s at this pace); kill it mid-way.
    victim = cli.popen("sync", "--models-root", str(root), "--shard", "0/2", "--jobs", "1")
    other = cli.popen("sync", "--models-root", str(root), "--shard", "1/2", "--jobs", "1")
    partial = root / ".sdprov" / "partial"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if partial.is_dir() and any(p.stat().st_size > 500_000 for p in partial.iterdir()):
            break
        time.sleep(0.01)
    else:
        pytest.fail("no partial grew")
    os.kill(victim.pid, signal.SIGKILL)
    victim.communicate(timeout=10)
    assert _wait_all([other])[0][0] == 0
    claims = list((root / ".sdprov" / "claims").iterdir())
    assert claims, "the killed worker's claim stays until someone takes it over"
    # Status while the dead worker's record is there: its progress, not running.
    shown = json.loads(cli.run("status", "--models-root", str(root), "--json").stdout)
    shards = {s["shard"]: s for s in shown["shards"]}
    assert shards["0/2"]["running"] is False and shards["0/2"]["finished"] is False
    assert shards["1/2"]["finished"] is True
    assert shards["1/2"]["placed"] == shards["1/2"]["files"]
    assert any(not (root / p).exists() for p in paths)
    hf.faults.throttle_bps = None
    hf.clear_requests()
    started = time.monotonic()
    cli.run("sync", "--models-root", str(root))
    assert time.monotonic() - started < 30  # the dead pid's 60 s claim was not waited out
    ranges = [r.headers.get("range", "") for r in hf.requests if r.host == "cdn"]
    assert any(r.startswith("bytes=") and r != "bytes=0-" for r in ranges), ranges  # resumed
    _assert_no_op_afterwards(cli, hf, root, paths)


def test_status_shows_each_running_shard(cli: Cli, hf: HfServer, paths: list[str]) -> None:
    root = _root(cli)
    hf.faults.throttle_bps = 1_500_000
    procs = [
        cli.popen("sync", "--models-root", str(root), "--shard", f"{i}/2", "--jobs", "1")
        for i in range(2)
    ]
    seen: dict[str, dict[str, object]] = {}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(seen) < 2:
        shown = cli.run("status", "--models-root", str(root))
        for line in shown.stderr.splitlines():
            if line.strip().startswith("shard ") and "running" in line:
                seen[line.split()[1].rstrip(":")] = {"line": line}
        time.sleep(0.2)
    hf.faults.throttle_bps = None
    results = _wait_all(procs)
    assert [code for code, _ in results] == [0, 0], results
    assert set(seen) == {"0/2", "1/2"}, seen
    assert all("placed" in str(v["line"]) for v in seen.values())
    final = json.loads(cli.run("status", "--models-root", str(root), "--json").stdout)
    assert sum(int(s["placed"]) for s in final["shards"]) == len(paths)
    assert all(s["finished"] and not s["running"] for s in final["shards"])
