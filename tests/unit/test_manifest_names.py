"""Odd `name:`/`subfolder:` values: refused at the value's `file:line:col`, naming the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provision.errors import ManifestError
from provision.manifest.filenames import (
    MAX_COMPONENT_BYTES,
    MAX_STEM_BYTES,
    file_name_problem,
    relative_path_problem,
)
from provision.manifest.parse import parse_manifest

BAD_NAMES = {
    "parent": "..",
    "dots": "...",
    "traversal": "../x",
    "absolute": "/etc/passwd",
    "backslash": "a\\b",
    "nul": "a\x00b",
    "tab": "a\tb",
    "escape": "a\x1b[31mred",
    "del": "a\x7fb",
    "bidi": "evil\u202egnp",
    "zero-width": "a\u200bb",
    "hidden": ".hidden",
    "sdprov": ".sdprov",
    "drive": "C:model",
    "colon": "a:b",
    "pipe": "a|b",
    "question": "a?b",
    "device": "NUL",
    "device-ext": "com1.safetensors",
    "trailing-dot": "model.",
    "trailing-space": "model ",
    "leading-space": " model",
    "too-long": "n" * 256,
    "stem-too-long": "n" * (MAX_STEM_BYTES + 1) + ".safetensors",
    "utf8-too-long": "模" * 86,  # 258 bytes, 86 characters
}

BAD_SUBFOLDERS = {
    "parent": "../../etc",
    "inner-parent": "a/../../b",
    "absolute": "/abs",
    "backslash": "a\\b",
    "drive": "C:/models",
    "nul": "a\x00b",
    "newline": "a\nb",
    "hidden": "a/.git",
    "sdprov": ".sdprov/partial",
    "dot": ".",
    "only-slashes": "//",
    "component-too-long": "d" * 256,
    "path-too-long": "/".join(["d" * 200] * 6),
    "device": "aux/x",
}


def _yaml(key: str, value: str) -> bytes:
    # json.dumps gives a double-quoted YAML scalar with \\uXXXX escapes: any string survives.
    return f"loras:\n  - civitai: 1@2\n    {key}: {json.dumps(value)}\n".encode()


@pytest.mark.parametrize("label", sorted(BAD_NAMES))
def test_bad_name_is_refused_at_its_position(label: str) -> None:
    with pytest.raises(ManifestError) as info:
        parse_manifest(_yaml("name", BAD_NAMES[label]), "m.yaml")
    (problem,) = info.value.problems
    assert str(problem).startswith("m.yaml:3:11: error: loras[0].name: "), str(problem)
    assert info.value.exit_code == 2


@pytest.mark.parametrize("label", sorted(BAD_SUBFOLDERS))
def test_bad_subfolder_is_refused_at_its_position(label: str) -> None:
    with pytest.raises(ManifestError) as info:
        parse_manifest(_yaml("subfolder", BAD_SUBFOLDERS[label]), "m.yaml")
    (problem,) = info.value.problems
    assert str(problem).startswith("m.yaml:3:16: error: loras[0].subfolder: "), str(problem)


@pytest.mark.parametrize(
    "name",
    ["dreamshaper_8", "Détail (v2) [sdxl]", "模型 v1", "a.b.c", "n" * MAX_STEM_BYTES, "x.ckpt"],
)
def test_ordinary_names_pass(name: str) -> None:
    manifest = parse_manifest(_yaml("name", name), "m.yaml")
    assert manifest.specs[0].name == name


def test_messages_escape_what_they_quote() -> None:
    with pytest.raises(ManifestError) as info:
        parse_manifest(_yaml("name", "a\x1b[2Jb\u202e"), "m.yaml")
    text = info.value.render()
    assert "\x1b" not in text and "\u202e" not in text
    assert "\\x1b" in text


def test_long_names_are_shortened_in_messages() -> None:
    problem = file_name_problem("n" * 5000 + ".safetensors")
    assert problem is not None and "5012 characters" in problem and len(problem) < 300


def test_relative_path_rules() -> None:
    assert relative_path_problem("Lora/style/anime.safetensors") is None
    assert relative_path_problem("Lora/../x.safetensors") is not None
    assert relative_path_problem("Lora/" + "d" * 250 + "/" + "x.safetensors") is None
    too_long = "/".join(["d" * 250] * 5) + "/x.safetensors"
    assert "sdprov allows 1024" in (relative_path_problem(too_long) or "")
    assert MAX_COMPONENT_BYTES == 255


def test_manifest_names_never_reach_the_file_system(tmp_path: Path) -> None:
    # Parsing is pure: even a name aimed at the temp dir creates nothing.
    before = set(tmp_path.rglob("*"))
    with pytest.raises(ManifestError):
        parse_manifest(_yaml("name", str(tmp_path / "pwned")), str(tmp_path / "m.yaml"))
    assert set(tmp_path.rglob("*")) == before
