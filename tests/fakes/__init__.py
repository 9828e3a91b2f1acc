"""Loopback fakes of Civitai and Hugging Face used by the test suite and the benchmarks."""

from tests.fakes.civitai import CivitaiServer, FakeFile, FakeModel, FakeVersion
from tests.fakes.common import Faults, LoopbackServer, Recorded

__all__ = [
    "CivitaiServer",
    "FakeFile",
    "FakeModel",
    "FakeVersion",
    "Faults",
    "LoopbackServer",
    "Recorded",
]
