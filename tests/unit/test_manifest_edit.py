"""In-place manifest edits against golden files: comments, order, indentation and flow style
survive; only the edited entry's bytes change. Set SDPROV_UPDATE_GOLDEN=1 to rewrite goldens
(then read the diff before committing it)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from provision.manifest.edit import ManifestEditError, add_entry, remove_entries
from provision.manifest.parse import parse_manifest

GOLDEN = Path(__file__).parent.parent / "golden" / "edit"

Edit = Callable[[str], str]
CASES: dict[str, tuple[str, Edit]] = {
    "odd.add-block": (
        "odd.yaml",
        lambda t: add_entry(t, "checkpoints", {"civitai": 5, "name": "five"}, file="odd.yaml"),
    ),
    "odd.add-column0": (
        "odd.yaml",
        lambda t: add_entry(t, "embeddings", {"hf": "a/b/c.safetensors@v1"}, file="odd.yaml"),
    ),
    "odd.add-flow": (
        "odd.yaml",
        lambda t: add_entry(
            t, "loras", {"civitai": "https://civitai.com/models/9?modelVersionId=10"}, file="o"
        ),
    ),
    "odd.add-null-section": (
        "odd.yaml",
        lambda t: add_entry(
            t,
            "hypernetworks",
            {"url": "https://example.org/a b.pt", "sha256": "ab" * 32, "allow_pickle": True},
            file="odd.yaml",
        ),
    ),
    "odd.remove-first-and-flow": (
        "odd.yaml",
        lambda t: remove_entries(t, {("checkpoints", 0), ("loras", 1)}, file="odd.yaml"),
    ),
    "odd.remove-last-of-section": (
        "odd.yaml",
        lambda t: remove_entries(t, {("embeddings", 0), ("vaes", 0)}, file="odd.yaml"),
    ),
    "flow.add": (
        "flow.yaml",
        lambda t: add_entry(t, "loras", {"civitai": 1, "file": {"fp": "fp16"}}, file="f"),
    ),
    "flow.add-empty": (
        "flow.yaml",
        lambda t: add_entry(t, "vaes", {"hf": "o/r/vae.safetensors"}, file="flow.yaml"),
    ),
    "flow.remove-middle": (
        "flow.yaml",
        lambda t: remove_entries(t, {("loras", 0)}, file="flow.yaml"),
    ),
    "empty.add": (
        "empty.yaml",
        lambda t: add_entry(t, "loras", {"civitai": "58390@62833"}, file="empty.yaml"),
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_edit_matches_golden(case: str) -> None:
    source, edit = CASES[case]
    before = (GOLDEN / source).read_text()
    after = edit(before)
    golden = GOLDEN / f"{case}.yaml"
    if os.environ.get("SDPROV_UPDATE_GOLDEN"):
        golden.write_text(after)
    assert after == golden.read_text()
    parse_manifest(after.encode(), golden.name)  # still a valid manifest


def test_lines_outside_the_edit_are_byte_identical() -> None:
    before = (GOLDEN / "odd.yaml").read_text()
    after = add_entry(before, "vaes", {"civitai": "1@2"}, file="odd.yaml")
    assert after.startswith(before.split("hypernetworks:")[0].rstrip("\n"))
    assert after.replace("  - civitai: 1@2\n", "", 1) == before


def test_add_then_remove_restores_the_file() -> None:
    before = (GOLDEN / "odd.yaml").read_text()
    added = add_entry(before, "checkpoints", {"civitai": "7@8"}, file="odd.yaml")
    assert remove_entries(added, {("checkpoints", 2)}, file="odd.yaml") == before


def test_an_edit_that_would_disturb_the_file_is_refused() -> None:
    # A section written as an anchor/alias cannot be edited in place safely.
    text = "base: &b\n  - civitai: 1\nloras: *b\n"
    with pytest.raises(ManifestEditError, match="by hand"):
        add_entry(text, "loras", {"civitai": 2}, file="x.yaml")


def test_not_a_list_is_refused() -> None:
    with pytest.raises(ManifestEditError, match="not a list"):
        add_entry("loras: 3\n", "loras", {"civitai": 2}, file="x.yaml")
