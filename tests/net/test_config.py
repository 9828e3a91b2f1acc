"""Proxy, timeout and Retry-After rules of provision.net, and what a user sees for bad ones."""

from __future__ import annotations

import email.utils
import time

import pytest

from provision.errors import UsageError
from provision.net.config import Timeouts, proxy_for
from provision.net.http import RetryPolicy, make_client, parse_retry_after


@pytest.fixture(autouse=True)
def _clean_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


def test_all_proxy_applies_when_no_scheme_proxy_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALL_PROXY", "http://user:pw@proxy.example:3128")
    proxy = proxy_for("https://civitai.com/api/download/models/1")
    assert proxy is not None
    assert (proxy.host, proxy.port, proxy.username, proxy.password) == (
        "proxy.example",
        3128,
        "user",
        "pw",
    )
    monkeypatch.setenv("HTTPS_PROXY", "http://other.example:8080")
    https_proxy = proxy_for("https://civitai.com/x")
    assert https_proxy is not None and https_proxy.host == "other.example"  # scheme wins
    monkeypatch.setenv("NO_PROXY", "civitai.com")
    assert proxy_for("https://civitai.com/x") is None


def test_socks_proxy_is_refused_with_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALL_PROXY", "socks5h://user:secret@127.0.0.1:1080")
    with pytest.raises(UsageError) as excinfo:
        proxy_for("https://huggingface.co/x")
    assert "secret" not in str(excinfo.value)
    assert "HTTPS_PROXY" in str(excinfo.value) and "socks5h://127.0.0.1:1080" in str(excinfo.value)
    with pytest.raises(UsageError):
        make_client()


def test_timeouts_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SDPROV_READ_TIMEOUT", "0.5")
    assert Timeouts.from_env() == Timeouts(connect=15.0, read=0.5)
    monkeypatch.setenv("SDPROV_CONNECT_TIMEOUT", "soon")
    with pytest.raises(UsageError, match="SDPROV_CONNECT_TIMEOUT"):
        Timeouts.from_env()


def test_retry_after_seconds_and_http_date() -> None:
    assert parse_retry_after("7") == 7.0
    soon = email.utils.formatdate(time.time() + 30, usegmt=True)
    waited = parse_retry_after(soon)
    assert waited is not None and 25 <= waited <= 31
    assert parse_retry_after("not a date") is None
    policy = RetryPolicy(max_retry_after=10.0)
    assert policy.delay(0, soon) == 10.0  # capped: a server cannot park us for hours
