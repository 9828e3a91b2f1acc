"""Inspection reads only the header: a 4 GiB safetensors file costs what a 4 KiB one does.

Run: .venv/bin/python -m bench.inspect_bench

Both files carry the same SD1 LoRA header; the 4 GiB one is sparse (header written, then
`truncate`), so the bench needs no disk. For context it also hashes a real 256 MiB file with
`sha256sum`, the cost WebUI (or a naive check) pays per byte, and extrapolates to 4 GiB.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Final

from provision.inspection import inspect_file
from tests.fixtures.modelfiles import write_safetensors

SMALL: Final = 4 * 1024
BIG: Final = 4 * 1024**3
CONTEXT_FILE: Final = 256 * 1024**2
ROUNDS: Final = 300


def make_lora_of_size(path: Path, size: int) -> Path:
    """An SD1 LoRA header (rank 1, cross-attention K) plus padding so the file is `size` bytes."""
    module = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k"
    tensors = {
        f"{module}.lora_down.weight": ("F16", [1, 768]),
        f"{module}.lora_up.weight": ("F16", [320, 1]),
        "padding": ("U8", [0]),
    }
    # Two passes: the padding's own digits change the header length.
    for _ in range(3):
        write_safetensors(path, tensors)
        missing = size - path.stat().st_size
        tensors["padding"] = ("U8", [tensors["padding"][1][0] + missing])
    write_safetensors(path, tensors)
    assert path.stat().st_size == size, path.stat().st_size
    return path


def time_inspection(path: Path) -> float:
    """Median seconds per `inspect_file` over ROUNDS calls (the page cache is warm for both)."""
    samples = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        report = inspect_file(path)
        samples.append(time.perf_counter() - start)
    assert (report.kind, report.family) == ("lora", "sd1"), report
    return statistics.median(samples)


def bytes_read_by_inspection(path: Path) -> int | None:
    io_file = Path("/proc/self/io")
    if not io_file.exists():
        return None

    def rchar() -> int:
        line = next(x for x in io_file.read_text().splitlines() if x.startswith("rchar:"))
        return int(line.split()[1])

    before = rchar()
    inspect_file(path)
    after = rchar()
    # Each rchar() read of /proc/self/io counts itself; one empty interval measures that.
    baseline = -rchar() + rchar()
    return after - before - baseline


def time_sha256sum(path: Path) -> tuple[str, float]:
    tool = shutil.which("sha256sum")
    start = time.perf_counter()
    if tool:
        subprocess.run([tool, str(path)], check=True, capture_output=True)
        name = "sha256sum"
    else:  # macOS without coreutils
        with path.open("rb") as fh:
            hashlib.file_digest(fh, "sha256")
        name = "hashlib.sha256"
    return name, time.perf_counter() - start


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="sdprov-bench-") as tmp:
        root = Path(tmp)
        small = make_lora_of_size(root / "small.safetensors", SMALL)
        big = make_lora_of_size(root / "big.safetensors", BIG)
        disk = big.stat().st_blocks * 512
        t_small = time_inspection(small)
        t_big = time_inspection(big)
        read = bytes_read_by_inspection(big)

        context = root / "context.bin"
        with context.open("wb") as fh:
            chunk = os.urandom(1 << 20)
            for _ in range(CONTEXT_FILE >> 20):
                fh.write(chunk)
        tool, t_hash = time_sha256sum(context)

    ratio = t_big / t_small
    print(f"inspect_file, median of {ROUNDS} calls (sparse 4 GiB file uses {disk} bytes of disk):")
    print(f"  4 KiB safetensors : {t_small * 1e6:8.1f} µs")
    print(f"  4 GiB safetensors : {t_big * 1e6:8.1f} µs")
    print(f"  ratio 4 GiB / 4 KiB: {ratio:.2f}")
    if read is not None:
        print(f"  bytes read to inspect the 4 GiB file: {read}")
    rate = CONTEXT_FILE / t_hash
    print("context (a full hash, what inspection avoids):")
    print(f"  {tool} of a real 256 MiB file: {t_hash:.3f} s ({rate / 1024**2:.0f} MiB/s)")
    print(
        f"  extrapolated to 4 GiB: {BIG / rate:.1f} s, i.e. ~{BIG / rate / t_big:,.0f}x inspection"
    )
    # "About as long": allow noise, but a per-byte cost would show as a ratio in the thousands.
    return 0 if ratio < 3 else 1


if __name__ == "__main__":
    sys.exit(main())
