"""A sample of the fuzzed manifests through the real CLI (`sdprov lock --check`, `sdprov sync
--dry-run`): exit 2 with `file:line:col` for bad input, the ordinary answer for a valid one,
never a traceback, never a file written anywhere but where the command may write.

Neither command reaches a server here: `lock --check` compares digests and `sync` refuses a
manifest whose lock is missing before it plans anything.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.conftest import Cli
from tests.unit.test_manifest_fuzz import FUZZ_SCALE, TEXT_BENDS, _render, mutated_manifest

_PROBLEM = re.compile(r"^manifests/models\.yaml:\d+:\d+: error: \S", re.M)


def _cli(root: Path) -> Cli:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(root),
        # Unroutable on purpose: a command that tried the network would fail with exit 1.
        "SDPROV_CIVITAI_URL": "http://127.0.0.1:9",
        "HF_ENDPOINT": "http://127.0.0.1:9",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    return Cli(cwd=root, env=env)


def _tree(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def run_one(raw: bytes) -> None:
    with tempfile.TemporaryDirectory(prefix="sdprov-fuzz-") as tmp:
        root = Path(tmp)
        manifests = root / "manifests"
        manifests.mkdir()
        (manifests / "models.yaml").write_bytes(raw)
        before = _tree(root)
        cli = _cli(root)
        check = cli.run("lock", "--check", check=None)
        dry = cli.run("sync", "--dry-run", "--models-root", str(root / "models"), check=None)
        if _PROBLEM.search(check.stderr):  # a bad manifest: both commands say where
            assert check.code == 2 and dry.code == 2, (check, dry)
            assert _PROBLEM.search(dry.stderr), dry.stderr
        else:  # a valid manifest without a lock: check fails, sync refuses, both say why
            assert check.code == 1, check
            assert dry.code == 2 and "sdprov lock" in dry.stderr, dry
        assert _tree(root) == before  # nothing written: not a lock, not a models folder


_CLI_SETTINGS: dict[str, Any] = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}


@settings(max_examples=3, derandomize=True, **_CLI_SETTINGS)
@given(doc=mutated_manifest(), bend=st.sampled_from(["none", "dup-entry-key", "python-tag"]))
def test_fuzzed_manifests_through_the_cli(doc: dict[str, Any], bend: str) -> None:
    run_one(TEXT_BENDS[bend](_render(doc)).encode("utf-8", "surrogatepass"))


@pytest.mark.slow
@settings(max_examples=6 * FUZZ_SCALE, **_CLI_SETTINGS)
@given(doc=mutated_manifest(), bend=st.sampled_from(sorted(TEXT_BENDS)))
def test_many_fuzzed_manifests_through_the_cli(doc: dict[str, Any], bend: str) -> None:
    run_one(TEXT_BENDS[bend](_render(doc)).encode("utf-8", "surrogatepass"))


@pytest.mark.slow
@pytest.mark.parametrize("bend", sorted(TEXT_BENDS))
def test_every_text_bend_through_the_cli(bend: str) -> None:
    run_one(TEXT_BENDS[bend](_render({"loras": [{"civitai": 1}]})).encode("utf-8"))
