"""Fuzzed manifests through the real loader: a `Manifest`, or a `ManifestError` whose every
problem sits at a real `file:line:col`; never another exception, never a hang.

Generation is structured: valid skeletons (every source form, every optional field) whose values
are then mutated (wrong types, hostile names, huge numbers, unknown and duplicate keys), rendered
as YAML and then, sometimes, bent at the text level (BOM, tabs, anchors and aliases, billion
laughs, `!!python/...` tags, `!!binary`, raw binary, deep nesting). The sample run through the
CLI is in `tests/integration/test_manifest_fuzz_cli.py`.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provision.errors import ManifestError
from provision.manifest.parse import Manifest, parse_manifest

SECTIONS = ("checkpoints", "loras", "embeddings", "vaes", "hypernetworks")
SHA = "ab" * 32
HOSTILE_TEXT = (
    "../../etc/passwd", "/abs", "a\\b", "a\x00b", "\x1b[2J", ".sdprov", "C:x", "CON", "...",
    "x" * 300, "é" * 200, "\u202egnp", " ", "", "a/../b", "\ufeffbom", "line\nbreak", "\t",
)  # fmt: skip

_civitai = st.one_of(
    st.integers(1, 10**6),
    st.builds(lambda m, v: f"{m}@{v}", st.integers(1, 10**6), st.integers(1, 10**6)),
    st.just("https://civitai.com/models/4384?modelVersionId=128713"),
    st.just("urn:air:sdxl:lora:civitai:328553@368189+1234"),
)
_hf = st.builds(
    lambda f, rev: f"owner/repo/dir/{f}.safetensors" + rev,
    st.from_regex(r"[a-z0-9_]{1,20}", fullmatch=True),
    st.sampled_from(["", "@main", "@" + "a" * 40]),
)
_url = st.builds(
    lambda p: f"https://example.org/{p}.safetensors",
    st.from_regex(r"[a-z0-9]{1,12}", fullmatch=True),
)
_name = st.from_regex(r"[A-Za-z0-9_\-]{1,40}", fullmatch=True)


@st.composite
def valid_entry(draw: st.DrawFn) -> dict[str, Any]:
    source = draw(st.sampled_from(["civitai", "hf", "url"]))
    strategy: st.SearchStrategy[Any] = {"civitai": _civitai, "hf": _hf, "url": _url}[source]
    entry: dict[str, Any] = {source: draw(strategy)}
    if source == "url" or draw(st.booleans()):
        entry["sha256"] = SHA
    if draw(st.booleans()):
        entry["name"] = draw(_name)
    if draw(st.booleans()):
        entry["subfolder"] = draw(st.sampled_from(["style", "a/b", "x_y"]))
    if draw(st.booleans()):
        entry["allow_pickle"] = draw(st.booleans())
    if draw(st.booleans()):
        entry["base"] = draw(st.sampled_from(["sd1", "sd2", "sdxl", "sd3", "flux", "other"]))
    if source == "civitai" and draw(st.booleans()):
        entry["file"] = {"format": "SafeTensor", "fp": "fp16"}
    return entry


_odd_value = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(10**30, 10**40), st.floats(),
    st.text(max_size=30), st.sampled_from(HOSTILE_TEXT), st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)  # fmt: skip
_keys = st.sampled_from(
    ["civitai", "hf", "url", "name", "subfolder", "sha256", "allow_pickle", "base", "file_id",
     "file", "nmae", "sha", "Name", "", "x" * 100]
)  # fmt: skip


@st.composite
def mutated_manifest(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for section in draw(st.lists(st.sampled_from(SECTIONS), max_size=4, unique=True)):
        doc[section] = draw(st.lists(valid_entry(), max_size=3))
    if draw(st.booleans()):
        doc["options"] = {"base_check": draw(st.sampled_from(["error", "warn", "off", "loud"]))}
    for _ in range(draw(st.integers(0, 3))):  # mutations
        entries = [
            e
            for section in SECTIONS
            if isinstance(doc.get(section), list)
            for e in doc[section]
            if isinstance(e, dict)
        ]
        target = draw(st.sampled_from(["entry", "section", "top"])) if entries else "top"
        if target == "entry":
            entry = draw(st.sampled_from(entries))
            entry[draw(_keys)] = draw(_odd_value)
        elif target == "section":
            doc[draw(st.sampled_from(SECTIONS))] = draw(_odd_value)
        else:
            doc[draw(st.sampled_from([*SECTIONS, "options", "colour"]))] = draw(_odd_value)
    return doc


def _billion_laughs(levels: int) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        refs = ", ".join([f"*a{i - 1}"] * 10)
        lines.append(f"a{i}: &a{i} [{refs}]")
    return "\n".join(lines) + f"\nloras: *a{levels - 1}\n"


TEXT_BENDS: dict[str, Callable[[str], str]] = {
    "none": lambda t: t,
    "bom": lambda t: "\ufeff" + t,
    "tabs": lambda t: t.replace("  ", "\t"),
    "dup-key": lambda t: t + "loras: []\nloras: []\n",
    "dup-entry-key": lambda t: t + "vaes:\n  - hf: a/b/c.safetensors\n    name: x\n    name: y\n",
    "anchor-alias": lambda t: t + "vaes: &v\n  - hf: a/b/c.safetensors\nhypernetworks: *v\n",
    "merge-key": lambda t: t + "x: &d {allow_pickle: true}\nloras:\n  - <<: *d\n    civitai: 1\n",
    "laughs": lambda t: _billion_laughs(9),
    "recursive": lambda t: "loras: &a\n  - *a\n",
    "python-tag": lambda t: t + 'vaes: !!python/object/apply:os.system ["touch pwned"]\n',
    "python-name": lambda t: t + "vaes:\n  - hf: !!python/name:os.system\n",
    "binary": lambda t: t + "vaes:\n  - hf: !!binary aGVsbG8=\n",
    "set": lambda t: t + "vaes: !!set {a, b}\n",
    "huge-int": lambda t: t + "loras:\n  - civitai: " + "9" * 6000 + "\n",
    "huge-float": lambda t: t + "loras:\n  - civitai: 1e999999\n",
    "deep": lambda t: "loras: " + "[" * 5000 + "]" * 5000 + "\n",
    "deep-block": lambda t: "".join("  " * i + "k:\n" for i in range(3000)),
    "truncated": lambda t: t[: len(t) // 2],
    "control": lambda t: t.replace("\n", "\n\x07", 1),
    "crlf": lambda t: t.replace("\n", "\r\n"),
}


def _render(doc: dict[str, Any]) -> str:
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


def _check(raw: bytes) -> None:
    started = time.monotonic()
    try:
        manifest = parse_manifest(raw, "fuzz.yaml")
    except ManifestError as exc:
        assert exc.exit_code == 2 and exc.problems
        lines = raw.count(b"\n") + raw.count(b"\r") + 2
        for problem in exc.problems:
            where = problem.location
            assert where.file == "fuzz.yaml" and 1 <= where.line <= lines and where.column >= 1
            assert re.match(r"^fuzz\.yaml:\d+:\d+: error: \S", str(problem)), str(problem)
            assert "\x00" not in str(problem) and "\x1b" not in str(problem)
    else:
        assert isinstance(manifest, Manifest)
        json.dumps([s.digest for s in manifest.specs])  # fully formed
    assert time.monotonic() - started < 5, "one manifest took over 5 s"


# Each costs ~0.5 s (a budget hit, PyYAML on deep nesting): run once each in the normal run
# (test_every_text_bend_is_answered), at random in the slow one.
EXPENSIVE = frozenset({"laughs", "deep", "deep-block"})
CHEAP_BENDS = sorted(set(TEXT_BENDS) - EXPENSIVE)
_FAST = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,  # the normal run is reproducible; the slow run explores
)


@_FAST
@given(doc=mutated_manifest(), bend=st.sampled_from(CHEAP_BENDS))
def test_fuzzed_manifests_never_escape_the_error_boundary(doc: dict[str, Any], bend: str) -> None:
    _check(TEXT_BENDS[bend](_render(doc)).encode("utf-8", "surrogatepass"))


# The slow run explores: new cases on every CI run, sized to the suite's 5-minute budget.
# SDPROV_FUZZ_SCALE=N runs N times as many for a deep search.
FUZZ_SCALE = int(os.environ.get("SDPROV_FUZZ_SCALE", "1"))


@pytest.mark.slow
@settings(
    max_examples=200 * FUZZ_SCALE,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(doc=mutated_manifest(), bend=st.sampled_from(sorted(TEXT_BENDS)))
def test_many_more_fuzzed_manifests(doc: dict[str, Any], bend: str) -> None:
    _check(TEXT_BENDS[bend](_render(doc)).encode("utf-8", "surrogatepass"))


@settings(max_examples=100, deadline=None, derandomize=True)
@given(raw=st.binary(max_size=300))
def test_arbitrary_bytes_never_escape_the_error_boundary(raw: bytes) -> None:
    _check(raw)


def test_every_text_bend_is_answered() -> None:
    base = _render({"loras": [{"civitai": 1}]})
    for name, bend in TEXT_BENDS.items():
        try:
            _check(bend(base).encode("utf-8"))
        except AssertionError as exc:  # name the bend
            raise AssertionError(f"{name}: {exc}") from exc
