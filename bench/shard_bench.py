"""Benchmark: a 20-file `sdprov sync` with 1, 2 and 4 `--shard` workers, per-connection cap.

The loopback HF fake paces every connection to `--cap-mbps` (what one client's ceiling does to
a real worker); each worker downloads one file at a time (`--jobs 1`), so N workers are N
connections. After the workers, the plain (coordinating) sync runs and is included in the time.
Prints the wall time per worker count and the speed-up over one worker.

    .venv/bin/python -m bench.shard_bench [--cap-mbps 8] [--file-kib 4096]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.fakes import HfServer
from tests.fixtures.modelfiles import lora_tensors, write_safetensors

REPO = "team/bench"
FILES = 20


def _setup(tmp: Path, hf: HfServer, file_kib: int) -> dict[str, str]:
    src = tmp / "src"
    for i in range(FILES):
        name = f"b{i:02d}.safetensors"
        pad = file_kib * 1024 + i * 4096  # distinct content per file
        write_safetensors(src / name, dict(lora_tensors("sd1", "LoRA")) | {"pad": ("U8", (pad,))})
        hf.add_file(REPO, name, src / name)
    (tmp / "manifests").mkdir()
    (tmp / "manifests" / "models.yaml").write_text(
        "loras:\n" + "".join(f"  - hf: {REPO}/b{i:02d}.safetensors\n" for i in range(FILES))
    )
    env = dict(os.environ, HF_ENDPOINT=hf.endpoint, HOME=str(tmp), NO_PROXY="127.0.0.1,localhost")
    env.pop("HF_TOKEN", None)
    subprocess.run([sys.executable, "-m", "provision.cli", "lock"], cwd=tmp, env=env, check=True,
                   capture_output=True)  # fmt: skip
    return env


def _run(tmp: Path, env: dict[str, str], workers: int) -> float:
    root = tmp / f"root{workers}"
    cli = [sys.executable, "-m", "provision.cli", "sync", "--models-root", str(root), "--jobs", "1"]
    started = time.perf_counter()
    if workers > 1:
        procs = [
            subprocess.Popen(
                [*cli, "--shard", f"{i}/{workers}", "-q"],
                cwd=tmp,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            for i in range(workers)
        ]
        for proc in procs:
            _, err = proc.communicate()
            if proc.returncode:
                raise SystemExit(err.decode())
    subprocess.run([*cli, "-q"], cwd=tmp, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cap-mbps", type=float, default=8.0, help="MB/s per connection")
    parser.add_argument("--file-kib", type=int, default=4096)
    args = parser.parse_args()
    with HfServer() as hf, tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        env = _setup(tmp, hf, args.file_kib)
        hf.faults.throttle_bps = int(args.cap_mbps * 1_000_000)
        times = {n: _run(tmp, env, n) for n in (1, 2, 4)}
    for n, wall in times.items():
        print(f"{n} worker(s): {wall:6.2f} s  speed-up {times[1] / wall:4.2f}x")


if __name__ == "__main__":
    main()
