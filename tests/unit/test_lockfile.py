from __future__ import annotations

from pathlib import Path

import pytest

from provision.errors import LockfileError
from provision.kinds import Family, Kind
from provision.lock.lockfile import LockEntry, Lockfile, check_relative_path, lock_path_for
from provision.sources.locked import CivitaiSource


def _entry(path: str, kind: Kind = Kind.LORA) -> LockEntry:
    return LockEntry(
        name=Path(path).stem,
        kind=kind,
        path=path,
        size=10,
        sha256="a" * 64,
        base=Family.SD1,
        format="safetensors",
        source=CivitaiSource(
            model_id=1, version_id=2, file_id=3, air="urn:air:sd1:lora:civitai:1@2"
        ),
        entry_digest="d" * 64,
    )


def test_render_is_sorted_and_roundtrips(tmp_path: Path) -> None:
    lock = Lockfile(
        manifest_sha256="f" * 64,
        models=(_entry("Lora/b.safetensors"), _entry("Stable-diffusion/a.safetensors",
                Kind.CHECKPOINT), _entry("Lora/a.safetensors")),
    )  # fmt: skip
    text = lock.render()
    assert text.index("Stable-diffusion/a") < text.index("Lora/a") < text.index("Lora/b")
    target = tmp_path / "models.lock.json"
    assert lock.write(target) is True
    assert lock.write(target) is False  # unchanged content is not rewritten
    again = Lockfile.load(target)
    assert again.render() == text
    assert again.digest == lock.digest


def test_lock_path_is_sibling() -> None:
    assert lock_path_for(Path("manifests/models.yaml")) == Path("manifests/models.lock.json")


@pytest.mark.parametrize(
    "bad", ["/etc/passwd", "../x", "Lora/../../x", "C:/x", "Lora\\x", "", ".sdprov/state.json"]
)
def test_paths_that_escape_are_refused(bad: str) -> None:
    with pytest.raises(LockfileError):
        check_relative_path(bad)


def test_unknown_version_is_a_clear_error() -> None:
    with pytest.raises(LockfileError, match="version 9 is not supported"):
        Lockfile.parse('{"version": 9, "models": []}', "x.lock.json")
