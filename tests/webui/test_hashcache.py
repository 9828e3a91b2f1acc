"""Seeding WebUI's hash cache, read back the way WebUI reads it."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import diskcache
import pytest

from provision.kinds import Kind
from provision.lock.lockfile import Lockfile
from provision.webui import hashcache
from provision.webui.errors import CacheBusyError, WebuiError
from provision.webui.hashcache import CacheFormat, addnet_hash, seed_cache
from tests.fakes_webui.server import Dirs, FakeWebui, Variant
from tests.webui import modelfiles as mf

EXPECTED_KEYS = {
    ("hashes", "checkpoint/SD1/dreamshaper_8.safetensors"),
    ("hashes-addnet", "lora/add_detail"),
    ("hashes", "textual_inversion/easynegative"),
    ("hashes", "hypernet/anime_3"),
}


def _tensor_data_sha256(path: Path) -> str:
    data = path.read_bytes()
    n = int.from_bytes(data[:8], "little")
    return hashlib.sha256(data[8 + n :]).hexdigest()


def _webui_json(data_dir: Path) -> dict[str, Any]:
    loaded = json.loads((data_dir / "cache.json").read_text(encoding="utf8"))
    assert isinstance(loaded, dict)
    return loaded


def _webui_diskcache(data_dir: Path, subsection: str, key: str) -> Any:
    # Exactly WebUI's modules/cache.py make_cache.
    with diskcache.Cache(
        os.path.join(data_dir, "cache", subsection),  # noqa: PTH118 - WebUI's own call
        size_limit=2**32,
        disk_min_file_size=2**18,
    ) as cache:
        return cache.get(key)


def _would_recompute(file: Path, cached: dict[str, Any]) -> bool:
    """WebUI's hashes.sha256_from_cache rule."""
    ondisk_mtime = os.path.getmtime(file)  # noqa: PTH204 - WebUI's own call
    return ondisk_mtime > cached["mtime"] or cached.get("sha256") is None


def _expected_sha(lock: Lockfile, models_root: Path, path: str) -> str:
    entry = lock.by_path()[path]
    if entry.kind is Kind.LORA:
        return _tensor_data_sha256(models_root / path)
    return entry.sha256


def test_addnet_hash_is_sha256_of_tensor_data(models_root: Path, lock: Lockfile) -> None:
    path = models_root / "Lora/add_detail.safetensors"
    assert addnet_hash(path) == _tensor_data_sha256(path)
    assert addnet_hash(path) != lock.by_path()["Lora/add_detail.safetensors"].sha256


def test_addnet_hash_streams_past_a_large_header(tmp_path: Path) -> None:
    meta = {f"k{i}": "x" * 1000 for i in range(3000)}  # 3 MB header: more than one chunk
    path = mf.write_safetensors(tmp_path / "big.safetensors", {"w": [512, 1024]}, metadata=meta)
    assert addnet_hash(path) == _tensor_data_sha256(path)


def test_seed_json_read_back_like_webui(models_root: Path, data_dir: Path, lock: Lockfile) -> None:
    (data_dir / "cache.json").write_text(
        json.dumps(
            {
                "hashes": {"checkpoint/other.safetensors": {"mtime": 1.0, "sha256": "ab" * 32}},
                "extensions-git": {"sd-webui-controlnet": {"mtime": 2.0, "value": {"x": 1}}},
            }
        )
    )
    report = seed_cache(lock, models_root, data_dir, formats=[CacheFormat.JSON])
    assert report.cache_file == data_dir / "cache.json" and report.cache_dir is None
    data = _webui_json(data_dir)
    # Other keys survive the merge.
    assert data["hashes"]["checkpoint/other.safetensors"]["sha256"] == "ab" * 32
    assert data["extensions-git"]["sd-webui-controlnet"]["value"] == {"x": 1}
    seeded = {(e.subsection, e.key) for e in report.entries}
    assert seeded == EXPECTED_KEYS
    for entry in report.entries:
        cached = data[entry.subsection][entry.key]
        assert not _would_recompute(models_root / entry.path, cached)
        assert cached["sha256"] == _expected_sha(lock, models_root, entry.path)
    assert [s.kind for s in report.skipped] == [Kind.VAE]
    assert not list(data_dir.glob(".cache.json.*"))  # no temp file left behind


