"""`transfer.get_small`: the one small GET the FC handler uses for its OSS object."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from provision.errors import SourceError
from provision.net.http import RetryPolicy
from provision.net.transfer import get_small
from tests.fakes.origins import Answer, Origins

FAST = RetryPolicy(attempts=3, base_delay=0.001, max_delay=0.001, max_retry_after=0.01)
SIGNED = {"Authorization": "OSS key:signature-not-for-others"}


@pytest.fixture
def origins() -> Iterator[Origins]:
    with Origins().running() as running:
        yield running


def test_reads_the_body_with_the_callers_headers(origins: Origins) -> None:
    origins.route("home", "/lock.json", Answer.json({"version": 2}))
    body = get_small(f"{origins.home}/lock.json", what="lock", headers=SIGNED, retry=FAST)
    assert body == b'{"version": 2}'
    assert origins.authorization("home") == [SIGNED["Authorization"]]


def test_never_follows_a_redirect_with_the_signed_headers(origins: Origins) -> None:
    origins.route("home", "/lock.json", Answer.redirect("{other}/lock.json", 307))
    with pytest.raises(SourceError, match="HTTP 307"):
        get_small(f"{origins.home}/lock.json?sig=1", what="lock", headers=SIGNED, retry=FAST)
    assert origins.authorization("other") == []


def test_errors_are_clear_and_redacted(origins: Origins) -> None:
    origins.route("home", "/lock.json", Answer(403, b"<Error/>"))
    with pytest.raises(SourceError) as excinfo:
        get_small(f"{origins.home}/lock.json?Signature=abc", what="lock", retry=FAST)
    assert excinfo.value.status == 403 and "Signature" not in str(excinfo.value)
    origins.route("home", "/busy.json", Answer(503))
    with pytest.raises(SourceError, match="keeps failing"):
        get_small(f"{origins.home}/busy.json", what="lock", retry=FAST)
    assert sum(s.path == "/busy.json" for s in origins.seen) == 3  # retried, then gave up


def test_refuses_a_body_over_the_limit(origins: Origins) -> None:
    origins.route("home", "/big", Answer.file(b"x" * 5000))
    with pytest.raises(SourceError, match="larger than 1000 bytes"):
        get_small(f"{origins.home}/big", what="lock", retry=FAST, max_bytes=1000)
