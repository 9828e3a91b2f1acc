"""Profile `sdprov sync` of many small files (first sync, then the no-op resync) against the
loopback Civitai fake: pyinstrument (main thread, a call tree) and py-spy (every thread: the
download workers), written to `bench/out/profiles/<name>-{first,noop}.txt` / `-threads.txt`.

    .venv/bin/python -m bench.profile_small [--count 1000] [--size 40000] [--name small]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from bench.runner import ROOT, Bench, small_content


def profile(b: Bench, project: Path, out: Path, *args: str) -> None:
    cmd = [sys.executable, "-m", "pyinstrument", "-o", str(out)]
    cmd += ["-m", "provision.cli", *args]
    subprocess.run(cmd, env=b.env, cwd=project, check=True, stdout=subprocess.DEVNULL)


def spy(b: Bench, project: Path, out: Path, *args: str) -> None:
    """py-spy over every thread; prints the functions by share of worker-thread samples."""
    raw = out.with_suffix(".raw")
    spy_bin = Path(sys.executable).parent / "py-spy"
    cmd = [str(spy_bin), "record", "-r", "250", "--threads", "--idle", "-f", "raw"]
    cmd += ["-o", str(raw), "--"]
    cmd += [sys.executable, "-m", "provision.cli", *args]
    subprocess.run(cmd, env=b.env, cwd=project, check=True, capture_output=True)
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if not any("sdprov-dl" in f or "sdprov-card" in f for f in frames[:1]):
            continue
        n = int(count)
        total += n
        for name in {f.split(" (")[0] + " " + f.split("/")[-1].split(":")[0] for f in frames}:
            inclusive[name] += n
    lines = [f"py-spy, worker threads (sdprov-dl, sdprov-card): {total} samples at 250 Hz"]
    lines += [f"{100 * n / max(total, 1):5.1f}%  {name}" for name, n in inclusive.most_common(60)]
    out.write_text("\n".join(lines) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--size", type=int, default=40_000)
    parser.add_argument("--name", default="small")
    parser.add_argument("--spy", action="store_true", help="py-spy the first sync's threads")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "profiles")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sdprov-prof-", dir=ROOT / "bench" / "out") as tmp:
        b = Bench(Path(tmp), 1)
        with b.civitai:
            versions = b.add_models([small_content(i, args.size) for i in range(args.count)])
            project = b.project("p", versions)
            b.lock(project)
            root = Path(tmp) / "root"
            sync = ("sync", "--models-root", str(root), "--quiet")
            if args.spy:
                spy(b, project, args.out / f"{args.name}-threads.txt", *sync)
            else:
                profile(b, project, args.out / f"{args.name}-first.txt", *sync)
            profile(b, project, args.out / f"{args.name}-noop.txt", *sync)
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
