"""The byte-path scenarios of `bench/run`: big, many, resume, capped, rss (issue 12 targets
1, 2, 7, 8, 9). File bytes come from nginx (bench/nginx.py); the fake Civitai API in front
307-redirects each download there (`CivitaiServer.external_storage_url`), so sdprov and its
reference (curl, openssl, sha256sum, aria2c) fetch the same URLs through the same hops.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.nginx import Nginx
from bench.runner import Bench, Row, have
from bench.runner import median as _median
from bench.sync_bench import make_file, run_timed, sdprov_cmd, settle

_row = Row


@contextmanager
def served(b: Bench, rate: str | None = None) -> Iterator[Nginx]:
    """nginx over the bench's serve folder, with the fake API redirecting downloads to it."""
    folder = b.work / "serve"
    folder.mkdir(exist_ok=True)
    with Nginx(folder, rate=rate) as nginx:
        b.civitai.external_storage_url = nginx.url
        try:
            yield nginx
        finally:
            b.civitai.external_storage_url = None


def add_files(b: Bench, sizes_mib: list[int], project: str) -> tuple[Path, list[int], list[Path]]:
    """Generate files in the serve folder under the names the fake gives them; lock them."""
    folder = b.work / "serve"
    folder.mkdir(exist_ok=True)
    paths = []
    for offset, mib in enumerate(sizes_mib):
        path = folder / f"m{b.next_id + offset}.safetensors"
        make_file(path, mib << 20)
        paths.append(path)
    versions = b.add_models(list(paths), kind="Checkpoint")
    root = b.project(project, versions, section="checkpoints")
    b.lock(root)
    return root, versions, paths


def sync(b: Bench, project: Path, root: Path, *extra: str) -> float:
    t = b.sdprov(project, "sync", "--models-root", str(root), "--quiet", *extra)
    shutil.rmtree(root)
    return t.wall


def big_file(b: Bench, mib: int) -> list[Row]:
    with served(b):
        project, (version,), paths = add_files(b, [mib], "big")
        url = b.civitai.download_url(version)
        out = b.work / "curl-big.out"
        curl_fsync = ["sh", "-c", f'curl -sSfL -o "{out}" "{url}" && sync "{out}"']
        sd, single, cf, ossl, two, verify = [], [], [], [], [], []
        sync(b, project, b.work / "big-warm-up")  # untimed: the first read of the source
        for i in range(b.runs):
            root = b.work / f"big-root-{i}"
            sd.append(b.sdprov(project, "sync", "--models-root", str(root), "--quiet").wall)
            verify.append(b.sdprov(project, "status", "--verify", "--models-root", str(root)).wall)
            shutil.rmtree(root)
            cf.append(run_timed(curl_fsync).wall)
            ossl.append(run_timed(["openssl", "dgst", "-sha256", str(out)]).wall)
            two.append(cf[-1] + run_timed(["sha256sum", str(out)]).wall)
            out.unlink()
            single.append(sync(b, project, root, "--connections", "1"))
    paths[0].unlink()
    s, floor = _median(sd), max(_median(cf), _median(ossl))
    one = _median(single)
    return [
        _row(f"{mib} MiB file, verified + durable", s, floor, "max(curl+fsync, openssl)",
             s / floor, "<= 1.10x", s / floor <= 1.10,
             f"curl+fsync {_median(cf):.3f}, openssl {_median(ossl):.3f}"),
        _row(f"{mib} MiB file vs two passes", s, _median(two), "curl+fsync, then sha256sum",
             s / _median(two), "(info)", None),
        _row(f"{mib} MiB, default vs --connections 1 (uncapped)", s, one, "--connections 1",
             s / one, "<= 1.05x", s / one <= 1.05, "the default must not hurt"),
        _row(f"status --verify, {mib} MiB (throughput ratio)", _median(verify), _median(ossl),
             "openssl dgst -sha256", _median(ossl) / _median(verify), ">= 0.95x",
             _median(ossl) / _median(verify) >= 0.95, "sdprov time includes its start-up"),
    ]  # fmt: skip