def test_seed_diskcache_read_back_like_webui(
    models_root: Path, data_dir: Path, lock: Lockfile
) -> None:
    report = seed_cache(lock, models_root, data_dir, formats=[CacheFormat.DISKCACHE])
    assert report.cache_file is None and not (data_dir / "cache.json").exists()
    for subsection, key in EXPECTED_KEYS:
        cached = _webui_diskcache(data_dir, subsection, key)
        entry = next(e for e in report.entries if e.key == key)
        assert isinstance(cached, dict)
        assert not _would_recompute(models_root / entry.path, cached)
        assert cached["sha256"] == _expected_sha(lock, models_root, entry.path)


def test_later_modification_is_recomputed(
    models_root: Path, data_dir: Path, lock: Lockfile
) -> None:
    """The control: WebUI's rule does catch a file changed after seeding."""
    seed_cache(lock, models_root, data_dir, formats=[CacheFormat.DISKCACHE])
    ckpt = models_root / "Stable-diffusion/SD1/dreamshaper_8.safetensors"
    st = ckpt.stat()
    os.utime(ckpt, (st.st_atime, st.st_mtime + 10))
    cached = _webui_diskcache(data_dir, "hashes", "checkpoint/SD1/dreamshaper_8.safetensors")
    assert _would_recompute(ckpt, cached)


def test_running_110_lists_seeded_sha256_without_hashing(
    models_root: Path, data_dir: Path, lock: Lockfile
) -> None:
    with FakeWebui(Variant.A1111_110, Dirs.under(models_root, data_dir)) as webui:
        ckpt = webui._sd_models()[0]
        assert ckpt["sha256"] is None and ckpt["title"] == "SD1/dreamshaper_8.safetensors"
        seed_cache(lock, models_root, data_dir, webui_url=webui.url)  # both formats: 1.10 is ok
        ckpt = webui._sd_models()[0]
    sha = lock.by_path()["Stable-diffusion/SD1/dreamshaper_8.safetensors"].sha256
    assert ckpt["sha256"] == sha
    assert ckpt["title"] == f"SD1/dreamshaper_8.safetensors [{sha[:10]}]"


def test_refuses_json_while_16_runs(models_root: Path, data_dir: Path, lock: Lockfile) -> None:
    with FakeWebui(Variant.A1111_16, Dirs.under(models_root, data_dir)) as webui:
        with pytest.raises(CacheBusyError, match=r"older than 1\.9\.1") as excinfo:
            seed_cache(lock, models_root, data_dir, webui_url=webui.url)
        assert "stop WebUI" in excinfo.value.render()
        assert not (data_dir / "cache.json").exists()
        assert not (data_dir / "cache").exists()  # nothing written at all
        # Why: with --force the entries are written, and 1.6 overwrites them from memory.
        seed_cache(lock, models_root, data_dir, webui_url=webui.url, force=True)
        assert "hashes-addnet" in _webui_json(data_dir)
        webui.dump_cache()
        assert "hashes-addnet" not in _webui_json(data_dir)


def test_16_started_after_seeding_uses_the_hashes(
    models_root: Path, data_dir: Path, lock: Lockfile
) -> None:
    seed_cache(lock, models_root, data_dir, formats=[CacheFormat.JSON])
    with FakeWebui(Variant.A1111_16, Dirs.under(models_root, data_dir)) as webui:
        ckpt = webui._sd_models()[0]
    assert ckpt["sha256"] == lock.by_path()["Stable-diffusion/SD1/dreamshaper_8.safetensors"].sha256


def test_refuses_under_api_auth_when_version_unknown(
    models_root: Path, data_dir: Path, lock: Lockfile
) -> None:
    dirs = Dirs.under(models_root, data_dir)
    with FakeWebui(Variant.A1111_110, dirs, auth=("u", "secret-pw")) as webui:
        with pytest.raises(CacheBusyError, match="version unknown") as excinfo:
            seed_cache(lock, models_root, data_dir, webui_url=webui.url)
        assert "secret-pw" not in excinfo.value.render()
        report = seed_cache(
            lock, models_root, data_dir, webui_url=webui.url, webui_auth=("u", "secret-pw")
        )
    assert report.cache_file is not None


