"""Fuzzed lockfiles: every one is read, or refused as exit 2 naming the file, entry and field."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provision.errors import LockfileError
from provision.lock.lockfile import Lockfile

WHERE = "models.lock.json"

VALID: dict[str, Any] = {
    "version": 2,
    "manifest_sha256": "a" * 64,
    "models": [
        {
            "name": "juggernaut",
            "kind": "checkpoint",
            "path": "Stable-diffusion/juggernaut.safetensors",
            "size": 3000,
            "sha256": "b" * 64,
            "base": "sdxl",
            "format": "safetensors",
            "entry_digest": "c" * 64,
            "base_model": "SDXL 1.0",
            "autov2": "abcdef0123",
            "trained_words": ["detailed"],
            "civitai_scan": {"pickle": "Success", "virus": "Success"},
            "inspected": {"kind": "checkpoint", "variant": None, "family": "sdxl", "flags": []},
            "source": {
                "type": "civitai",
                "model_id": 133005,
                "version_id": 288982,
                "file_id": 241602,
                "air": "urn:air:sdxl:checkpoint:civitai:133005@288982",
                "model_type": "Checkpoint",
            },
        },
        {
            "name": "sdxl_vae",
            "kind": "vae",
            "path": "VAE/sdxl_vae.safetensors",
            "size": 10,
            "sha256": "d" * 64,
            "base": "sdxl",
            "format": "safetensors",
            "entry_digest": "e" * 64,
            "base_declared": True,
            "source": {
                "type": "hf",
                "repo": "o/r",
                "path": "sdxl_vae.safetensors",
                "revision": "main",
                "commit": "f" * 40,
            },
        },
        {
            "name": "anime_3",
            "kind": "hypernetwork",
            "path": "hypernetworks/anime_3.pt",
            "size": 7,
            "sha256": "0" * 64,
            "base": "sd1",
            "format": "pickle",
            "entry_digest": "1" * 64,
            "allow_pickle": True,
            "source": {"type": "url", "url": "https://example.org/anime_3.pt"},
        },
    ],
}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _paths(value, (*prefix, i))
    return found


@st.composite
def mutated(draw: st.DrawFn) -> tuple[dict[str, Any], tuple[Any, ...]]:
    doc = copy.deepcopy(VALID)
    doc["version"] = draw(st.sampled_from([1, 2]))
    paths = _paths(doc)
    first: tuple[Any, ...] = ()
    for n in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(paths))
        parent: Any = doc
        try:
            for step in path[:-1]:
                parent = parent[step]
            op = draw(st.sampled_from(["delete", "replace", "add"]))
            if op == "delete":
                del parent[path[-1]]
            elif op == "replace":
                parent[path[-1]] = draw(json_values)
            elif isinstance(parent, dict):
                parent[draw(st.text(min_size=1, max_size=6))] = draw(json_values)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed or replaced this spot
        if n == 0:
            first = path
    return doc, first


def _check(text: str) -> str | None:
    try:
        lock = Lockfile.parse(text, WHERE)
    except LockfileError as exc:
        assert exc.exit_code == 2
        assert exc.message.startswith(WHERE), exc.message
        return exc.message
    # Whatever reads must render and read back the same.
    assert Lockfile.parse(lock.render(), WHERE).render() == lock.render()
    return None


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_lockfiles_are_read_or_refused_with_their_location(
    case: tuple[dict[str, Any], tuple[Any, ...]],
) -> None:
    doc, first = case
    message = _check(json.dumps(doc))
    if message is not None:
        # The file, then the entry (index and path) and the field, or the top-level field.
        assert LOCATED.match(message), message
        if first and first[0] == "models" and len(first) >= 3 and message.count("models[") == 0:
            assert LOCATED_TOP.match(message), message


LOCATED = re.compile(
    r"models\.lock\.json: (models\[\d+\]( \(.*\))?: ([\w.]+|\(entry\)): "
    r"|models: |manifest_sha256: |lockfile version )"
)
LOCATED_TOP = re.compile(r"models\.lock\.json: (models: |manifest_sha256: |lockfile version )")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64), st.integers(0, 4000))
def test_byte_level_damage_is_refused_cleanly(noise: bytes, at: int) -> None:
    text = json.dumps(VALID, indent=2)
    damaged = text[: at % len(text)] + noise.decode("utf-8", "replace")
    _check(damaged)


def test_the_cli_refuses_a_damaged_lock_with_exit_2(tmp_path: Path) -> None:
    bad = copy.deepcopy(VALID)
    del bad["models"][1]["source"]["commit"]
    bad["models"][2]["source"]["type"] = "ftp"
    cases = {
        "VAE/sdxl_vae.safetensors): source.commit: missing": bad,
        "models[0] (hypernetworks/anime_3.pt): source.type: unknown source type 'ftp'": (
            VALID | {"models": [VALID["models"][2] | {"source": {"type": "ftp"}}]}
        ),
    }
    for expected, doc in cases.items():
        lock = tmp_path / "models.lock.json"
        lock.write_text(json.dumps(doc))
        for command in ("sync", "status"):
            proc = subprocess.run(
                [sys.executable, "-m", "provision.cli", command, "--lock", str(lock),
                 "--models-root", str(tmp_path / "root")],
                capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            assert proc.returncode == 2, proc.stderr
            assert "Traceback" not in proc.stderr
            assert expected in proc.stderr, proc.stderr
            assert str(lock) in proc.stderr
