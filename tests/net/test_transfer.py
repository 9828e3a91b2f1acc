"""The byte path hands out no more than a closed Range asked for, whatever the server sends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from provision.net.transfer import open_stream
from tests.fakes.origins import Answer, Origins

BODY = bytes(range(256)) * 40  # 10240 bytes


@pytest.fixture
def origins() -> Iterator[Origins]:
    with Origins().running() as running:
        yield running


@pytest.mark.parametrize("method", ["readinto", "readinto1"])
def test_ignored_range_is_cut_at_the_requested_end(origins: Origins, method: str) -> None:
    origins.route("home", "/f", Answer.file(BODY))  # answers 200 with the whole body
    got = b""
    buffer = memoryview(bytearray(4096))
    with open_stream(f"{origins.home}/f", headers={"Range": "bytes=0-999"}) as response:
        assert response.status_code == 200
        while n := getattr(response, method)(buffer):
            got += bytes(buffer[:n])
    assert got == BODY[:1000]


def test_open_ended_range_reads_the_whole_body(origins: Origins) -> None:
    origins.route("home", "/f", Answer.file(BODY))
    buffer = memoryview(bytearray(1 << 16))
    with open_stream(f"{origins.home}/f", headers={"Range": "bytes=0-"}) as response:
        assert response.readinto(buffer) == len(BODY)
        assert response.readinto(buffer) == 0
