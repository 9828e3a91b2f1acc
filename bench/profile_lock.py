"""Profile `sdprov lock` with py-spy (every thread: the lock resolves on a pool) against the
loopback Civitai fake, and write a short text summary: `bench/profiles/<name>.txt`.

    .venv/bin/python -m bench.profile_lock [--count 200] [--latency 0.05] [--name lock-after]

pyinstrument samples one thread only, and the lock's work runs on worker threads, so this uses
py-spy's raw stacks (all threads, `--idle`: waiting on the network counts, it is the point of
a 50 ms API) and prints, per function, the share of samples it was on the stack (inclusive)
and on top (self). The fake runs in this process, so it is not in the profile.
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.runner import ROOT, Bench, small_content
from bench.sync_bench import sdprov_cmd

PROFILES = ROOT / "bench" / "profiles"


def record(b: Bench, project: Path, raw: Path, *args: str, idle: bool) -> float:
    (project / "manifests" / "models.lock.json").unlink(missing_ok=True)
    spy = [str(Path(sys.executable).with_name("py-spy")), "record", "--threads"]
    # --idle: every thread, waiting included; else --gil: only the thread holding the GIL,
    # i.e. where the interpreter's one core of Python time went.
    spy += ["--idle"] if idle else ["--gil"]
    spy += ["--nonblocking", "--rate", "250", "--format", "raw", "--output", str(raw), "--"]
    began = time.perf_counter()
    subprocess.run(
        [*spy, *sdprov_cmd("lock", "--quiet", *args)],
        env=b.env,
        cwd=project,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - began


def frame_name(frame: str) -> str:
    """`func (path/to/module.py:123)` -> `func (module.py)`: lines apart would split a function."""
    func, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    return f"{func} ({'/'.join(path.split('/')[-2:])})"


def summarize(raw: Path, title: str, top: int, *, idle: bool) -> str:
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    threads: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        thread = frames[0] if frames[0].startswith("thread") else ""
        names = [frame_name(f) for f in frames if not f.startswith(("thread", "process"))]
        if not names:
            continue
        total += count
        threads[thread.split(" ")[-1].strip('"()') if thread else "?"] += count
        for name in set(names):
            inclusive[name] += count
        own[names[-1]] += count
    what = "all threads, idle included" if idle else "the thread holding the GIL"
    lines = [title, f"samples: {total} ({what}, 250 Hz)", ""]
    lines.append("inclusive  self   function (module)")
    for name, count in inclusive.most_common(top):
        lines.append(f"{100 * count / total:6.1f}%  {100 * own[name] / total:5.1f}%  {name}")
    lines += ["", "top self (where the threads were when sampled):"]
    for name, count in own.most_common(12):
        lines.append(f"{100 * count / total:6.1f}%  {name}")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds added per API answer")
    parser.add_argument("--name", default="lock-after")
    parser.add_argument("--top", type=int, default=36)
    parser.add_argument("--cpu", action="store_true", help="GIL holder only (no --idle)")
    parser.add_argument(
        "--tree", type=Path, help="profile the sdprov in this source tree (e.g. `git archive main`)"
    )
    parser.add_argument("lock_args", nargs="*", help="extra `sdprov lock` arguments (after --)")
    args = parser.parse_args()
    PROFILES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sdprov-prof-", dir=ROOT / "bench" / "out") as tmp:
        b = Bench(Path(tmp), 1)
        if args.tree is not None:
            b.env["PYTHONPATH"] = str(args.tree.resolve())
        with b.civitai:
            versions = b.add_models([small_content(i, 64) for i in range(args.count)])
            project = b.project("p", versions)
            b.civitai.faults.api_latency = args.latency
            raw = Path(tmp) / "raw.txt"
            wall = record(b, project, raw, *args.lock_args, idle=not args.cpu)
        load = os.getloadavg()[0]
        title = (
            f"sdprov lock {' '.join(args.lock_args)}of {args.count} pinned Civitai refs, "
            f"{args.latency * 1000:.0f} ms added per API answer: {wall:.2f} s under py-spy "
            f"(load {load:.1f} on {os.cpu_count()} CPUs)"
        )
        text = summarize(raw, title, args.top, idle=not args.cpu)
    (PROFILES / f"{args.name}.txt").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
