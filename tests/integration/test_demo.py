"""The README's first command (`./dev demo`) keeps working, twice in a row."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_demo_locks_and_syncs_offline_and_is_repeatable(tmp_path: Path) -> None:
    manifest = tmp_path / "demo.yaml"
    shutil.copy(ROOT / "manifests" / "demo.yaml", manifest)
    models = tmp_path / "models"
    for _ in range(2):
        proc = subprocess.run(
            [sys.executable, "-m", "tests.demo", "--manifest", str(manifest),
             "--models-root", str(models)],
            cwd=ROOT, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "4 ok" in proc.stderr
    assert (models / "Stable-diffusion" / "juggernaut_xl_v9.safetensors").is_file()
    assert (tmp_path / "demo.lock.json").is_file()
