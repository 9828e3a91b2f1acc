"""refresh_and_verify / status_rows against the fake WebUI, per variant."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import TypeVar

import pytest

from provision.kinds import Family, Kind
from provision.lock.lockfile import Lockfile
from provision.webui.client import RefreshStatus, WebuiClient
from provision.webui.errors import WebuiAuthError, WebuiError
from provision.webui.verify import (
    DiskState,
    RowStatus,
    StatusRow,
    WebuiRow,
    refresh_and_verify,
    status_rows,
)
from tests.fakes_webui.server import Dirs, FakeWebui, Variant
from tests.webui import modelfiles as mf

R = TypeVar("R", WebuiRow, StatusRow)


def _by_path(rows: Iterable[R]) -> dict[str, R]:
    return {r.path: r for r in rows}


def _add_everything(models_root: Path, lock: Lockfile) -> Lockfile:
    """What a sync adds while WebUI runs: one new model of each kind, some in subfolders."""
    mf.checkpoint(models_root / "Stable-diffusion/XL/new.safetensors", seed=1)
    mf.lora(models_root / "Lora/styles/new_lora.safetensors", seed=1)
    mf.vae(models_root / "VAE/new.vae.safetensors", seed=1)
    mf.embedding(models_root / "embeddings/neg/badhands.safetensors", seed=1)
    mf.hypernetwork(models_root / "hypernetworks/new_hn.pt", seed=1)
    # Adding into a subfolder leaves the top embeddings dir's mtime alone (WebUI's trigger).
    mf.age(models_root / "embeddings")
    return mf.lock_of(
        *lock.models,
        mf.entry_for(models_root, "Stable-diffusion/XL/new.safetensors", Kind.CHECKPOINT),
        mf.entry_for(models_root, "Lora/styles/new_lora.safetensors", Kind.LORA),
        mf.entry_for(models_root, "VAE/new.vae.safetensors", Kind.VAE),
        mf.entry_for(models_root, "embeddings/neg/badhands.safetensors", Kind.EMBEDDING),
        mf.entry_for(models_root, "hypernetworks/new_hn.pt", Kind.HYPERNETWORK),
    )


@pytest.mark.parametrize("variant", list(Variant))
def test_everything_listed_after_start(
    variant: Variant, models_root: Path, data_dir: Path, lock: Lockfile
) -> None:
    with FakeWebui(variant, Dirs.under(models_root, data_dir)) as webui:
        report = refresh_and_verify(lock, models_root, webui.url, None)
    assert report.ok, report.to_json()
    assert {r.status for r in report.rows} == {RowStatus.LISTED}
    names = {r.kind: r.webui_name for r in report.rows}
    assert names == {
        Kind.CHECKPOINT: "SD1/dreamshaper_8.safetensors",
        Kind.LORA: "add_detail",
        Kind.VAE: "vae-ft-mse.safetensors",
        Kind.EMBEDDING: "easynegative",
        Kind.HYPERNETWORK: "anime_3",
    }
    assert any("hypernetworks have no refresh route" in n for n in report.notes)


def test_a1111_110_refresh_lists_new_models(
    models_root: Path, data_dir: Path, lock: Lockfile
) -> None:
    with FakeWebui(Variant.A1111_110, Dirs.under(models_root, data_dir)) as webui:
        lock = _add_everything(models_root, lock)
        report = refresh_and_verify(lock, models_root, webui.url, None)
        routes = [p for m, p, _auth in webui.requests if m == "POST"]
    rows = _by_path(report.rows)
    assert rows["Stable-diffusion/XL/new.safetensors"].status is RowStatus.LISTED
    assert rows["Lora/styles/new_lora.safetensors"].status is RowStatus.LISTED
    assert rows["VAE/new.vae.safetensors"].status is RowStatus.LISTED
    # Embeddings wait for WebUI's next generation (folder mtime bumped), never a forced load.
    assert rows["embeddings/neg/badhands.safetensors"].status is RowStatus.PENDING
    # No refresh route: a new hypernetwork is not listed until WebUI restarts.
    hn = rows["hypernetworks/new_hn.pt"]
    assert hn.status is RowStatus.RESTART_REQUIRED and "restart" in hn.reason
    assert not report.ok
    assert routes == [
        "/sdapi/v1/refresh-checkpoints",
        "/sdapi/v1/refresh-vae",
        "/sdapi/v1/refresh-loras",
    ]
    assert {r.kind: r.status for r in report.refreshes}[Kind.HYPERNETWORK] is (
        RefreshStatus.UNSUPPORTED
    )


def test_no_model_loaded_sync_never_forces_a_checkpoint_load(
    models_root: Path, data_dir: Path, lock: Lockfile
) -> None:
    """A1111 1.10 with no model loaded: refresh-embeddings would load (and hash) a checkpoint,
    or answer 500 when none can load. sdprov lists, touches the folder, and reports success."""
    dirs = Dirs.under(models_root, data_dir)
    for path in dirs.ckpt.rglob("*.safetensors"):
        path.unlink()
    lock = mf.lock_of(*(m for m in lock.models if m.kind is not Kind.CHECKPOINT))
    with FakeWebui(Variant.A1111_110, dirs, model_loaded=False) as webui:
        with WebuiClient(webui.url) as client:  # the fake models the real route's failure
            assert client._request("POST", "/sdapi/v1/refresh-embeddings").status_code == 500
        webui.requests.clear()
        webui.model_loaded = False
        before = (models_root / "embeddings").stat().st_mtime_ns
        report = refresh_and_verify(lock, models_root, webui.url, None)
        posts = [p for m, p, _ in webui.requests if m == "POST"]
        assert webui.checkpoint_loads == 0 and not webui.model_loaded
    assert "/sdapi/v1/refresh-embeddings" not in posts
    assert (models_root / "embeddings").stat().st_mtime_ns > before
    assert report.ok, report.to_json()
    row = _by_path(report.rows)["embeddings/easynegative.safetensors"]
    assert row.status is RowStatus.PENDING and not row.problem


def test_refresh_embeddings_route_loads_a_checkpoint_in_the_fake(
    models_root: Path, data_dir: Path, lock: Lockfile
) -> None:
    """The fake's model of A1111: the route forces a load when none is loaded."""
    with FakeWebui(Variant.A1111_110, Dirs.under(models_root, data_dir), model_loaded=False) as w:
        with WebuiClient(w.url) as client:
            assert client._request("POST", "/sdapi/v1/refresh-embeddings").status_code == 200
        assert w.checkpoint_loads == 1 and w.model_loaded


