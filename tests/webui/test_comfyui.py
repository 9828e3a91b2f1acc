"""`sync --webui` / `status --webui` against a ComfyUI-compatible server (loopback, real files)."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from provision.kinds import Kind
from provision.lock.lockfile import Lockfile
from provision.webui.comfyui_paths import extra_model_paths_yaml
from provision.webui.errors import WebuiAuthError
from provision.webui.verify import RowStatus, refresh_and_verify, status_rows
from tests.fakes_webui.comfyui import FakeComfyUI
from tests.webui.modelfiles import entry_for, lora

AUTH = ("admin", "comfy-secret-pass")


@pytest.fixture
def extra_yaml(tmp_path: Path, models_root: Path) -> Path:
    path = tmp_path / "comfy-data" / "extra_model_paths.yaml"
    path.parent.mkdir()
    path.write_text(extra_model_paths_yaml(models_root))
    return path


def test_every_locked_file_is_listed_in_its_category(
    tmp_path: Path, models_root: Path, lock: Lockfile, extra_yaml: Path
) -> None:
    with FakeComfyUI(tmp_path / "ComfyUI", extra_yaml=extra_yaml) as comfy:
        report = refresh_and_verify(lock, models_root, comfy.url, None)
    assert report.ok, report.to_json()
    names = {row.path: row.webui_name for row in report.rows}
    # ComfyUI's name: the path under the category's root, subfolders kept.
    assert (
        names["Stable-diffusion/SD1/dreamshaper_8.safetensors"] == "SD1/dreamshaper_8.safetensors"
    )
    assert names["Lora/add_detail.safetensors"] == "add_detail.safetensors"
    assert {row.status for row in report.rows} == {RowStatus.LISTED}
    assert report.notes == ("server: ComfyUI 0.33.0",)
    # Model cards beside a LoRA are never listed as models (ComfyUI filters by extension).
    for card in ("add_detail.json", "add_detail.preview.png", "add_detail.civitai.info"):
        (models_root / "Lora" / card).write_text("{}")
    with FakeComfyUI(tmp_path / "ComfyUI", extra_yaml=extra_yaml) as comfy:
        assert comfy.filename_list("loras") == ["add_detail.safetensors"]
    assert {r.route for r in report.refreshes} == {None}  # no refresh route: folder mtimes


def test_a_file_hidden_by_an_unchanged_folder_mtime_is_made_visible(
    tmp_path: Path, models_root: Path, lock: Lockfile, extra_yaml: Path
) -> None:
    with FakeComfyUI(tmp_path / "ComfyUI", extra_yaml=extra_yaml) as comfy:
        assert refresh_and_verify(lock, models_root, comfy.url, None).ok
        # A new LoRA lands within the folder's mtime tick (a NAS, or `rsync -a` putting the old
        # mtime back): ComfyUI's cached listing does not see it...
        folder = models_root / "Lora"
        before = folder.stat().st_mtime_ns
        lora(folder / "new_style.safetensors", seed=3)
        os.utime(folder, ns=(before, before))
        assert "new_style.safetensors" not in comfy.filename_list("loras")
        scans = comfy.scans
        # ...until sdprov bumps the folder's mtime before listing.
        bigger = lock_with(lock, models_root, "Lora/new_style.safetensors")
        report = refresh_and_verify(bigger, models_root, comfy.url, None)
        assert comfy.scans > scans
    assert report.ok, report.to_json()


def test_a_file_outside_the_configured_folders_fails(
    tmp_path: Path, models_root: Path, lock: Lockfile, extra_yaml: Path
) -> None:
    (models_root / "Lora/add_detail.safetensors").rename(models_root / "add_detail.safetensors")
    with FakeComfyUI(tmp_path / "ComfyUI", extra_yaml=extra_yaml) as comfy:
        report = refresh_and_verify(lock, models_root, comfy.url, None)
    assert not report.ok
    (problem,) = report.problems
    assert problem.path == "Lora/add_detail.safetensors"
    assert problem.status is RowStatus.MISSING
    assert "--extra-model-paths-config" in problem.reason


def test_comfyui_without_the_extra_paths_lists_nothing_of_ours(
    tmp_path: Path, models_root: Path, lock: Lockfile
) -> None:
    with FakeComfyUI(tmp_path / "ComfyUI") as comfy:
        report = refresh_and_verify(lock, models_root, comfy.url, None)
    assert len(report.problems) == len(lock.models)


def test_basic_auth_in_front(
    tmp_path: Path, models_root: Path, lock: Lockfile, extra_yaml: Path
) -> None:
    with FakeComfyUI(tmp_path / "ComfyUI", extra_yaml=extra_yaml, auth=AUTH) as comfy:
        with pytest.raises(WebuiAuthError) as info:
            refresh_and_verify(lock, models_root, comfy.url, None)
        assert AUTH[1] not in str(info.value)
        assert refresh_and_verify(lock, models_root, comfy.url, AUTH).ok
        assert all(sent for path, sent in comfy.requests[-3:])


def test_status_reads_without_touching(
    tmp_path: Path, models_root: Path, lock: Lockfile, extra_yaml: Path
) -> None:
    mtime = (models_root / "Lora").stat().st_mtime_ns
    with FakeComfyUI(tmp_path / "ComfyUI", extra_yaml=extra_yaml) as comfy:
        rows = status_rows(lock, models_root, comfy.url, None)
    assert (models_root / "Lora").stat().st_mtime_ns == mtime
    assert {row.webui for row in rows} == {RowStatus.LISTED}
    assert not any(row.problem for row in rows)


def lock_with(lock: Lockfile, models_root: Path, path: str) -> Lockfile:
    extra = entry_for(models_root, path, Kind.LORA)
    return replace(lock, models=(*lock.models, extra))
