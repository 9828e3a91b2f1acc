"""Benchmark: `sdprov sync` from the OSS mirror vs from the Civitai path, on loopback.

One lock, two ways to fill an empty models root, alternated in the same run: from the
loopback Civitai fake (API call, 307 to signed storage, sendfile) and with `--mirror` from the
loopback OSS fake (a presigned GET per file, computed locally). Two shapes: one large file
(bandwidth) and many small files (per-file overhead). Prints medians and the ratio
mirror / civitai, and the time of the initial `mirror push`. Loopback has no WAN: the real
gain of an in-region mirror (intranet vs. a cross-border link, or a 410) is not measured here;
this shows the mirror path costs nothing extra on the byte path.

    .venv/bin/python -m bench.mirror_bench [--size-mib 512] [--small 32] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench.sync_bench import make_file, run_timed, sdprov_cmd
from tests.fakes import CivitaiServer, FakeFile, FakeModel, FakeVersion
from tests.fakes.oss import ACCESS_KEY_ID, ACCESS_KEY_SECRET, OssServer

BUCKET = "bench-mirror"


def _catalog(civitai: CivitaiServer, files: list[Path]) -> str:
    lines = ["checkpoints:"]
    for i, path in enumerate(files, start=1):
        fake = FakeFile(id=i, name=path.name, content=path, primary=True)
        fake.digests  # noqa: B018 - hash once before timing
        civitai.add(
            FakeModel(
                id=i,
                name=f"m{i}",
                type="Checkpoint",
                versions=[FakeVersion(id=1000 + i, name="v1", base_model="SDXL 1.0", files=[fake])],
            )
        )
        lines.append(f"  - civitai: {i}@{1000 + i}")
    return "\n".join(lines) + "\n"


def bench_shape(label: str, files: list[Path], runs: int, work: Path) -> dict[str, float]:
    spool = work / f"oss_{len(files)}"
    spool.mkdir()
    # Objects on disk and served with sendfile, as the Civitai fake serves its files.
    with CivitaiServer() as civitai, OssServer(buckets=(BUCKET,), spool=spool) as oss:
        project = work / f"project_{label}"
        (project / "manifests").mkdir(parents=True)
        (project / "manifests" / "models.yaml").write_text(_catalog(civitai, files))
        env = dict(
            os.environ,
            SDPROV_CIVITAI_URL=civitai.api_url,
            SDPROV_OSS_ENDPOINT=oss.endpoint,
            OSS_REGION="cn-hangzhou",
            ALIBABA_CLOUD_ACCESS_KEY_ID=ACCESS_KEY_ID,
            ALIBABA_CLOUD_ACCESS_KEY_SECRET=ACCESS_KEY_SECRET,
            NO_PROXY="127.0.0.1,localhost",
        )
        env.pop("CIVITAI_TOKEN", None)
        subprocess.run(sdprov_cmd("lock"), cwd=project, env=env, check=True, capture_output=True)
        mirror = f"oss://{BUCKET}/sd"
        push = run_timed(
            sdprov_cmd("mirror", "push", "--mirror", mirror, "-q"), env=env, cwd=project
        )
        walls: dict[str, list[float]] = {"civitai": [], "mirror": []}
        for i in range(runs):
            for name, extra in (("civitai", []), ("mirror", ["--mirror", mirror])):
                root = work / f"root_{label}_{name}_{i}"
                cmd = sdprov_cmd("sync", "--models-root", str(root), "--quiet", *extra)
                walls[name].append(run_timed(cmd, env=env, cwd=project).wall)
                shutil.rmtree(root)
        shutil.rmtree(project / ".sdprov-mirror", ignore_errors=True)
    shutil.rmtree(spool)
    result = {k: statistics.median(v) for k, v in walls.items()}
    print(f"{label}: {len(files)} file(s), {runs} runs each, medians (loopback, alternating)")
    for name, values in walls.items():
        print(f"  sync from {name:<8} median {result[name]:6.2f} s   runs: "
              + ", ".join(f"{w:.2f}" for w in values))  # fmt: skip
    print(f"  mirror / civitai = {result['mirror'] / result['civitai']:.2f}")
    print(f"  initial mirror push: {push.wall:.2f} s")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=512, help="the one large file")
    parser.add_argument("--small", type=int, default=32, help="how many 1 MiB files")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dir", default="/dev/shm" if Path("/dev/shm").is_dir() else None)
    args = parser.parse_args()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sdprov-mirror-bench-", dir=args.dir) as tmp:
        work = Path(tmp)
        big = work / "big.safetensors"
        make_file(big, args.size_mib << 20)
        bench_shape(f"large ({args.size_mib} MiB)", [big], args.runs, work)
        big.unlink()
        small = []
        for i in range(args.small):
            path = work / f"small_{i}.safetensors"
            make_file(path, 1 << 20)
            small.append(path)
        bench_shape(f"small ({args.small} x 1 MiB)", small, args.runs, work)
    print(f"total {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
