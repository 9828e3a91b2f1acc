from __future__ import annotations

from pathlib import Path

import pytest

from provision.lock.lockfile import Lockfile
from tests.webui.modelfiles import standard_set


@pytest.fixture
def models_root(tmp_path: Path) -> Path:
    root = tmp_path / "models"
    root.mkdir()
    return root


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    return data


@pytest.fixture
def lock(models_root: Path) -> Lockfile:
    return standard_set(models_root)


@pytest.fixture(autouse=True)
def _no_cache_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # WebUI's own env vars would redirect where seeding writes.
    monkeypatch.delenv("SD_WEBUI_CACHE_FILE", raising=False)
    monkeypatch.delenv("SD_WEBUI_CACHE_DIR", raising=False)
    monkeypatch.delenv("SDPROV_WEBUI_AUTH", raising=False)
