"""`sdprov inspect` as a user runs it: a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.fixtures.modelfiles import make_checkpoint, make_lora, write_malicious_pickle

ROOT = Path(__file__).resolve().parents[2]


def _sdprov(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "provision.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )


def test_plain_output_per_file(tmp_path: Path) -> None:
    lora = make_lora(tmp_path / "detail.safetensors", "sd1", "LoHa")
    ckpt = make_checkpoint(tmp_path / "xl.ckpt", "sdxl")
    result = _sdprov("inspect", lora, ckpt)
    assert result.returncode == 0, result.stderr
    blocks = result.stdout.strip().split("\n\n")
    assert blocks[0].splitlines()[0] == str(lora)
    assert "  kind      lora (LoHa)" in blocks[0]
    assert "  family    sd1" in blocks[0]
    assert "  format    safetensors" in blocks[0]
    assert "cross-attention input width 768 → sd1" in blocks[0]
    assert "  kind      checkpoint" in blocks[1]
    assert "  pickle    safe: " in blocks[1]
    assert result.stderr == ""


def test_json_output(tmp_path: Path) -> None:
    lora = make_lora(tmp_path / "a.safetensors", "flux", "LoKr")
    result = _sdprov("inspect", "--json", lora)
    assert result.returncode == 0, result.stderr
    (entry,) = json.loads(result.stdout)["files"]
    assert (entry["kind"], entry["variant"], entry["family"]) == ("lora", "LoKr", "flux")
    assert entry["format"] == "safetensors"
    assert "pickle_scan" not in entry


def test_unsafe_and_unreadable_files_exit_1_but_every_file_is_reported(tmp_path: Path) -> None:
    evil = write_malicious_pickle(tmp_path / "evil.ckpt")
    good = make_lora(tmp_path / "ok.safetensors", "sdxl")
    result = _sdprov("inspect", "--json", evil, tmp_path / "missing.pt", good)
    assert result.returncode == 1
    files = json.loads(result.stdout)["files"]
    assert [Path(f["path"]).name for f in files] == ["evil.ckpt", "missing.pt", "ok.safetensors"]
    assert files[0]["pickle_scan"]["safe"] is False
    assert "os.system" in files[0]["pickle_scan"]["imports"]
    assert "cannot read" in files[1]["error"]
    assert files[2]["family"] == "sdxl"
    assert "sdprov: error: evil.ckpt: unsafe pickle: imports os.system" in result.stderr
    assert "picklescan" not in result.stderr.lower()  # its own warnings stay quiet


def test_usage_errors_exit_2() -> None:
    result = _sdprov("inspect")
    assert result.returncode == 2
    assert "FILE" in result.stderr
