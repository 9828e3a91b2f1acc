"""Where credentials go, tested directly: two loopback origins, every source, every redirect.

`home` is the credential's own origin (the Civitai API, the Hugging Face endpoint, the WebUI);
`other` is another origin on the same host (a CDN, a mirror, a storage bucket). For every
source and every redirect kind the own origin gets `Authorization` until the chain leaves it,
the other origin never does, and nothing leaks into a URL, a log line or an error.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from provision.errors import SdprovError
from provision.manifest.refs import HfRef, UrlRef
from provision.net.http import make_client
from provision.net.policy import origin_of
from provision.sources import SourceContext
from provision.sources import huggingface as hf
from provision.sources import url as url_source
from provision.sources.civitai import CivitaiApi, CivitaiBytes
from provision.sources.locked import HfSource
from provision.sources.registry import byte_source
from provision.webui.client import WebuiClient
from tests.fakes.origins import Answer, Origins

CIVITAI_TOKEN = "civitai-policy-token-5f1e"
HF_TOKEN = "hf_policy_token_9c2d"
PASSWORD = "webui-policy-password-77"
SIGNATURE = "X-Amz-Signature=deadbeefsignature"
COMMIT = "a" * 40
DATA = b"model-bytes" * 100
SHA = hashlib.sha256(DATA).hexdigest()


@dataclass(frozen=True)
class Kind:
    """A redirect chain from `home`+start to a final answer; `left_at` is the first hop that
    lands outside `home` (None: the chain never leaves)."""

    name: str
    hops: tuple[tuple[str, str, int], ...]  # (origin, path, status) redirecting onwards
    final: tuple[str, str]  # (origin, path) of the final answer
    location: tuple[str, ...]  # Location values, hop by hop


KINDS = {
    "relative": Kind("relative", (("home", "START", 301),), ("home", "/final"), ("/final",)),
    "absolute-same": Kind(
        "absolute-same", (("home", "START", 308),), ("home", "/final"), ("{home}/final",)
    ),
    "absolute-other": Kind(
        "absolute-other",
        (("home", "START", 307),),
        ("other", "/final"),
        (f"{{other}}/final?{SIGNATURE}",),
    ),
    "return-chain": Kind(
        "return-chain",
        (("home", "START", 302), ("other", "/bounce", 303)),
        ("home", "/final"),
        ("{other}/bounce", "{home}/final"),
    ),
}


@pytest.fixture
def origins() -> Iterator[Origins]:
    with Origins().running() as running:
        yield running


def _ctx(origins: Origins) -> SourceContext:
    return SourceContext(
        civitai_url=origins.home,
        hf_endpoint=origins.home,
        civitai_token=CIVITAI_TOKEN,
        hf_token=HF_TOKEN,
    )


def _install(origins: Origins, kind: Kind, start: str, final: Answer) -> None:
    for (origin, path, status), location in zip(kind.hops, kind.location, strict=True):
        origins.route(origin, start if path == "START" else path, Answer.redirect(location, status))
    origins.route(*kind.final, final)


def _check(origins: Origins, kind: Kind, start: str, expected: str | None) -> None:
    """`home` got `expected` on every request before the chain left it, nothing after."""
    assert origins.seen, "no request reached the origins"
    left = False
    for seen in origins.seen:
        got = seen.headers.get("authorization")
        if seen.origin == "other":
            left = True
            assert got is None, f"{kind.name}: credential sent to the other origin {seen.path}"
        elif left:
            assert got is None, f"{kind.name}: credential re-sent after the chain left home"
        else:
            assert got == expected, f"{kind.name}: {seen.path} got {got!r}"
        for secret in (CIVITAI_TOKEN, HF_TOKEN, PASSWORD):
            assert secret not in seen.path  # never in a URL
    assert origins.seen[0].path.split("?")[0] == start


def _read(opened: Callable[[], object]) -> None:
    with opened() as response:  # type: ignore[attr-defined]
        buffer = memoryview(bytearray(1 << 16))
        got = b""
        while n := response.readinto(buffer):
            got += bytes(buffer[:n])
    assert got == DATA


@dataclass(frozen=True)
class Source:
    start: str
    final: Answer
    run: Callable[[Origins], None]
    expected: str | None


def _bearer(token: str) -> str:
    return f"Bearer {token}"


def _civitai_api(o: Origins) -> None:
    with make_client() as client:
        assert CivitaiApi(client, _ctx(o)).get_json("/api/v1/model-versions/7", "m") == {"id": 7}


def _civitai_bytes(o: Origins) -> None:
    source = CivitaiBytes(ctx=_ctx(o), version_id=7, file_id=8, what="m")
    _read(lambda: source.open(0))


def _hf_bytes(o: Origins) -> None:
    entry = HfSource(repo="o/r", path="f.bin", revision="main", commit=COMMIT)
    source = byte_source(entry, _ctx(o), "m")
    _read(lambda: source.open(0))


def _hf_head(o: Origins) -> None:
    with make_client() as client:
        resolved = hf.resolve(
            HfRef(repo="o/r", path="f.safetensors"), what="m", client=client, ctx=_ctx(o), base=None
        )
    assert (resolved.sha256, resolved.size) == (SHA, len(DATA))
    assert not any(s.path.startswith("/cdn/") for s in o.seen)  # metadata came from the 302


def _url_bytes(o: Origins) -> None:
    source = url_source.UrlBytes(url=f"{o.home}/files/m.bin", what="m")
    _read(lambda: source.open(0))


def _url_head(o: Origins) -> None:
    with make_client() as client:
        resolved = url_source.resolve(
            UrlRef(url=f"{o.home}/files/m.bin"),
            what="m",
            client=client,
            ctx=_ctx(o),
            sha256=SHA,
            base=None,
        )
    assert resolved.size == len(DATA)


def _webui(o: Origins) -> None:
    with WebuiClient(o.home, ("admin", PASSWORD)) as client:
        assert client.list_loras() == ()


HF_HEAD_FINAL = Answer.redirect(
    "{other}/cdn/blob",
    302,
    **{"X-Repo-Commit": COMMIT, "X-Linked-Etag": f'"{SHA}"', "X-Linked-Size": str(len(DATA))},
)
SOURCES = {
    "civitai-api": Source(
        "/api/v1/model-versions/7", Answer.json({"id": 7}), _civitai_api, _bearer(CIVITAI_TOKEN)
    ),
    "civitai-download": Source(
        "/api/download/models/7", Answer.file(DATA), _civitai_bytes, _bearer(CIVITAI_TOKEN)
    ),
    "hf-resolve-get": Source(
        f"/o/r/resolve/{COMMIT}/f.bin", Answer.file(DATA), _hf_bytes, _bearer(HF_TOKEN)
    ),
    "hf-resolve-head": Source(
        "/o/r/resolve/main/f.safetensors", HF_HEAD_FINAL, _hf_head, _bearer(HF_TOKEN)
    ),
    # The URL source has no credential, even on the Hugging Face endpoint's own origin.
    "url-get": Source("/files/m.bin", Answer.file(DATA), _url_bytes, None),
    "url-head": Source("/files/m.bin", Answer.file(DATA), _url_head, None),
    "webui": Source(
        "/sdapi/v1/loras",
        Answer.json([]),
        _webui,
        "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode(),
    ),
}


@pytest.mark.parametrize("kind", KINDS.values(), ids=KINDS.keys())
@pytest.mark.parametrize("name", SOURCES)
def test_credential_stays_on_its_origin(
    origins: Origins, name: str, kind: Kind, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    source = SOURCES[name]
    _install(origins, kind, source.start, source.final)
    source.run(origins)
    _check(origins, kind, source.start, source.expected)
    for secret in (CIVITAI_TOKEN, HF_TOKEN, PASSWORD, "deadbeefsignature"):
        assert secret not in caplog.text


def test_hf_head_redirect_to_a_mirror_without_commit_drops_the_token(origins: Origins) -> None:
    """The reported bug: a HEAD redirected to another origin without X-Repo-Commit (a mirror,
    a moved repo) used to carry `Bearer $HF_TOKEN` there."""
    start = "/o/r/resolve/main/f.safetensors"
    origins.route("home", start, Answer.redirect("{other}/mirror/o/r/f.safetensors", 302))
    origins.route("other", "/mirror/o/r/f.safetensors", HF_HEAD_FINAL)
    _hf_head(origins)
    assert origins.authorization("home") == [_bearer(HF_TOKEN)]
    assert origins.authorization("other") == [None]


@pytest.mark.parametrize("name", ["civitai-download", "hf-resolve-get", "url-get", "civitai-api"])
def test_errors_from_the_other_origin_are_redacted(origins: Origins, name: str) -> None:
    source = SOURCES[name]
    kind = KINDS["absolute-other"]
    _install(origins, kind, source.start, Answer(404, b"<Error/>", {"Content-Type": "text/xml"}))
    with pytest.raises(SdprovError) as excinfo:
        source.run(origins)
    text = str(excinfo.value) + repr(excinfo.value.to_json())
    for secret in (CIVITAI_TOKEN, HF_TOKEN, "deadbeefsignature", "X-Amz"):
        assert secret not in text
    assert origins.authorization("other") == [None]


def test_webui_password_never_follows_a_redirect_elsewhere(origins: Origins) -> None:
    origins.route("home", "/sdapi/v1/loras", Answer.redirect("{other}/sdapi/v1/loras", 307))
    origins.route("other", "/sdapi/v1/loras", Answer(401, b"{}"))
    with pytest.raises(SdprovError) as excinfo:
        _webui(origins)
    assert PASSWORD not in str(excinfo.value)
    assert origins.authorization("other") == [None]


def test_origin_is_scheme_host_and_port() -> None:
    assert origin_of("https://Civitai.com/x") == "https://civitai.com:443"
    assert origin_of("http://civitai.com:443/x") != origin_of("https://civitai.com/x")
    assert origin_of("http://127.0.0.1:8000/a") != origin_of("http://127.0.0.1:8001/a")
