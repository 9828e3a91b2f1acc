"""The sync function's handler, called locally: a lock payload, loopback Civitai and HF, and a
temporary folder standing in for the NAS mounted at /mnt/auto."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from provision.cloudsync.handler import SyncError, handler, result_path
from tests.fakes import CivitaiServer, HfServer
from tests.integration.catalog import MANIFEST, build

TOKEN = "civitai-handler-token-93"
HF_TOKEN = "hf_handler_token_41"


def _sync_command_exists() -> bool:
    try:
        from provision.commands import sync  # noqa: F401
    except ImportError:
        return False
    return True


pytestmark = pytest.mark.skipif(
    not _sync_command_exists(), reason="the core `sdprov sync` command is not committed yet"
)


@pytest.fixture
def servers() -> Iterator[tuple[CivitaiServer, HfServer]]:
    with CivitaiServer(token=TOKEN) as civitai, HfServer(token=HF_TOKEN) as hf:
        yield civitai, hf


@pytest.fixture
def env(
    tmp_path: Path, servers: tuple[CivitaiServer, HfServer], monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    civitai, hf = servers
    values = {
        "SDPROV_CIVITAI_URL": civitai.api_url,
        "HF_ENDPOINT": hf.endpoint,
        "CIVITAI_TOKEN": TOKEN,
        "HF_TOKEN": HF_TOKEN,
        "SDPROV_RETRY_BASE_DELAY": "0.01",
        "NO_PROXY": "127.0.0.1,localhost",
        "HOME": str(tmp_path),
        "SDPROV_MODELS_ROOT": str(tmp_path / "nas" / "sd" / "models"),
        "SDPROV_DATA_DIR": str(tmp_path / "nas" / "sd"),
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("SDPROV_WEBUI_URLS", raising=False)
    return values


@pytest.fixture
def lock_bytes(
    tmp_path: Path, servers: tuple[CivitaiServer, HfServer], env: dict[str, str]
) -> bytes:
    civitai, hf = servers
    build(tmp_path, civitai, hf)
    work = tmp_path / "repo"
    (work / "manifests").mkdir(parents=True)
    (work / "manifests" / "models.yaml").write_text(MANIFEST)
    subprocess.run(
        [sys.executable, "-m", "provision.cli", "lock"],
        cwd=work, env={**os.environ, **env}, check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return (work / "manifests" / "models.lock.json").read_bytes()


def test_handler_syncs_the_lock_into_the_nas_folder(
    lock_bytes: bytes, env: dict[str, str], servers: tuple[CivitaiServer, HfServer]
) -> None:
    civitai, _ = servers
    result = json.loads(handler(lock_bytes, None))
    lock = json.loads(lock_bytes)
    root = Path(env["SDPROV_MODELS_ROOT"])
    assert result["models"] == len(lock["models"]) == 4
    assert result["sync"]["ok"] is True
    for entry in lock["models"]:
        placed = root / entry["path"]
        assert placed.stat().st_size == entry["size"]
    # WebUI's hash cache (1.6 reads cache.json from its data dir) was seeded
    assert result["warnings"] == []
    cache = json.loads((Path(env["SDPROV_DATA_DIR"]) / "cache.json").read_text())
    by_kind = {m["kind"]: m for m in lock["models"]}
    ckpt = cache["hashes"]["checkpoint/juggernaut_xl_v9.safetensors"]
    assert ckpt["sha256"] == by_kind["checkpoint"]["sha256"]
    assert (
        cache["hashes"]["textual_inversion/negative_xl"]["sha256"]
        == (by_kind["embedding"]["sha256"])
    )
    assert "lora/add-detail-xl" in cache["hashes-addnet"]  # LoRAs: WebUI's addnet hash
    for secret in (TOKEN, HF_TOKEN):
        assert secret not in json.dumps(result)

    # the same lock again: nothing is downloaded
    civitai.clear_requests()
    again = json.loads(handler(lock_bytes, None))
    assert again["sync"]["ok"] is True and not again["sync"].get("downloaded")
    assert [r for r in civitai.requests if r.host == "storage"] == []


def test_a_failed_sync_raises_its_own_message_without_the_token(
    lock_bytes: bytes, env: dict[str, str]
) -> None:
    lock = json.loads(lock_bytes)
    ckpt = next(m for m in lock["models"] if m["kind"] == "checkpoint")
    ckpt["sha256"] = "0" * 64  # the source's bytes no longer match the lock
    with pytest.raises(SyncError) as info:
        handler(json.dumps(lock).encode(), None)
    message = str(info.value)
    assert "sha256 mismatch" in message and "juggernaut" in message
    assert TOKEN not in message and HF_TOKEN not in message
    assert not (Path(env["SDPROV_MODELS_ROOT"]) / ckpt["path"]).exists()  # never placed


def test_a_lock_that_drops_most_models_stops_at_the_guard_unless_the_stack_prunes(
    lock_bytes: bytes, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    handler(lock_bytes, None)
    lock = json.loads(lock_bytes)
    root = Path(env["SDPROV_MODELS_ROOT"])
    kept = lock["models"][:1]
    smaller = json.dumps({**lock, "models": kept}).encode()
    with pytest.raises(SyncError) as info:
        handler(smaller, None)
    assert "sdprov:prune" in str(info.value)
    assert all((root / m["path"]).is_file() for m in lock["models"])  # nothing removed

    monkeypatch.setenv("SDPROV_SYNC_PRUNE", "1")
    result = json.loads(handler(smaller, None))
    assert result["sync"]["ok"] is True
    assert sorted(result["sync"]["removed"]) == sorted(m["path"] for m in lock["models"][1:])
    assert (root / kept[0]["path"]).is_file()


def test_a_payload_that_is_not_a_lock_is_refused_before_any_io(env: dict[str, str]) -> None:
    with pytest.raises(SyncError, match="not JSON"):
        handler(b"<html>", None)
    with pytest.raises(SyncError, match="version"):
        handler(json.dumps({"version": 99, "models": []}).encode(), None)
    assert not Path(env["SDPROV_MODELS_ROOT"]).exists()


def test_on_ecs_the_webui_is_refreshed_and_verified_by_the_engine(
    lock_bytes: bytes, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The handler calls `refresh_and_verify` (what `sdprov sync --webui` runs), not its own."""
    from tests.fakes_webui.server import Dirs, FakeWebui, Variant

    root, data = Path(env["SDPROV_MODELS_ROOT"]), Path(env["SDPROV_DATA_DIR"])
    with FakeWebui(
        Variant.A1111_110, Dirs.under(root, data), auth=("admin", "pw-ecs-7"), model_width=2048
    ) as ui:  # an SDXL checkpoint loaded
        monkeypatch.setenv("SDPROV_WEBUI_URLS", ui.url)
        monkeypatch.setenv("SDPROV_WEBUI_AUTH", "admin:pw-ecs-7")
        result = json.loads(handler(lock_bytes, None))
        calls = list(ui.requests)
    assert result["warnings"] == [] and result["status"] == "succeeded"
    refreshed = {path for method, path, sent in calls if method == "POST" and sent}
    assert "/sdapi/v1/refresh-checkpoints" in refreshed
    assert any(path.startswith("/sdapi/v1/sd-models") for _, path, _ in calls)  # read back
    assert "pw-ecs-7" not in json.dumps(result)
    saved = json.loads(result_path(str(data), lock_bytes).read_text())
    assert saved["status"] == "succeeded"


def test_a_report_event_returns_the_result_the_last_run_wrote(
    lock_bytes: bytes, env: dict[str, str]
) -> None:
    lock = json.loads(lock_bytes)
    lock["models"][0]["sha256"] = "0" * 64
    bad = json.dumps(lock).encode()
    with pytest.raises(SyncError):
        handler(bad, None)
    sha = hashlib.sha256(bad).hexdigest()
    report = json.loads(handler(json.dumps({"sdprov_report": {"payload_sha256": sha}}).encode(),
                                None))  # fmt: skip
    assert report["status"] == "failed" and "sha256 mismatch" in report["error"]
    unknown = json.loads(handler(b'{"sdprov_report": {"payload_sha256": "' + b"f" * 64 + b'"}}',
                                 None))  # fmt: skip
    assert unknown["status"] == "unknown"
    odd = json.loads(handler(b'{"sdprov_report": {"payload_sha256": "../../etc"}}', None))
    assert odd["status"] == "unknown" and "64 hex" in odd["error"]
