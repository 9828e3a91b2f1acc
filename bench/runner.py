"""`bench/run`: every performance target of issue 12, side by side with its reference.

Starts the loopback Civitai fake (API 307 -> signed storage, bodies sent with sendfile and
Range), generates the data, and runs each scenario alternating sdprov with its reference
(curl, openssl, coreutils sha256sum, aria2c) in the same run, so a ratio holds while other
work loads the machine. Prints one table (scenario, sdprov, reference, ratio, target, pass)
and writes it as JSON. A reference tool that is missing is installed with apt-get when
possible; otherwise its row says why it was skipped.

    bench/run [--runs 3] [--big-mib 2048] [--dir DIR] [--only NAME ...] [--json FILE]
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
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.sync_bench import Timing, run_timed, sdprov_cmd
from tests.fakes import CivitaiServer, FakeFile, FakeModel, FakeVersion

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Row:
    scenario: str
    sdprov: float | None  # median seconds (or MiB for memory rows)
    reference: float | None
    reference_name: str
    ratio: float | None
    target: str
    passed: bool | None
    note: str = ""


def median(values: list[float]) -> float:
    return statistics.median(values)


def have(tool: str, package: str) -> bool:
    """The tool is on PATH, installing its Debian package first when we are allowed to."""
    if shutil.which(tool):
        return True
    if os.geteuid() == 0 and shutil.which("apt-get"):
        install = ["apt-get", "install", "-y", "-qq", package]
        steps = [install, ["apt-get", "update", "-qq"], install]
        for step in steps:
            subprocess.run(step, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if shutil.which(tool):
                break
    return shutil.which(tool) is not None


class Bench:
    def __init__(self, work: Path, runs: int) -> None:
        self.work = work
        self.runs = runs
        self.civitai = CivitaiServer()
        self.next_id = 1
        self.env = dict(os.environ, SDPROV_CIVITAI_URL=self.civitai.api_url)
        for secret in ("CIVITAI_TOKEN", "HF_TOKEN"):
            self.env.pop(secret, None)

    # ------------------------------------------------------------------ data

    def add_models(self, contents: list[Path | bytes], kind: str = "LORA") -> list[int]:
        """One Civitai model per content; returns the version ids."""
        versions = []
        for content in contents:
            mid = self.next_id
            self.next_id += 1
            name = f"m{mid}.safetensors"
            fake = FakeFile(id=mid, name=name, content=content, primary=True)
            fake.digests  # noqa: B018 - hash now, not while timing
            version = FakeVersion(id=mid * 10, name="v1", base_model="SD 1.5", files=[fake])
            self.civitai.add(FakeModel(id=mid, name=f"M{mid}", type=kind, versions=[version]))
            versions.append(mid * 10)
        return versions

    def project(self, name: str, versions: list[int], section: str = "loras") -> Path:
        project = self.work / name
        (project / "manifests").mkdir(parents=True, exist_ok=True)
        lines = [f"{section}:"] + [f"  - civitai: {v // 10}@{v}" for v in versions]
        (project / "manifests" / "models.yaml").write_text("\n".join(lines) + "\n")
        return project

    def sdprov(self, project: Path, *args: str) -> Timing:
        return run_timed(sdprov_cmd(*args), env=self.env, cwd=project)

    def lock(self, project: Path) -> Timing:
        (project / "manifests" / "models.lock.json").unlink(missing_ok=True)
        return self.sdprov(project, "lock", "--quiet")

    def urls(self, versions: list[int]) -> list[str]:
        return [self.civitai.download_url(v) for v in versions]


def small_content(i: int, size: int) -> bytes:
    header = json.dumps({"b": {"dtype": "U8", "shape": [size], "data_offsets": [0, size]}})
    raw = header.encode().ljust(((len(header) + 8 + 7) // 8) * 8 - 8)
    return len(raw).to_bytes(8, "little") + raw + i.to_bytes(8, "little") + os.urandom(size - 8)


# ---------------------------------------------------------------------- scenarios


def startup(b: Bench) -> list[Row]:
    sd, py = [], []
    for _ in range(max(b.runs, 5)):
        sd.append(run_timed(sdprov_cmd("--version"), cwd=ROOT).wall)
        py.append(run_timed([sys.executable, "-c", "pass"]).wall)
    s = median(sd)
    return [
        Row(
            "start-up: sdprov --version",
            s,
            median(py),
            "python -c pass",
            s / median(py),
            "<= 0.150 s",
            s <= 0.150,
        )
    ]


def lock_rows(b: Bench, count: int, latency: float, target: float, jobs: int = 16) -> list[Row]:
    """`sdprov lock` of `count` pinned refs against curl making the same requests (each
    version's JSON, and its file's first 256 KiB through the 307) at the same concurrency:
    the network work alone, in C, so the ratio holds on a loaded machine. curl has it easier:
    it needs no answer before asking the next, where the lock reads the version to pick the
    file."""
    versions = b.add_models([small_content(i, 64) for i in range(count)])
    project = b.project(f"lock{count}", versions)
    config = b.work / f"curl-lock{count}.cfg"
    api = b.civitai.api_url
    urls = [f"{api}/api/v1/model-versions/{v}" for v in versions]
    urls += [b.civitai.download_url(v, fileId=v // 10) for v in versions]
    config.write_text("".join(f'url = "{u}"\noutput = "/dev/null"\n' for u in urls))
    curl = ["curl", "-sSfL", "-r", "0-262143", "-Z", "--parallel-max", str(jobs), "-K", str(config)]
    b.civitai.faults.api_latency = latency
    sd, ref = [], []
    try:
        for _ in range(b.runs):
            sd.append(b.lock(project).wall)
            ref.append(run_timed(curl).wall)
    finally:
        b.civitai.faults.api_latency = 0.0
    s, r = median(sd), median(ref)
    name = f"lock {count} refs" + (f" @ {latency * 1000:.0f} ms API" if latency else "")
    reference = f"curl -Z --parallel-max {jobs}, same {3 * count} requests"
    return [Row(name, s, r, reference, s / r, f"<= {target:.1f} s", s <= target)]


def small_files(b: Bench, count: int, size: int) -> list[Row]:
    versions = b.add_models([small_content(i, size) for i in range(count)])
    project = b.project("small", versions)
    b.lock(project)
    config = b.work / "curl-small.cfg"
    out = b.work / "curl-small"
    config.write_text(
        "".join(
            f'url = "{u}"\noutput = "{out}/{v}.safetensors"\n'
            for u, v in zip(b.urls(versions), versions, strict=True)
        )
    )
    curl = ["curl", "-sSfL", "-Z", "--parallel-max", "4", "--create-dirs", "-K", str(config)]
    sd, ref, noop, walk = [], [], [], []
    start = min(t.wall for t in [run_timed(sdprov_cmd("--version"), cwd=ROOT) for _ in range(3)])
    for i in range(b.runs):
        root = b.work / f"small-root-{i}"
        sd.append(b.sdprov(project, "sync", "--models-root", str(root), "--quiet").wall)
        ref.append(run_timed(curl).wall)
        shutil.rmtree(out)
        noop.append(b.sdprov(project, "sync", "--models-root", str(root), "--quiet").wall - start)
        walk.append(run_timed(["find", str(root), "-type", "f", "-printf", "%s\\n"]).wall)
        if i:
            shutil.rmtree(root)
    s, r = median(sd), median(ref)
    n, w = median(noop), median(walk)
    return [
        Row(
            f"{count} x {size // 1000} KB first sync",
            s,
            r,
            "curl -Z --parallel-max 4",
            s / r,
            "<= 1.00x",
            s / r <= 1.0,
            "sdprov also writes 2 model cards per model (+1 API call each)",
        ),
        Row(
            f"no-op resync of {count} models (beyond start-up)",
            n,
            w,
            "find -printf %s",
            n / w,
            "<= 3.00x",
            n / w <= 3.0,
            "issue asks 10,000: --noop-models",
        ),
    ]


def noop_big(b: Bench, count: int) -> list[Row]:
    versions = b.add_models([small_content(i, 256) for i in range(count)])
    project = b.project("noop", versions)
    b.lock(project)
    root = b.work / "noop-root"
    b.sdprov(project, "sync", "--models-root", str(root), "--quiet", "--jobs", "8")
    start = min(run_timed(sdprov_cmd("--version"), cwd=ROOT).wall for _ in range(3))
    noop, walk, rss = [], [], []
    for _ in range(b.runs):
        t = b.sdprov(project, "sync", "--models-root", str(root), "--quiet")
        noop.append(t.wall - start)
        rss.append(t.max_rss_kib / 1024)
        walk.append(run_timed(["find", str(root), "-type", "f", "-printf", "%s\\n"]).wall)
    n, w = median(noop), median(walk)
    return [
        Row(
            f"no-op resync of {count} models (beyond start-up)",
            n,
            w,
            "find -printf %s",
            n / w,
            "<= 3.00x",
            n / w <= 3.0,
        ),
        Row(
            f"peak RSS, no-op resync of {count} (MiB)",
            max(rss),
            None,
            "-",
            None,
            "<= 120 MiB",
            max(rss) <= 120,
        ),
    ]


def fmt(value: float | None, unit: str = "s") -> str:
    return "-" if value is None else f"{value:.3f}" if unit == "s" else f"{value:.0f}"


def print_table(rows: list[Row]) -> None:
    print(f"{'scenario':<48} {'sdprov':>8} {'reference':>9}  {'ratio':>6}  {'target':<12} pass")
    for r in rows:
        ratio = "-" if r.ratio is None else f"{r.ratio:.2f}"
        ok = {True: "yes", False: "NO", None: "-"}[r.passed]
        print(
            f"{r.scenario:<48} {fmt(r.sdprov):>8} {fmt(r.reference):>9}  {ratio:>6}  "
            f"{r.target:<12} {ok}  {r.reference_name}{'; ' + r.note if r.note else ''}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="alternating runs per scenario")
    parser.add_argument("--big-mib", type=int, default=2048)
    parser.add_argument("--many", type=int, default=20, help="files for the aria2c scenario")
    parser.add_argument("--many-mib", type=int, default=100)
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--noop-models", type=int, default=10000)
    parser.add_argument(
        "--dir", type=Path, default=ROOT / "bench" / "out", help="a folder on the disk"
    )
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "out" / "results.json")
    parser.add_argument("--resume-mib", type=int, default=2048)
    parser.add_argument("--capped-mib", type=int, default=2048)
    parser.add_argument("--rss-mib", type=int, default=4096)
    names = ["startup", "lock", "small", "noop", "big", "many", "resume", "capped", "rss"]
    parser.add_argument("--only", nargs="+", choices=names, default=names)
    args = parser.parse_args()
    from bench import bytes_bench  # it imports this module's Row and Bench

    for tool, package in (("curl", "curl"), ("openssl", "openssl"), ("sha256sum", "coreutils")):
        if not have(tool, package):
            raise SystemExit(f"bench: {tool} is needed and could not be installed")
    if not have("/usr/bin/time", "time"):  # peak RSS of each command (bench/sync_bench.py)
        print("bench: GNU time missing; peak RSS rows include the bench's own memory")
    args.dir.mkdir(parents=True, exist_ok=True)
    scenarios: dict[str, Callable[[Bench], list[Row]]] = {
        "startup": startup,
        "lock": lambda b: lock_rows(b, 200, 0.05, 2.0) + lock_rows(b, 1000, 0.0, 3.0),
        "small": lambda b: small_files(b, args.small, 40_000),
        "noop": lambda b: noop_big(b, args.noop_models),
        "big": lambda b: bytes_bench.big_file(b, args.big_mib),
        "many": lambda b: bytes_bench.many_big(b, args.many, args.many_mib),
        "resume": lambda b: bytes_bench.resume(b, args.resume_mib),
        "capped": lambda b: bytes_bench.capped(b, args.capped_mib),
        "rss": lambda b: bytes_bench.rss(b, args.rss_mib),
    }
    rows: list[Row] = []
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="sdprov-bench-", dir=args.dir) as tmp:
        bench = Bench(Path(tmp), args.runs)
        with bench.civitai:
            for name in args.only:
                began = time.perf_counter()
                rows += scenarios[name](bench)
                print(f"bench: {name} done in {time.perf_counter() - began:.0f} s", file=sys.stderr)
    print(
        f"medians of {args.runs} alternating runs; load average at start "
        f"{load[0]:.1f} on {os.cpu_count()} CPUs, at end {os.getloadavg()[0]:.1f}"
    )
    print_table(rows)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "load_start": load[0],
        "load_end": os.getloadavg()[0],
        "runs": args.runs,
        "rows": [asdict(r) for r in rows],
    }
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