def test_a1111_16_embeddings_fall_back_to_touching_the_folder(
    models_root: Path, data_dir: Path, lock: Lockfile
) -> None:
    with FakeWebui(Variant.A1111_16, Dirs.under(models_root, data_dir)) as webui:
        lock = _add_everything(models_root, lock)
        before = (models_root / "embeddings").stat().st_mtime
        report = refresh_and_verify(lock, models_root, webui.url, None)
        emb = {r.kind: r for r in report.refreshes}[Kind.EMBEDDING]
        assert emb.status is RefreshStatus.FALLBACK and emb.route is None
        assert (models_root / "embeddings").stat().st_mtime > before
        row = _by_path(report.rows)["embeddings/neg/badhands.safetensors"]
        assert row.status is RowStatus.PENDING
        assert row.problem is False
        # WebUI's next generation sees the bumped mtime and loads it.
        webui.generate()
        after = status_rows(lock, models_root, webui.url, None)
    assert _by_path(after)["embeddings/neg/badhands.safetensors"].webui is RowStatus.LISTED


def test_a1111_16_without_touch_a_subfolder_embedding_is_never_loaded(
    models_root: Path, data_dir: Path, lock: Lockfile
) -> None:
    """The control for the test above: WebUI's mtime rule is what the fallback works around."""
    with FakeWebui(Variant.A1111_16, Dirs.under(models_root, data_dir)) as webui:
        lock = _add_everything(models_root, lock)
        webui.generate()
        rows = _by_path(status_rows(lock, models_root, webui.url, None))
    assert rows["embeddings/neg/badhands.safetensors"].webui is RowStatus.MISSING


def test_forge_vaes_wait_for_a_ui_refresh_and_lycoris_is_not_scanned(
    models_root: Path, data_dir: Path, lock: Lockfile, tmp_path: Path
) -> None:
    lyco = tmp_path / "LyCORIS"
    mf.lora(lyco / "old_locon.safetensors")
    dirs = Dirs.under(models_root, data_dir)
    dirs = dataclasses.replace(dirs, lycoris=lyco)
    with FakeWebui(Variant.FORGE, dirs) as webui:
        lock = _add_everything(models_root, lock)
        report = refresh_and_verify(lock, models_root, webui.url, None)
        row = _by_path(report.rows)["VAE/new.vae.safetensors"]
        assert row.status is RowStatus.PENDING and "sd-modules" in row.reason
        assert ("GET", "/sdapi/v1/sd-modules", False) in webui.requests
        webui.ui_refresh()
        rows = _by_path(status_rows(lock, models_root, webui.url, None))
        with WebuiClient(webui.url) as client:
            loras = {m.name for m in client.list_loras()}
    assert rows["VAE/new.vae.safetensors"].webui is RowStatus.LISTED
    assert "old_locon" not in loras
    with FakeWebui(Variant.A1111_110, dirs) as webui:
        assert "old_locon" in webui.state.loras


