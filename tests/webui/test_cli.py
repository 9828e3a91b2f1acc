"""`sdprov webui ...` as a user runs it: real subprocesses."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import diskcache

from provision.lock.lockfile import Lockfile
from tests.fakes_webui.server import Dirs, FakeWebui, Variant

REPO = Path(__file__).resolve().parents[2]


def sdprov(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SD_WEBUI_")}
    full_env.pop("SDPROV_WEBUI_AUTH", None)
    full_env["PYTHONPATH"] = str(REPO)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "provision.cli", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_args_prints_one_shell_line(tmp_path: Path) -> None:
    out = sdprov(
        "webui", "args", "--models-root", "sd models", "--data-dir", "sd", "--auth", cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 1
    words = shlex.split(lines[0])
    assert words[words.index("--ckpt-dir") + 1] == str(tmp_path / "sd models/Stable-diffusion")
    assert words[words.index("--data-dir") + 1] == str(tmp_path / "sd")
    assert '--api-auth "$SDPROV_WEBUI_AUTH"' in lines[0]


def test_args_json(tmp_path: Path) -> None:
    out = sdprov("webui", "args", "--models-root", "/m", "--fork", "forge", "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["args"][:2] == ["--api", "--listen"]


def test_seed_cache_default_manifest_lock(
    tmp_path: Path, models_root: Path, data_dir: Path, lock: Lockfile
) -> None:
    (tmp_path / "manifests").mkdir()
    lock.write(tmp_path / "manifests/models.lock.json")
    out = sdprov(
        "webui",
        "seed-cache",
        "--models-root",
        str(models_root),
        "--data-dir",
        str(data_dir),
        "--webui",
        "http://127.0.0.1:9",  # nothing listens there
        "--json",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert len(report["entries"]) == 4
    assert report["skipped"][0]["kind"] == "vae"
    with diskcache.Cache(
        str(data_dir / "cache/hashes-addnet"), size_limit=2**32, disk_min_file_size=2**18
    ) as cache:
        assert cache.get("lora/add_detail")["sha256"] == next(
            e["sha256"] for e in report["entries"] if e["key"] == "lora/add_detail"
        )
    assert "hashes" in json.loads((data_dir / "cache.json").read_text())


def test_seed_cache_refuses_while_16_runs(
    tmp_path: Path, models_root: Path, data_dir: Path, lock: Lockfile
) -> None:
    lock_path = tmp_path / "my.lock.json"
    lock.write(lock_path)
    args = ["--models-root", str(models_root), "--data-dir", str(data_dir)]
    with FakeWebui(Variant.A1111_16, Dirs.under(models_root, data_dir)) as webui:
        seed = ["webui", "seed-cache", "--lock", str(lock_path), *args, "--webui", webui.url]
        out = sdprov(*seed, cwd=tmp_path)
        assert out.returncode == 1
        assert "not writing" in out.stderr and "--force" in out.stderr
        assert "Traceback" not in out.stderr
        assert not (data_dir / "cache.json").exists()
        forced = sdprov(*seed, "--force", "--format", "json", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert "seeded 4 hash(es)" in forced.stderr


def test_seed_cache_usage_errors(tmp_path: Path, models_root: Path, data_dir: Path) -> None:
    args = ["--models-root", str(models_root), "--data-dir", str(data_dir)]
    missing = sdprov("webui", "seed-cache", *args, cwd=tmp_path)
    assert missing.returncode == 2
    assert "manifests/models.lock.json" in missing.stderr and "sdprov lock" in missing.stderr
    both = sdprov("webui", "seed-cache", "m.yaml", "--lock", "x.json", *args, cwd=tmp_path)
    assert both.returncode == 2 and "not both" in both.stderr
