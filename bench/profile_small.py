"""Profile `sdprov sync` of many small files (first sync, then the no-op resync) with
pyinstrument, against the loopback Civitai fake: `bench/profiles/<name>-{first,noop}.txt`.

    .venv/bin/python -m bench.profile_small [--count 1000] [--size 40000] [--name small]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.runner import ROOT, Bench, small_content


def profile(b: Bench, project: Path, out: Path, *args: str) -> None:
    cmd = [sys.executable, "-m", "pyinstrument", "--show-all", "-o", str(out)]
    cmd += ["-m", "provision.cli", *args]
    subprocess.run(cmd, env=b.env, cwd=project, check=True, stdout=subprocess.DEVNULL)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--size", type=int, default=40_000)
    parser.add_argument("--name", default="small")
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
            profile(b, project, args.out / f"{args.name}-first.txt", *sync)
            profile(b, project, args.out / f"{args.name}-noop.txt", *sync)
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
