"""The terminal path, run the way a user runs it: on a pseudo-terminal, with Ctrl-C typed.

No other test sees rich's display (their stderr is a pipe), which is how an IndexError in the
progress bars shipped: any lock with more files than --jobs crashed on a terminal.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from tests.fakes import CivitaiServer, FakeFile, FakeModel, FakeVersion, HfServer
from tests.fixtures.modelfiles import make_lora
from tests.integration.catalog import MANIFEST, build
from tests.integration.conftest import HF_TOKEN, TOKEN, Cli
from tests.integration.terminal import start_in_pty

CKPT = "Stable-diffusion/juggernaut_xl_v9.safetensors"
LORAS = 12


def _twelve_loras(tmp_path: Path, civitai: CivitaiServer) -> None:
    lines = ["options:", "  base_check: warn", "loras:"]
    for i in range(LORAS):
        path = make_lora(tmp_path / "src" / f"l{i}.safetensors", "sdxl", metadata={"seq": str(i)})
        civitai.add(
            FakeModel(
                id=9000 + i,
                name=f"L{i}",
                type="LORA",
                versions=[
                    FakeVersion(
                        id=9100 + i,
                        name="v1",
                        base_model="SDXL 1.0",
                        files=[FakeFile(id=9200 + i, name=f"l{i}.safetensors", content=path)],
                    )
                ],
            )
        )
        lines += [f"  - civitai: {9000 + i}@{9100 + i}", f"    name: lora_{i:02d}"]
    (tmp_path / "manifests" / "models.yaml").write_text("\n".join(lines) + "\n")


def _clean(output: str) -> None:
    assert "Traceback" not in output, output
    assert TOKEN not in output and HF_TOKEN not in output


def test_sync_and_lock_on_a_terminal_with_more_files_than_jobs(
    cli: Cli, civitai: CivitaiServer, tmp_path: Path
) -> None:
    _twelve_loras(tmp_path, civitai)
    lock = start_in_pty(cli.cwd, cli.env, "lock", "--jobs", "3")
    assert lock.wait(timeout=60) == 0, lock.text
    _clean(lock.raw)
    assert "wrote manifests/models.lock.json (12 models" in lock.text

    root = tmp_path / "sd" / "models"
    civitai.faults.throttle_bps = 2_000_000  # long enough for several refreshes per file
    run = start_in_pty(cli.cwd, cli.env, "sync", "--models-root", str(root), "--jobs", "3")
    code = run.wait(timeout=90)
    text = run.text
    assert code == 0, text
    _clean(run.raw)
    assert "total (12 files)" in text
    assert "━" in run.raw  # rich drew bars
    assert re.search(r"\d+\.\d/\d+\.\d (KiB|MiB)", text), text  # IEC units in the columns
    assert " kB" not in text and " MB/s" not in text  # never the decimal family
    finished = {line.split()[-1] for line in text.splitlines() if "✓ downloaded" in line}
    assert finished == {f"Lora/lora_{i:02d}.safetensors" for i in range(LORAS)}
    assert "sync complete: 12 downloaded" in text
    assert len(list((root / "Lora").glob("*.safetensors"))) == LORAS  # beside their cards


@pytest.fixture
def locked(cli: Cli, civitai: CivitaiServer, hf: HfServer, tmp_path: Path) -> Path:
    build(tmp_path, civitai, hf)
    (tmp_path / "manifests" / "models.yaml").write_text(MANIFEST)
    cli.run("lock")
    civitai.clear_requests()
    return tmp_path / "sd" / "models"


@pytest.mark.slow
def test_ctrl_c_on_a_slow_link_stops_within_2s_and_the_next_run_resumes(
    cli: Cli, civitai: CivitaiServer, locked: Path
) -> None:
    import time

    civitai.faults.throttle_bps = 400_000  # a slow link: ~25 s for the checkpoint
    run = start_in_pty(cli.cwd, cli.env, "sync", "--models-root", str(locked), "--jobs", "1")
    partial_dir = locked / ".sdprov" / "partial"

    def partial_bytes() -> int:
        return max((p.stat().st_size for p in partial_dir.glob("*")), default=0)

    assert run.until(lambda: partial_bytes() > 200_000, timeout=30), run.text
    # The display moves on a slow link: at 400 kB/s several distinct byte counts show within
    # 2 s (a 4 MiB read buffer used to freeze it for ~10 s).
    began = len(run.chunks)
    run.pump(2.0)
    shown = b"".join(c for _, c in run.chunks[began:]).decode("utf-8", "replace")
    assert len(set(re.findall(r"(\d+\.\d)/\d+\.\d MiB", shown))) >= 3, shown
    times = [t for t, _ in run.chunks[began:]]
    assert times and max(b - a for a, b in itertools.pairwise(times)) < 0.75

    typed = time.monotonic()
    run.type(b"\x03")
    code = run.wait(timeout=10)
    elapsed = time.monotonic() - typed
    assert code == 130, run.text
    assert elapsed < 2.0, elapsed
    _clean(run.raw)
    assert "interrupted" in run.text
    kept = partial_bytes()
    assert kept > 200_000
    assert not (locked / CKPT).exists()
    assert not (locked / ".sdprov" / "lease").exists()

    civitai.faults.throttle_bps = None
    civitai.clear_requests()
    cli.run("sync", "--models-root", str(locked))
    ranges = [r.headers.get("range", "") for r in civitai.requests if r.host == "storage"]
    assert any(r.startswith("bytes=") and int(r[6:].split("-")[0]) >= kept for r in ranges)
    cli.run("status", "--models-root", str(locked), "--check")


def test_ctrl_c_twice_during_lock_exits_130_without_a_traceback(
    cli: Cli, civitai: CivitaiServer, hf: HfServer, tmp_path: Path
) -> None:
    import time

    build(tmp_path, civitai, hf)
    (tmp_path / "manifests" / "models.yaml").write_text(MANIFEST)
    # Every API call answers 503 with Retry-After: 30: the resolvers sleep in their retries.
    civitai.faults.fail("api", 503, times=1000, retry_after="30")
    env = {**cli.env, "SDPROV_RETRY_BASE_DELAY": "1"}
    run = start_in_pty(cli.cwd, env, "lock", "--jobs", "2")
    # One 503 is enough: its Retry-After holds back every worker's next request to that host.
    assert run.until(lambda: len(civitai.requests) >= 1, timeout=20)
    run.pump(0.3)
    typed = time.monotonic()
    run.type(b"\x03")
    run.pump(0.1)
    run.type(b"\x03")  # the impatient second press
    code = run.wait(timeout=10)
    assert code == 130, run.text
    assert time.monotonic() - typed < 2.0
    _clean(run.raw)
    assert not (tmp_path / "manifests" / "models.lock.json").exists()


def test_one_ctrl_c_during_lock_stops_it(
    cli: Cli, civitai: CivitaiServer, hf: HfServer, tmp_path: Path
) -> None:
    import time

    build(tmp_path, civitai, hf)
    (tmp_path / "manifests" / "models.yaml").write_text(MANIFEST)
    civitai.faults.fail("api", 503, times=1000, retry_after="30")
    env = {**cli.env, "SDPROV_RETRY_BASE_DELAY": "1"}
    run = start_in_pty(cli.cwd, env, "lock")
    assert run.until(lambda: len(civitai.requests) >= 1, timeout=20)
    typed = time.monotonic()
    run.type(b"\x03")
    code = run.wait(timeout=10)
    assert code == 130, run.text
    assert time.monotonic() - typed < 2.0
    _clean(run.raw)
    assert "interrupted" in run.text