def test_wrong_folder_extension_and_vae_suffix_are_missing(
    models_root: Path, data_dir: Path, lock: Lockfile
) -> None:
    # A checkpoint placed in Lora/, a LoRA saved as .bin, a hypernetwork as .safetensors,
    # and a checkpoint whose name ends .vae.safetensors (WebUI lists that as a VAE).
    mf.checkpoint(models_root / "Lora/misplaced_ckpt.safetensors", seed=2)
    mf.lora(models_root / "Lora/wrong_ext.bin", seed=2)
    mf.write_safetensors(models_root / "hypernetworks/hn.safetensors", {"x": [2, 2]})
    mf.checkpoint(models_root / "Stable-diffusion/looks_like.vae.safetensors", seed=3)
    broken = mf.lock_of(
        *lock.models,
        mf.entry_for(models_root, "Lora/misplaced_ckpt.safetensors", Kind.CHECKPOINT),
        mf.entry_for(models_root, "Lora/wrong_ext.bin", Kind.LORA),
        mf.entry_for(models_root, "hypernetworks/hn.safetensors", Kind.HYPERNETWORK),
        mf.entry_for(models_root, "Stable-diffusion/looks_like.vae.safetensors", Kind.CHECKPOINT),
    )
    with FakeWebui(Variant.A1111_110, Dirs.under(models_root, data_dir)) as webui:
        report = refresh_and_verify(broken, models_root, webui.url, None)
    rows = _by_path(report.rows)
    assert not report.ok
    assert rows["Lora/misplaced_ckpt.safetensors"].status is RowStatus.MISSING
    assert "Stable-diffusion/" in rows["Lora/misplaced_ckpt.safetensors"].reason
    assert rows["Lora/wrong_ext.bin"].status is RowStatus.MISSING
    assert rows["hypernetworks/hn.safetensors"].status is RowStatus.MISSING
    assert "VAE" in rows["Stable-diffusion/looks_like.vae.safetensors"].reason
    # The good ones are still fine.
    assert rows["Lora/add_detail.safetensors"].status is RowStatus.LISTED


def test_webui_pointed_at_another_folder_reports_missing(
    models_root: Path, data_dir: Path, lock: Lockfile, tmp_path: Path
) -> None:
    """WebUI started without --lora-dir: it reads <data-dir>/models/Lora, not ours."""
    dirs = Dirs.under(models_root, data_dir)
    other = tmp_path / "webui-install/models/Lora"
    other.mkdir(parents=True)
    dirs = dataclasses.replace(dirs, lora=other)
    with FakeWebui(Variant.A1111_110, dirs) as webui:
        report = refresh_and_verify(lock, models_root, webui.url, None)
    row = _by_path(report.rows)["Lora/add_detail.safetensors"]
    assert row.status is RowStatus.MISSING and "--lora-dir" in row.reason


def test_duplicate_lora_basename(models_root: Path, data_dir: Path, lock: Lockfile) -> None:
    mf.lora(models_root / "Lora/a/detail.safetensors", seed=4)
    mf.lora(models_root / "Lora/b/detail.safetensors", seed=5)
    dup = mf.lock_of(
        *lock.models,
        mf.entry_for(models_root, "Lora/a/detail.safetensors", Kind.LORA),
        mf.entry_for(models_root, "Lora/b/detail.safetensors", Kind.LORA),
    )
    with FakeWebui(Variant.A1111_110, Dirs.under(models_root, data_dir)) as webui:
        report = refresh_and_verify(dup, models_root, webui.url, None)
        listed = [n for n in webui.state.loras if n == "detail"]
    rows = _by_path(report.rows)
    assert listed == ["detail"]  # WebUI keeps one of the two
    statuses = {rows[p].status for p in ("Lora/a/detail.safetensors", "Lora/b/detail.safetensors")}
    assert RowStatus.DUPLICATE in statuses
    assert not report.ok


