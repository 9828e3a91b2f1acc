from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from provision.errors import ManifestError
from provision.kinds import Kind
from provision.manifest.parse import manifest_schema, parse_manifest
from provision.manifest.refs import CivitaiRef, HfRef, parse_civitai, parse_hf

GOOD = """\
options:
  base_check: warn
checkpoints:
  - civitai: 4384@128713          # model@version
    name: dreamshaper_8
  - civitai: 4384
loras:
  - civitai: https://civitai.com/models/58390/detail-tweaker?modelVersionId=62833
  - civitai: https://civitai.red/api/download/models/62833?type=Model&format=SafeTensor
    subfolder: style/anime
  - civitai: https://civitai.green/model-versions/62834
    file: {format: SafeTensor, fp: fp16}
embeddings:
  - civitai: urn:air:sd1:embedding:civitai:7808@9208
  - civitai: air:sdxl:lora:civitai:328553@368189+1234
vaes:
  - hf: stabilityai/sd-vae-ft-mse-original/vae-ft-mse-840000-ema-pruned.safetensors
  - hf: madebyollin/sdxl-vae-fp16-fix/sdxl.vae.safetensors@refs/pr/1
hypernetworks:
  - url: https://example.org/models/anime_3.pt
    sha256: 6B1F0000000000000000000000000000000000000000000000000000000000AA
    allow_pickle: true
    base: sd1
"""


def test_good_manifest_parses_every_source_form() -> None:
    manifest = parse_manifest(GOOD.encode(), "m.yaml")
    assert manifest.base_check == "warn"
    kinds = [s.kind for s in manifest.specs]
    assert kinds.count(Kind.LORA) == 3 and kinds.count(Kind.CHECKPOINT) == 2
    first = manifest.specs[0]
    assert first.source == CivitaiRef(model_id=4384, version_id=128713)
    assert first.pinned and not manifest.specs[1].pinned
    assert (first.location.line, first.location.column) == (4, 5)
    air = manifest.specs[6].source
    assert air == CivitaiRef(model_id=328553, version_id=368189, file_id=1234, air_ecosystem="sdxl")
    hyper = manifest.specs[-1]
    assert hyper.sha256 is not None and hyper.sha256.startswith("6b1f")  # normalised
    # The shipped schema accepts what the loader accepts (editors see the same rules).
    import yaml

    jsonschema.validate(yaml.safe_load(GOOD), manifest_schema())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://civitai.com/models/58390?modelVersionId=62833", CivitaiRef(model_id=58390, version_id=62833)),
        ("https://civitai.com/models/58390/slug?version=62833", CivitaiRef(model_id=58390, version_id=62833)),
        ("https://civitai.com/api/download/models/62833?fileId=7", CivitaiRef(version_id=62833, file_id=7)),
        ("https://civitai.com/api/v1/model-versions/62833", CivitaiRef(version_id=62833)),
        ("urn:air:flux1:lora:civitai:706978@1050496", CivitaiRef(model_id=706978, version_id=1050496, air_ecosystem="flux1")),
        ("58390", CivitaiRef(model_id=58390)),
    ],
)  # fmt: skip
def test_civitai_reference_forms(text: str, expected: CivitaiRef) -> None:
    assert parse_civitai(text) == expected


@pytest.mark.parametrize(
    "bad",
    [
        "https://example.com/models/1",
        "https://civitai.com/api/download/models/1?token=abc",
        "urn:air:sd1:lora:huggingface:1@2",
        "model-one",
    ],
)
def test_bad_civitai_references(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_civitai(bad)


def test_hf_reference() -> None:
    assert parse_hf("a/b/dir/f.safetensors@v1.0") == HfRef(
        repo="a/b", path="dir/f.safetensors", revision="v1.0"
    )
    with pytest.raises(ValueError):
        parse_hf("a/f.safetensors")


BAD = """\
checkpoints:
  - civitai: 4384@128713
    nmae: dreamshaper
  - civitai: 12
    hf: a/b/c.safetensors
loras:
  - civitai: 1@2
    name: x
  - civitai: 3@4
    name: x
  - url: https://example.org/a.pt
  - civitai: 5
    subfolder: ../../etc
    name: y
    name: z
  - civitai: 6
    name: ../evil
embeddings:
  - civitai: urn:air:sd1:embedding:civitai:7808@9208
    allow_pickle: "yes"
vaes: 3
hypernetworks:
  - civitai: 7
    sha256: nothex
colour: blue
"""

EXPECTED = """\
bad.yaml:3:5: error: unknown key 'nmae' in checkpoints[0] (did you mean 'name'?); allowed: allow_pickle, base, civitai, file, file_id, hf, name, notes, preview, sha256, subfolder, trigger, url, vae, weight
bad.yaml:5:5: error: checkpoints[1] has two sources (civitai, hf); an entry has exactly one of `civitai:`, `hf:` or `url:`
bad.yaml:9:5: error: loras[1] (x): name 'x' is already used by loras[0] (x) (line 7); WebUI names this kind by file name alone, so one would hide the other
bad.yaml:11:10: error: loras[2].url: a `url:` source needs `sha256:` (the only way to know the bytes are right)
bad.yaml:13:16: error: loras[3].subfolder: '../../etc' would escape the models folder or be hidden; use plain folder names
bad.yaml:15:5: error: duplicate key 'name' (first defined at line 14); YAML would silently keep only the last one
bad.yaml:17:11: error: loras[4].name: '../evil' must be a file name, not a path (use `subfolder:` for folders)
bad.yaml:20:19: error: embeddings[0].allow_pickle must be a boolean, got a string ("yes")
bad.yaml:21:7: error: vaes must be a list, got a number (3)
bad.yaml:24:13: error: hypernetworks[0].sha256 must be 64 hex digits (a sha256), got 'nothex'
bad.yaml:25:1: error: unknown key 'colour' in manifest; allowed: checkpoints, clip_vision, controlnets, diffusion_models, embeddings, hypernetworks, include, loras, options, text_encoders, upscalers, vaes
11 problems in the manifest; nothing was changed"""


def test_every_problem_at_once_with_positions() -> None:
    with pytest.raises(ManifestError) as caught:
        parse_manifest(BAD.encode(), "bad.yaml")
    assert caught.value.render() == EXPECTED
    assert caught.value.exit_code == 2


def test_yaml_syntax_error_has_a_position() -> None:
    with pytest.raises(
        ManifestError, match=r"^m.yaml:3:3: error: invalid YAML: check the indentation"
    ):
        parse_manifest(b"loras:\n  - civitai: 1\n  name: x\n", "m.yaml")


def test_cli_exits_2_without_traceback(tmp_path: Path) -> None:
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "models.yaml").write_text(BAD)
    for args in (["lock"], ["lock", "--check"], ["sync", "--models-root", "out"]):
        proc = subprocess.run(
            [sys.executable, "-m", "provision.cli", *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr
        assert "manifests/models.yaml:3:5: error: unknown key 'nmae'" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_schema_is_valid_json_schema() -> None:
    schema = manifest_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert json.loads(json.dumps(schema)) == schema
