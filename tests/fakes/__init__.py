"""Loopback fakes of Civitai and Hugging Face used by the test suite and the benchmarks."""

from tests.fakes.civitai import CivitaiServer, FakeFile, FakeModel, FakeVersion
from tests.fakes.common import Faults, LoopbackServer, Recorded
from tests.fakes.hf import HfServer

__all__ = [
    "CivitaiServer",
    "FakeFile",
    "FakeModel",
    "FakeVersion",
    "Faults",
    "HfServer",
    "LoopbackServer",
    "Recorded",
]