def test_refuses_while_webui_dump_in_progress(
    models_root: Path, data_dir: Path, lock: Lockfile
) -> None:
    (data_dir / "cache.json-").write_text("{}")
    with pytest.raises(CacheBusyError, match="temp file"):
        seed_cache(lock, models_root, data_dir)


def test_refuses_when_cache_json_changes_during_merge(
    models_root: Path, data_dir: Path, lock: Lockfile, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache_json = data_dir / "cache.json"
    cache_json.write_text('{"hashes": {}}')
    real_read = hashcache._read_json_cache

    def read_then_webui_writes(path: Path) -> dict[str, Any]:
        data = real_read(path)
        path.write_text('{"hashes": {}, "written-by": {"webui": {}}}')  # WebUI dumps meanwhile
        return data

    monkeypatch.setattr(hashcache, "_read_json_cache", read_then_webui_writes)
    with pytest.raises(CacheBusyError, match="changed while"):
        seed_cache(lock, models_root, data_dir, formats=[CacheFormat.JSON], force=True)
    assert "written-by" in json.loads(cache_json.read_text())


def test_first_diskcache_seed_carries_old_cache_json_over(
    models_root: Path, data_dir: Path, lock: Lockfile
) -> None:
    """1.9+ converts cache.json only if cache/ is absent; creating cache/ must not lose it."""
    (data_dir / "cache.json").write_text(
        json.dumps({"extensions-git": {"ext": {"mtime": 3.0, "value": {"commit": "abc"}}}})
    )
    report = seed_cache(lock, models_root, data_dir, formats=[CacheFormat.DISKCACHE])
    assert _webui_diskcache(data_dir, "extensions-git", "ext") == {
        "mtime": 3.0,
        "value": {"commit": "abc"},
    }
    assert report.notes


def test_skips_what_it_cannot_vouch_for(models_root: Path, data_dir: Path, lock: Lockfile) -> None:
    # Same size, other bytes: caught by the LoRA pass, which also checks the full sha256.
    lora = models_root / "Lora/add_detail.safetensors"
    data = bytearray(lora.read_bytes())
    data[-1] ^= 0xFF
    lora.write_bytes(bytes(data))
    (models_root / "hypernetworks/anime_3.pt").unlink()
    (models_root / "embeddings/easynegative.safetensors").write_bytes(b"short")
    report = seed_cache(lock, models_root, data_dir, formats=[CacheFormat.JSON])
    reasons = {s.path: s.reason for s in report.skipped}
    assert "differs from the lock" in reasons["Lora/add_detail.safetensors"]
    assert "not on disk" in reasons["hypernetworks/anime_3.pt"]
    assert "size" in reasons["embeddings/easynegative.safetensors"]
    assert [e.key for e in report.entries] == ["checkpoint/SD1/dreamshaper_8.safetensors"]


def test_invalid_cache_json_is_left_alone(
    models_root: Path, data_dir: Path, lock: Lockfile
) -> None:
    (data_dir / "cache.json").write_text("{not json")
    with pytest.raises(WebuiError, match="not valid JSON"):
        seed_cache(lock, models_root, data_dir, formats=[CacheFormat.JSON])
    assert (data_dir / "cache.json").read_text() == "{not json"


def test_pickle_lora_uses_full_sha256_under_hashes(
    models_root: Path, data_dir: Path, lock: Lockfile
) -> None:
    mf.hypernetwork(models_root / "Lora/old_style.pt", seed=9)  # bytes only: a .pt LoRA
    entry = mf.entry_for(models_root, "Lora/old_style.pt", Kind.LORA)
    report = seed_cache(
        mf.lock_of(*lock.models, entry), models_root, data_dir, formats=[CacheFormat.JSON]
    )
    assert _webui_json(data_dir)["hashes"]["lora/old_style"]["sha256"] == entry.sha256
    assert any(e.key == "lora/old_style" and e.subsection == "hashes" for e in report.entries)
