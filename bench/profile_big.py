"""Profile `sdprov sync` of one big file from nginx with py-spy (all threads, native frames).

    .venv/bin/python -m bench.profile_big OUT.txt [--mib 2048] [--pythonpath DIR] [-- SYNC ARGS]

Writes a short text summary: wall time, samples per thread, and the frames where the samples
sat (self), so a before/after pair shows where the time went. `--pythonpath` profiles another
checkout of `provision` (e.g. `git archive main provision | tar -x -C /tmp/before`).
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.bytes_bench import add_files, served
from bench.runner import ROOT, Bench
from bench.sync_bench import sdprov_cmd, settle


def _frame(frame: str) -> str:
    """A frame as a reader wants it: native addresses folded into their library."""
    frame = frame.strip()
    if frame.startswith("0x") and "(" in frame:
        return f"[native] {frame[frame.index('(') :]}"
    return frame.replace(str(ROOT) + "/", "")[:100]


def _thread(frame: str) -> str:
    # py-spy --threads: "thread (0x7f..): NAME" or "process N:..."; keep the name.
    return frame.rpartition(": ")[2].strip()[:22] or frame[:22]


def summarise(raw: Path, wall: float, title: str, top: int = 40) -> str:
    threads: collections.Counter[str] = collections.Counter()
    leaves: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        total += n
        thread = _thread(frames[0])
        threads[thread] += n
        leaves[f"{thread:<22} {_frame(frames[-1])}"] += n
    lines = [title, f"wall {wall:.2f} s; {total} samples at 100 Hz over all threads", ""]
    lines.append("samples per thread:")
    lines += [f"  {n:6d} {100 * n / total:5.1f}%  {name}" for name, n in threads.most_common()]
    lines += ["", f"top {top} frames by self samples (thread, frame):"]
    lines += [f"  {n:6d} {100 * n / total:5.1f}%  {name}" for name, n in leaves.most_common(top)]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--mib", type=int, default=2048)
    parser.add_argument("--pythonpath", type=Path)
    parser.add_argument("--title", default="sdprov sync of one big file")
    parser.add_argument("sync_args", nargs="*")
    args = parser.parse_args()
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    with tempfile.TemporaryDirectory(prefix="sdprov-prof-", dir=ROOT / "bench" / "out") as tmp:
        bench = Bench(Path(tmp), 1)
        if args.pythonpath is not None:
            bench.env["PYTHONPATH"] = str(args.pythonpath)
        with bench.civitai, served(bench):
            project, _, _ = add_files(bench, [args.mib], "prof")
            raw = Path(tmp) / "raw.txt"
            root = Path(tmp) / "root"
            cmd = [py_spy, "record", "--native", "--threads", "--format", "raw", "-r", "100"]
            cmd += ["-o", str(raw), "--", *sdprov_cmd("sync", "--models-root", str(root))]
            settle()
            began = time.perf_counter()
            subprocess.run(
                [*cmd, "--quiet", *args.sync_args], env=bench.env, cwd=project, check=False
            )
            wall = time.perf_counter() - began
            load = os.getloadavg()[0]
            title = f"{args.title}: {args.mib} MiB from nginx; load average {load:.1f}"
            args.out.write_text(summarise(raw, wall, title))
            shutil.copy(raw, ROOT / "bench" / "out" / f"{args.out.stem}.raw")
    print(args.out.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