def many_big(b: Bench, count: int, mib: int) -> list[Row]:
    if not have("aria2c", "aria2"):
        why = "skipped: aria2c missing and not installable here (needs root + apt)"
        return [_row(f"{count} x {mib} MiB", None, None, "aria2c -j4", None, ">= 1.00x", None, why)]
    with served(b):
        project, versions, paths = add_files(b, [mib] * count, "many")
        listing = b.work / "aria2.txt"
        out = b.work / "aria2-out"
        listing.write_text(
            "".join(f"{b.civitai.download_url(v)}\n  out={v}.safetensors\n" for v in versions)
        )
        aria = ["sh", "-c", f'aria2c -q -j4 -d "{out}" -i "{listing}" && sync -f "{out}"/*']
        sd, single, ref = [], [], []
        for i in range(b.runs):
            sd.append(sync(b, project, b.work / f"many-root-{i}"))
            ref.append(run_timed(aria).wall)
            shutil.rmtree(out)
            single.append(sync(b, project, b.work / f"many-root-{i}", "--connections", "1"))
    for path in paths:
        path.unlink()
    s, r, one = _median(sd), _median(ref), _median(single)
    return [
        _row(f"{count} x {mib} MiB (throughput ratio)", s, r, "aria2c -j4 + fsync", r / s,
             ">= 1.00x", r / s >= 1.0, f"sdprov --connections 1: {one:.3f} s, {r / one:.2f}x"),
    ]  # fmt: skip


def _partial_size(root: Path) -> int:
    folder = root / ".sdprov" / "partial"
    try:
        return max((p.stat().st_size for p in folder.iterdir()), default=0)
    except (FileNotFoundError, OSError):
        return 0


def resume(b: Bench, mib: int, at: float = 0.90) -> list[Row]:
    """kill -9 the sync when its partial reaches `at` of the file, rerun, count bytes served."""
    size = mib << 20
    with served(b) as nginx:
        project, _, paths = add_files(b, [mib], "resume")
        again, waste = [], []
        for i in range(b.runs):
            root = b.work / f"resume-root-{i}"
            nginx.clear_log()
            settle()
            proc = subprocess.Popen(
                sdprov_cmd("sync", "--models-root", str(root), "--quiet"),
                env=b.env, cwd=project, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            while proc.poll() is None and _partial_size(root) < at * size:
                time.sleep(0.002)
            killed_at = _partial_size(root)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            time.sleep(0.3)
            first = nginx.bytes_sent()
            nginx.clear_log()
            b.sdprov(project, "sync", "--models-root", str(root), "--quiet")
            time.sleep(0.3)
            second = nginx.bytes_sent()
            if killed_at < 0.5 * size:
                raise SystemExit(f"resume: the sync ended before {at:.0%} ({killed_at} bytes)")
            again.append(second / size)
            waste.append((first + second - size) / size)
            shutil.rmtree(root)
    paths[0].unlink()
    a, w = _median(again), _median(waste)
    return [
        _row(f"resume after kill -9 at {at:.0%} of {mib} MiB (fraction re-sent)", a, None, "-",
             None, "<= 0.11", a <= 0.11, f"bytes served twice overall: {w:.1%} of the file"),
    ]  # fmt: skip


def capped(b: Bench, mib: int, rate: str = "50m") -> list[Row]:
    """One file from an nginx capping every connection at `rate`: default vs 1 connection."""
    with served(b, rate=rate):
        project, (version,), paths = add_files(b, [mib], "capped")
        url = b.civitai.download_url(version)
        out = b.work / "curl-capped.out"
        curl = ["sh", "-c", f'curl -sSfL -o "{out}" "{url}" && sync "{out}"']
        sd, single, ref = [], [], []
        for i in range(b.runs):
            root = b.work / f"capped-root-{i}"
            sd.append(sync(b, project, root))
            single.append(sync(b, project, root, "--connections", "1"))
            ref.append(run_timed(curl).wall)
            out.unlink()
    paths[0].unlink()
    s, one, r = _median(sd), _median(single), _median(ref)
    return [
        _row(f"{mib} MiB, connections capped at {rate}B/s (speed-up)", s, one,
             "sdprov --connections 1", one / s, ">= 3.00x", one / s >= 3.0,
             f"curl (1 connection) {r:.3f} s: {r / s:.2f}x"),
    ]  # fmt: skip


def rss(b: Bench, mib: int) -> list[Row]:
    with served(b):
        project, _, paths = add_files(b, [mib], "rss")
        peak, peak_one = 0.0, 0.0
        for i in range(max(1, b.runs // 2)):
            root = b.work / f"rss-root-{i}"
            t = b.sdprov(project, "sync", "--models-root", str(root), "--quiet")
            peak = max(peak, t.max_rss_kib / 1024)
            shutil.rmtree(root)
            t = b.sdprov(project, "sync", "--models-root", str(root), "--quiet",
                         "--connections", "1")  # fmt: skip
            peak_one = max(peak_one, t.max_rss_kib / 1024)
            shutil.rmtree(root)
    paths[0].unlink()
    return [
        _row(f"peak RSS, {mib} MiB file sync (MiB)", peak, None, "-", None, "<= 120 MB",
             peak * 1.048576 <= 120, f"--connections 1: {peak_one:.0f} MiB"),
    ]  # fmt: skip


__all__ = ["big_file", "capped", "many_big", "resume", "rss"]
