"""The example manifests in manifests/ and the README's folder table stay true to the code."""

from __future__ import annotations

from pathlib import Path

import pytest

from provision.kinds import KIND_FOLDERS, Kind
from provision.manifest.parse import parse_manifest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["a1111-sd15.yaml", "comfyui-flux.yaml", "models.yaml"])
def test_example_manifests_parse(name: str) -> None:
    path = REPO / "manifests" / name
    manifest = parse_manifest(path.read_bytes(), str(path))
    assert manifest.specs


def test_flux_example_has_every_part() -> None:
    path = REPO / "manifests" / "comfyui-flux.yaml"
    kinds = {s.kind for s in parse_manifest(path.read_bytes(), str(path)).specs}
    assert {Kind.DIFFUSION_MODEL, Kind.TEXT_ENCODER, Kind.VAE, Kind.CONTROLNET} <= kinds


def test_readme_folder_table_names_every_kind() -> None:
    readme = (REPO / "README.md").read_text()
    table = readme.split("## Models root", 1)[1].split("\n\n", 2)[1]
    for kind in Kind:
        assert f"`{kind.section}`" in table and f"`{KIND_FOLDERS[kind]}/`" in table, kind
