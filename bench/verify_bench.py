"""`status --verify` hashing: one thread vs the pool, on files in /dev/shm (no disk noise).

python -m bench.verify_bench [--files 4] [--mib 128] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from provision.sync.status import hash_files


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--mib", type=int, default=128)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    base = Path("/dev/shm") if Path("/dev/shm").is_dir() else None
    with tempfile.TemporaryDirectory(dir=base) as tmp:
        paths = []
        for i in range(args.files):
            path = Path(tmp) / f"m{i}.safetensors"
            path.write_bytes(os.urandom(args.mib << 20))
            paths.append(path)
        for run in range(args.runs):
            for jobs in (1, None):
                started, cpu = time.perf_counter(), time.process_time()
                hash_files(paths, jobs)
                took, cpu = time.perf_counter() - started, time.process_time() - cpu
                label = "1 thread" if jobs == 1 else f"pool ({os.cpu_count()} cpus)"
                # CPU/wall above 1 means the hashing ran on more than one core at once.
                print(f"run {run}: {label:<16} {took:.2f} s wall, cpu/wall {cpu / took:.2f}")


if __name__ == "__main__":
    main()
