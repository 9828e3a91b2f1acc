"""Benchmark: `sdprov sync` of one large file vs curl, openssl and curl + sha256sum.

Everything runs against the loopback Civitai fake (API 307 → storage, served with sendfile),
in the same run, alternating commands, so the ratios hold on a noisy machine. Prints the
median wall time of each command, the ratios, and the peak RSS of `sdprov sync` for two
file sizes (memory must not grow with the file).

    .venv/bin/python -m bench.sync_bench [--size-mib 1024] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.fakes import CivitaiServer, FakeFile, FakeModel, FakeVersion


@dataclass(frozen=True)
class Timing:
    wall: float
    max_rss_kib: int


TIME = Path("/usr/bin/time")  # GNU time (Debian's `time` package)


def settle() -> None:
    """Flush dirty pages left by the previous command, so each one starts from the same disk
    state (otherwise whoever runs right after a 1 GiB write pays for its writeback)."""
    os.sync()
    time.sleep(0.2)


def run_timed(
    cmd: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None
) -> Timing:
    settle()
    # Peak RSS from GNU time, not from our own wait4: a child's ru_maxrss counts the memory it
    # shared with this (large) bench process between fork and exec, so every command would
    # report at least the bench's own size (249 MiB once 10,000 fake models were loaded).
    rss_file = Path(tempfile.mkstemp(prefix="sdprov-rss-")[1])
    if TIME.exists():
        cmd = [str(TIME), "-f", "%M", "-o", str(rss_file), *cmd]
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    measured = rss_file.read_text().strip().splitlines() if TIME.exists() else []
    rss_file.unlink(missing_ok=True)
    max_rss = int(measured[-1]) if measured and measured[-1].isdigit() else usage.ru_maxrss
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    if proc.stderr:
        proc.stderr.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed ({proc.returncode}):\n{stderr}")
    return Timing(wall=wall, max_rss_kib=max_rss)


def make_file(path: Path, size: int) -> None:
    """A valid safetensors file (one U8 tensor) of `size` bytes with incompressible data."""
    block = os.urandom(1 << 20)
    data = size - 4096
    header = json.dumps({"blob": {"dtype": "U8", "shape": [data], "data_offsets": [0, data]}})
    raw = header.encode().ljust(4096 - 8)
    with path.open("wb") as fh:
        fh.write(len(raw).to_bytes(8, "little") + raw)
        for i in range(data >> 20):
            # Vary each block so nothing compresses or dedups.
            fh.write(i.to_bytes(8, "little") + block[8:])
        fh.write(block[: data % (1 << 20)])


def sdprov_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "provision.cli", *args]


def bench_size(size_mib: int, runs: int, work: Path) -> dict[str, list[Timing]]:
    source = work / f"model_{size_mib}.safetensors"
    make_file(source, size_mib << 20)
    fake_file = FakeFile(id=1, name=source.name, content=source, primary=True)
    fake_file.digests  # noqa: B018 - hash once before timing
    results: dict[str, list[Timing]] = {"sync": [], "curl": [], "openssl": [], "curl+sha256sum": []}
    with CivitaiServer() as civitai:
        civitai.add(
            FakeModel(
                id=1,
                name="Big",
                type="Checkpoint",
                versions=[FakeVersion(id=10, name="v1", base_model="SDXL 1.0", files=[fake_file])],
            )
        )
        project = work / f"project_{size_mib}"
        (project / "manifests").mkdir(parents=True)
        (project / "manifests" / "models.yaml").write_text("checkpoints:\n  - civitai: 1@10\n")
        env = dict(os.environ, SDPROV_CIVITAI_URL=civitai.api_url)
        env.pop("CIVITAI_TOKEN", None)
        subprocess.run(sdprov_cmd("lock"), cwd=project, env=env, check=True, capture_output=True)
        url = civitai.download_url(10, fileId=1)
        out = work / "curl.out"
        for i in range(runs):
            root = work / f"root_{size_mib}_{i}"
            results["sync"].append(
                run_timed(
                    sdprov_cmd("sync", "--models-root", str(root), "--quiet"), env=env, cwd=project
                )
            )
            shutil.rmtree(root)
            results["curl"].append(run_timed(["curl", "-sSfL", "-o", str(out), url]))
            out.unlink()
            results["openssl"].append(run_timed(["openssl", "dgst", "-sha256", str(source)]))
            first = run_timed(["curl", "-sSfL", "-o", str(out), url])
            second = run_timed(["sha256sum", str(out)])  # settles in between: a fair split
            results["curl+sha256sum"].append(Timing(first.wall + second.wall, 0))
            out.unlink()
    source.unlink()
    return results


def median(timings: list[Timing]) -> float:
    return statistics.median(t.wall for t in timings)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--small-mib", type=int, default=128, help="second size, for memory")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--dir",
        default="/dev/shm" if Path("/dev/shm").is_dir() else None,
        help="where files are written (default /dev/shm: on this VM's disk, page-cache "
        "writeback stalls of 0.2-2 s hit whichever command runs into them, drowning the "
        "difference being measured; pass a disk folder to include the disk)",
    )
    args = parser.parse_args()
    for tool in ("curl", "openssl", "sha256sum"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is needed for the reference timings")
    with tempfile.TemporaryDirectory(prefix="sdprov-bench-", dir=args.dir) as tmp:
        work = Path(tmp)
        rss: dict[int, int] = {}
        for size in (args.small_mib, args.size_mib):
            results = bench_size(size, args.runs, work)
            rss[size] = max(t.max_rss_kib for t in results["sync"])
            if size != args.size_mib:
                continue
            sync, curl, openssl = (median(results[k]) for k in ("sync", "curl", "openssl"))
            two_pass = median(results["curl+sha256sum"])
            print(
                f"file: {size} MiB in {work}, {args.runs} runs each, medians "
                "(loopback, same run, alternating)"
            )
            for name in ("sync", "curl", "openssl", "curl+sha256sum"):
                walls = ", ".join(f"{t.wall:.2f}" for t in results[name])
                print(f"  {name:<15} median {median(results[name]):6.2f} s   runs: {walls}")
            print(
                f"  sync / max(curl, openssl)  = {sync / max(curl, openssl):.2f}  (target <= 1.10)"
            )
            print(f"  sync / curl                = {sync / curl:.2f}")
            print(f"  sync / (curl + sha256sum)  = {sync / two_pass:.2f}")
        print(
            "peak RSS of sdprov sync: "
            + ", ".join(f"{s} MiB file: {r / 1024:.0f} MiB" for s, r in rss.items())
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