def test_same_name_from_a_file_sdprov_did_not_place(
    models_root: Path, data_dir: Path, lock: Lockfile
) -> None:
    """A stray `Lora/old/add_detail.pt` sorted after ours: WebUI's `add_detail` is not ours."""
    mf.lora(models_root / "Lora/zz/add_detail.pt", seed=6)
    with FakeWebui(Variant.A1111_110, Dirs.under(models_root, data_dir)) as webui:
        report = refresh_and_verify(lock, models_root, webui.url, None)
    row = _by_path(report.rows)["Lora/add_detail.safetensors"]
    assert row.status is RowStatus.DUPLICATE and "zz/add_detail.pt" in row.reason


def test_skipped_embedding_has_a_reason(models_root: Path, data_dir: Path, lock: Lockfile) -> None:
    mf.embedding(models_root / "embeddings/xl_neg.safetensors", width=2048)
    xl = mf.entry_for(
        models_root, "embeddings/xl_neg.safetensors", Kind.EMBEDDING, base=Family.SDXL
    )
    with FakeWebui(Variant.A1111_110, Dirs.under(models_root, data_dir)) as webui:
        report = refresh_and_verify(mf.lock_of(*lock.models, xl), models_root, webui.url, None)
    row = _by_path(report.rows)["embeddings/xl_neg.safetensors"]
    assert row.status is RowStatus.SKIPPED
    assert "2048" in row.reason and "768" in row.reason and "sdxl" in row.reason


def test_no_model_loaded_leaves_embeddings_unverified(
    models_root: Path, data_dir: Path, lock: Lockfile
) -> None:
    with FakeWebui(
        Variant.A1111_16, Dirs.under(models_root, data_dir), model_loaded=False
    ) as webui:
        rows = _by_path(status_rows(lock, models_root, webui.url, None))
    assert rows["embeddings/easynegative.safetensors"].webui is RowStatus.UNVERIFIED


def test_status_rows_disk_and_hash(models_root: Path, data_dir: Path, lock: Lockfile) -> None:
    (models_root / "Lora/add_detail.safetensors").write_bytes(b"truncated")
    (models_root / "VAE/vae-ft-mse.safetensors").unlink()
    with FakeWebui(Variant.A1111_110, Dirs.under(models_root, data_dir)) as webui:
        rows = _by_path(status_rows(lock, models_root, webui.url, None))
        posts = [p for m, p, _ in webui.requests if m == "POST"]
    assert posts == []  # status is read-only
    assert rows["Lora/add_detail.safetensors"].disk is DiskState.SIZE_DIFFERS
    assert rows["VAE/vae-ft-mse.safetensors"].disk is DiskState.MISSING
    assert rows["VAE/vae-ft-mse.safetensors"].problem
    ckpt = rows["Stable-diffusion/SD1/dreamshaper_8.safetensors"]
    assert (ckpt.kind, ckpt.family, ckpt.disk, ckpt.webui) == (
        Kind.CHECKPOINT,
        Family.SD1,
        DiskState.PRESENT,
        RowStatus.LISTED,
    )
    assert not ckpt.problem
    assert set(ckpt.to_json()) >= {"kind", "family", "disk", "webui", "problem"}


def test_auth_required_and_password_never_leaks(
    models_root: Path, data_dir: Path, lock: Lockfile, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    password = "hunter2-not-in-output"
    dirs = Dirs.under(models_root, data_dir)
    with FakeWebui(Variant.A1111_110, dirs, auth=("admin", password)) as webui:
        with pytest.raises(WebuiAuthError) as excinfo:
            refresh_and_verify(lock, models_root, webui.url, ("admin", "wrong-" + password))
        assert password not in str(excinfo.value)
        report = refresh_and_verify(lock, models_root, webui.url, ("admin", password))
        # Credentials in the URL are split off and redacted, never echoed.
        url_auth = webui.url.replace("http://", f"http://admin:{password}@")
        report2 = refresh_and_verify(lock, models_root, url_auth, None)
        # A1111's LoRA routes are not behind --api-auth: they answer without credentials.
        with WebuiClient(webui.url) as anonymous:
            assert [m.name for m in anonymous.list_loras()] == ["add_detail"]
    assert report.ok and report2.ok
    assert password not in str(report.to_json()) + str(report2.to_json())
    assert password not in caplog.text


def test_unreachable_webui_is_a_clear_error(models_root: Path, lock: Lockfile) -> None:
    with pytest.raises(WebuiError, match="cannot reach WebUI") as excinfo:
        refresh_and_verify(lock, models_root, "http://admin:pw@127.0.0.1:9", None)
    assert ":pw@" not in str(excinfo.value)
    assert "127.0.0.1:9" in str(excinfo.value)
