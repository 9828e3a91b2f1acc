"""Fixtures for end-to-end tests: loopback Civitai/HF fakes and a real `sdprov` subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fakes import CivitaiServer, HfServer

TOKEN = "civitai-secret-token-0123456789"
HF_TOKEN = "hf_secret_token_abcdefghij"


@dataclass(frozen=True)
class Cli:
    cwd: Path
    env: dict[str, str]

    def run(self, *args: str, check: int | None = 0, timeout: float = 60) -> Result:
        proc = subprocess.run(
            [sys.executable, "-m", "provision.cli", *args],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        result = Result(proc.returncode, proc.stdout, proc.stderr)
        if check is not None:
            assert proc.returncode == check, f"exit {proc.returncode}\n{proc.stderr}\n{proc.stdout}"
        assert "Traceback" not in proc.stderr, proc.stderr
        for secret in (TOKEN, HF_TOKEN):
            assert secret not in proc.stdout + proc.stderr
        return result

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "provision.cli", *args],
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str


@pytest.fixture
def civitai() -> Iterator[CivitaiServer]:
    with CivitaiServer(token=TOKEN) as server:
        yield server


@pytest.fixture
def hf() -> Iterator[HfServer]:
    with HfServer(token=HF_TOKEN) as server:
        yield server


@pytest.fixture
def cli(tmp_path: Path, civitai: CivitaiServer, hf: HfServer) -> Cli:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "SDPROV_CIVITAI_URL": civitai.api_url,
        "HF_ENDPOINT": hf.endpoint,
        "CIVITAI_TOKEN": TOKEN,
        "HF_TOKEN": HF_TOKEN,
        "SDPROV_RETRY_BASE_DELAY": "0.01",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    (tmp_path / "manifests").mkdir()
    return Cli(cwd=tmp_path, env=env)
