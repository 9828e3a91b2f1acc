"""Self-tests of the loopback fakes: real HTTP over 127.0.0.1 with plain httpx."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.fakes import CivitaiServer, FakeFile, FakeModel, FakeVersion, HfServer
from tests.fakes.common import parse_range

TOKEN = "civitai-secret"
BIG = bytes(range(256)) * (3 * 4096)  # 3 MiB: large enough to carry an AutoV1 hash
SMALL = b"tiny embedding bytes"


def _lora() -> FakeModel:
    files = [
        FakeFile(id=67069, name="add_detail.safetensors", content=BIG, primary=True),
        FakeFile(id=67070, name="add_detail.pt", content=SMALL, format="PickleTensor", fp=None),
    ]
    version = FakeVersion(
        id=62833, name="v1.0", base_model="SD 1.5", files=files, trained_words=["detailed"]
    )
    return FakeModel(id=58390, name="Detail Tweaker LoRA", type="LORA", versions=[version])


def _gated_versions() -> list[FakeModel]:
    def one(model_id: int, version: FakeVersion, mode: str | None = None) -> FakeModel:
        return FakeModel(
            id=model_id, name=f"m{model_id}", type="Checkpoint", versions=[version], mode=mode
        )

    def files(file_id: int) -> list[FakeFile]:
        return [FakeFile(id=file_id, name=f"f{file_id}.safetensors", content=SMALL)]

    return [
        one(1, FakeVersion(id=11, name="v", base_model="SDXL 1.0", files=files(111)), "Archived"),
        one(
            2,
            FakeVersion(
                id=21, name="v", base_model="Pony", files=files(211), usage_control="Generation"
            ),
        ),
        one(
            3,
            FakeVersion(id=31, name="v", base_model="SD 1.5", files=files(311), require_auth=True),
        ),
        one(
            4,
            FakeVersion(
                id=41,
                name="v",
                base_model="Flux.1 D",
                files=files(411),
                early_access_deadline="2099-01-01T00:00:00.000Z",
            ),
        ),
    ]


@pytest.fixture
def civitai() -> Iterator[CivitaiServer]:
    with CivitaiServer(token=TOKEN) as server:
        server.add(_lora())
        for model in _gated_versions():
            server.add(model)
        yield server
        assert server.errors == []


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5.0) as c:
        yield c


def _signed(client: httpx.Client, civitai: CivitaiServer, version: int = 62833, **q: str) -> str:
    response = client.get(civitai.download_url(version, **q))
    assert response.status_code == 307, response.text
    return response.headers["location"]


# --------------------------------------------------------------------------- Civitai API


def test_model_endpoint_shape(civitai: CivitaiServer, client: httpx.Client) -> None:
    body = client.get(f"{civitai.api_url}/api/v1/models/58390").json()
    assert body["type"] == "LORA"
    version = body["modelVersions"][0]
    assert {"modelId", "air", "trainedWords"}.isdisjoint(version)
    primary, other = version["files"]
    assert primary["primary"] is True
    assert "primary" not in other
    assert "AutoV1" not in primary["hashes"]
    assert other["metadata"] == {"format": "PickleTensor", "size": "pruned"}  # null fp removed
    assert primary["downloadUrl"] == f"{civitai.api_url}/api/download/models/62833"
    assert other["downloadUrl"].endswith("?type=Model&format=PickleTensor&size=pruned")
    missing = client.get(f"{civitai.api_url}/api/v1/models/999")
    assert (missing.status_code, missing.json()) == (404, {"error": "No model with id 999"})


def test_version_endpoint_shape(civitai: CivitaiServer, client: httpx.Client) -> None:
    body = client.get(f"{civitai.api_url}/api/v1/model-versions/62833").json()
    assert body["modelId"] == 58390
    assert body["air"] == "urn:air:sd1:lora:civitai:58390@62833"
    assert body["trainedWords"] == ["detailed"]
    assert body["model"] == {
        "name": "Detail Tweaker LoRA",
        "type": "LORA",
        "nsfw": False,
        "poi": False,
    }
    big, small = body["files"]
    sha = hashlib.sha256(BIG).hexdigest()
    autov1 = hashlib.sha256(BIG[0x100000:0x110000]).hexdigest()[:8].upper()
    assert big["hashes"]["SHA256"] == sha.upper()
    assert big["hashes"]["AutoV2"] == sha[:10].upper()
    assert big["hashes"]["AutoV1"] == autov1
    assert "AutoV1" not in small["hashes"]  # under 2 MiB
    assert big["sizeKB"] == len(BIG) / 1024
    assert (big["primary"], small["primary"]) == (True, False)
    assert small["metadata"] == {"format": "PickleTensor", "size": "pruned", "fp": None}
    missing = client.get(f"{civitai.api_url}/api/v1/model-versions/5")
    assert (missing.status_code, missing.json()) == (404, {"error": "Model not found"})


def test_air_and_archived_version(civitai: CivitaiServer, client: httpx.Client) -> None:
    archived = client.get(f"{civitai.api_url}/api/v1/model-versions/11").json()
    assert archived["files"] == []
    assert "downloadUrl" not in archived
    assert archived["air"] == "urn:air:sdxl:checkpoint:civitai:1@11"
    pony = client.get(f"{civitai.api_url}/api/v1/model-versions/21").json()
    assert pony["air"] == "urn:air:sdxl:checkpoint:civitai:2@21"
    flux = client.get(f"{civitai.api_url}/api/v1/model-versions/41").json()
    assert flux["air"].startswith("urn:air:flux1:")


def test_by_hash_any_case(civitai: CivitaiServer, client: httpx.Client) -> None:
    sha = hashlib.sha256(BIG).hexdigest()
    for value in (sha, sha.upper(), sha[:10].lower()):
        response = client.get(f"{civitai.api_url}/api/v1/model-versions/by-hash/{value}")
        assert response.json()["id"] == 62833
    missing = client.get(f"{civitai.api_url}/api/v1/model-versions/by-hash/{'0' * 64}")
    assert missing.status_code == 404
    batch = client.post(f"{civitai.api_url}/api/v1/model-versions/by-hash", json=[sha, "00"])
    assert [v["id"] for v in batch.json()] == [62833]


# --------------------------------------------------------------------------- download + storage


def test_download_redirects_to_signed_storage(civitai: CivitaiServer, client: httpx.Client) -> None:
    response = client.get(civitai.download_url(62833, fileId=67069))
    assert response.status_code == 307
    assert response.headers["cache-control"] == "no-store, max-age=0"
    location = response.headers["location"]
    assert location.startswith(civitai.storage_url + "/file/")
    query = parse_qs(urlsplit(location).query)
    assert query["X-Amz-Expires"] == ["3600"]
    assert query["response-content-disposition"] == [
        'attachment; filename="add_detail.safetensors"'
    ]
    assert "response-content-disposition=attachment%3B%20filename%3D%22" in location
    body = client.get(location)
    assert body.status_code == 200
    assert body.content == BIG
    assert body.headers["content-type"] == "application/octet-stream"
    assert body.headers["content-length"] == str(len(BIG))
    assert body.headers["accept-ranges"] == "bytes"
    assert body.headers["content-disposition"] == 'attachment; filename="add_detail.safetensors"'
    hosts = [(r.host, r.method) for r in civitai.requests]
    assert hosts == [("api", "GET"), ("storage", "GET")]
    assert "user-agent" in civitai.requests[0].headers
    assert civitai.requests[0].query == {"fileId": "67069"}


def test_file_selection(civitai: CivitaiServer, client: httpx.Client) -> None:
    def name(**q: str) -> str:
        return urlsplit(_signed(client, civitai, 62833, **q)).path.rsplit("/", 1)[1]

    assert name() == "add_detail.safetensors"
    assert name(fileId="67070") == "add_detail.pt"
    assert name(type="Model", format="PickleTensor") == "add_detail.pt"
    misaligned = client.get(civitai.download_url(62833, type="Model", fp="bf16"))
    assert (misaligned.status_code, misaligned.json()) == (404, {"error": "File not found"})
    bad = client.get(civitai.download_url(62833, size="huge"))
    assert bad.status_code == 400
    assert "error" in bad.json()


def test_download_refusals(civitai: CivitaiServer, client: httpx.Client) -> None:
    def get(version: int, **kw: str) -> httpx.Response:
        headers = {"User-Agent": kw.pop("ua")} if "ua" in kw else {}
        return client.get(civitai.download_url(version, **kw), headers=headers)

    assert (get(5).status_code, get(5).json()) == (404, {"error": "File not found"})
    assert get(62833, fileId="1").status_code == 404
    archived = get(11)
    assert (archived.status_code, archived.json()["error"]) == (
        410,
        "Model archived, not available for download",
    )
    disabled = get(21)
    assert disabled.status_code == 401
    assert "disabled downloads" in disabled.json()["message"]
    login = get(31)
    assert login.status_code == 401
    assert login.json()["message"] == (
        "The creator of this asset requires you to be logged in to download it"
    )
    assert get(31, token="wrong").status_code == 401  # an invalid token is anonymous
    browser = get(31, ua="Mozilla/5.0 (X11) Firefox/130.0")
    assert browser.status_code == 307
    assert browser.headers["location"] == (
        "/login?returnUrl=%2Fmodel-versions%2F31&reason=download-auth"
    )
    early = get(41)
    assert early.status_code == 403
    assert early.json()["error"] == "Early Access"
    assert early.json()["deadline"] == "2099-01-01T00:00:00.000Z"
    assert get(41, token=TOKEN).status_code == 307


def test_token_header_and_query(civitai: CivitaiServer, client: httpx.Client) -> None:
    url = civitai.download_url(31)
    assert client.get(url, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 307
    assert client.get(url, headers={"Authorization": f"Token {TOKEN}"}).status_code == 307
    assert client.get(civitai.download_url(31, token=TOKEN)).status_code == 307
    # The header wins over ?token= even when it is wrong.
    both = client.get(civitai.download_url(31, token=TOKEN), headers={"Authorization": "Bearer x"})
    assert both.status_code == 401


def test_storage_rejects_authorization(civitai: CivitaiServer, client: httpx.Client) -> None:
    location = _signed(client, civitai)
    response = client.get(location, headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 400
    assert b"<Code>InvalidRequest</Code>" in response.content
    assert b"Missing x-amz-content-sha256" in response.content
    tampered = client.get(location.replace("/67069/", "/67070/"))
    assert tampered.status_code == 403
    assert b"SignatureDoesNotMatch" in tampered.content


def test_range_and_head(civitai: CivitaiServer, client: httpx.Client) -> None:
    location = _signed(client, civitai)
    tail = client.get(location, headers={"Range": "bytes=1000-"})
    assert tail.status_code == 206
    assert tail.headers["content-range"] == f"bytes 1000-{len(BIG) - 1}/{len(BIG)}"
    assert tail.content == BIG[1000:]
    middle = client.get(location, headers={"Range": "bytes=10-19"})
    assert (middle.status_code, middle.content) == (206, BIG[10:20])
    beyond = client.get(location, headers={"Range": f"bytes={len(BIG)}-"})
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{len(BIG)}"
    head = client.head(location)
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["content-length"] == str(len(BIG))


def test_parse_range_rules() -> None:
    assert parse_range("bytes=0-", 10) == (0, 9)
    assert parse_range("bytes=5-100", 10) == (5, 9)
    assert parse_range("bytes=-3", 10) == (7, 9)
    assert parse_range("bytes=10-", 10) is False
    assert parse_range("bytes=0-1,4-5", 10) is None
    assert parse_range("items=0-1", 10) is None


def test_signed_url_expiry(client: httpx.Client) -> None:
    with CivitaiServer(signed_url_ttl=3600) as civitai:
        civitai.add(_lora())
        old = _signed(client, civitai)
        civitai.expire_signed_urls()
        expired = client.get(old)
        assert expired.status_code == 403
        assert b"<Code>AccessDenied</Code><Message>Request has expired</Message>" in (
            expired.content
        )
        fresh = _signed(client, civitai)
        assert client.get(fresh, headers={"Range": "bytes=0-0"}).status_code == 206
    with CivitaiServer(signed_url_ttl=0.05) as short:
        short.add(_lora())
        location = _signed(client, short)
        time.sleep(0.1)
        assert client.get(location).status_code == 403


def test_path_content_streams_from_disk(tmp_path: Path, client: httpx.Client) -> None:
    blob = tmp_path / "model.safetensors"
    blob.write_bytes(BIG)
    file = FakeFile(id=9, name="model.safetensors", content=blob, primary=True)
    model = FakeModel(
        id=8,
        name="m",
        type="Checkpoint",
        versions=[FakeVersion(id=7, name="v", base_model="SDXL 1.0", files=[file])],
    )
    with CivitaiServer() as civitai:
        civitai.add(model)
        location = _signed(client, civitai, version=7)
        assert client.get(location).content == BIG
        part = client.get(location, headers={"Range": "bytes=2097152-"})
        assert part.content == BIG[2097152:]
    assert file.sha256 == hashlib.sha256(BIG).hexdigest()
    assert file.size_bytes == len(BIG)


# --------------------------------------------------------------------------- faults


def test_fail_fault(civitai: CivitaiServer, client: httpx.Client) -> None:
    civitai.faults.fail("api", 429, times=2, retry_after="7", path_contains="/api/download")
    url = civitai.download_url(62833)
    first = client.get(url)
    assert (first.status_code, first.headers["retry-after"]) == (429, "7")
    assert client.get(f"{civitai.api_url}/api/v1/models/58390").status_code == 200  # no match
    assert client.get(url).status_code == 429
    assert client.get(url).status_code == 307  # consumed
    civitai.faults.fail("storage", 503, body=b"busy")
    location = _signed(client, civitai)
    failed = client.get(location)
    assert (failed.status_code, failed.content) == (503, b"busy")
    assert client.get(location).status_code == 200


def test_reset_and_truncate_faults(civitai: CivitaiServer, client: httpx.Client) -> None:
    location = _signed(client, civitai)
    civitai.faults.reset_after(1000)
    with pytest.raises(httpx.TransportError):
        client.get(location)
    assert client.get(location).content == BIG  # one-shot
    civitai.faults.truncate_to = 5000
    with client.stream("GET", location) as response:
        assert response.headers["content-length"] == str(len(BIG))
        received = bytearray()
        with pytest.raises(httpx.RemoteProtocolError):
            for chunk in response.iter_bytes():
                received += chunk
    assert bytes(received) == BIG[:5000]


def test_content_faults(civitai: CivitaiServer, client: httpx.Client) -> None:
    location = _signed(client, civitai)
    faults = civitai.faults
    faults.ignore_range = True
    ignored = client.get(location, headers={"Range": "bytes=100-"})
    assert (ignored.status_code, len(ignored.content)) == (200, len(BIG))
    faults.ignore_range = False
    faults.html_instead = True
    page = client.get(location)
    assert (page.status_code, page.headers["content-type"]) == (200, "text/html; charset=utf-8")
    faults.html_instead = False
    faults.json_instead = True
    assert client.get(location).headers["content-type"].startswith("application/json")
    faults.json_instead = False
    faults.corrupt = True
    corrupt = client.get(location).content
    assert len(corrupt) == len(BIG)
    assert corrupt != BIG
    assert corrupt[:-1] == BIG[:-1]
    faults.corrupt = False
    faults.throttle_bps = 1_000_000
    started = time.monotonic()
    throttled = client.get(location, headers={"Range": "bytes=0-199999"})
    assert throttled.content == BIG[:200_000]
    assert time.monotonic() - started >= 0.15


def test_stop_with_throttled_download_in_flight(client: httpx.Client) -> None:
    with CivitaiServer() as civitai:
        civitai.add(_lora())
        civitai.faults.throttle_bps = 10_000
        location = _signed(client, civitai)
        with client.stream("GET", location) as response:
            chunks = response.iter_bytes()
            next(chunks)
            started = time.monotonic()
            civitai.stop()
            assert time.monotonic() - started < 2.0
            with pytest.raises(httpx.TransportError):
                for _ in chunks:
                    pass


# --------------------------------------------------------------------------- Hugging Face

HF_TOKEN = "hf_secret"
VAE = "vae-ft-mse-840000-ema-pruned.safetensors"
CONFIG = b'{"_class_name": "AutoencoderKL"}'


@pytest.fixture
def hf() -> Iterator[HfServer]:
    with HfServer(token=HF_TOKEN) as server:
        yield server
        assert server.errors == []


def test_hf_lfs_redirect_and_headers(hf: HfServer, client: httpx.Client) -> None:
    commit = hf.add_file("stabilityai/sd-vae", VAE, BIG)
    assert len(commit) == 40
    url = hf.resolve_url("stabilityai/sd-vae", VAE)
    head = client.head(url, headers={"Accept-Encoding": "identity"})
    assert head.status_code == 302
    assert head.headers["x-repo-commit"] == commit
    assert head.headers["x-linked-etag"] == f'"{hashlib.sha256(BIG).hexdigest()}"'
    assert head.headers["x-linked-size"] == str(len(BIG))
    assert head.headers["etag"].startswith('"')
    location = head.headers["location"]
    assert location.startswith(hf.cdn_url + "/repos/")
    assert "X-Amz-Expires=3600" in location
    body = client.get(location)
    assert body.content == BIG
    assert body.headers["content-disposition"].startswith("inline; filename*=UTF-8''")
    rejected = client.get(location, headers={"Authorization": f"Bearer {HF_TOKEN}"})
    assert rejected.status_code == 400
    ranged = client.get(location, headers={"Range": "bytes=5-"})
    assert (ranged.status_code, ranged.content) == (206, BIG[5:])
    assert client.get(location, headers={"Range": f"bytes={len(BIG)}-"}).status_code == 416
    hf.expire_signed_urls()
    assert b"Request has expired" in client.get(location).content
    assert [r.host for r in hf.requests] == ["hf", "cdn", "cdn", "cdn", "cdn", "cdn"]


def test_hf_plain_git_file(hf: HfServer, client: httpx.Client) -> None:
    commit = hf.add_file("org/repo", "vae/config.json", CONFIG, lfs=False)
    response = client.get(hf.resolve_url("org/repo", "vae/config.json"))
    assert response.status_code == 200
    assert response.content == CONFIG
    blob = hashlib.sha1(b"blob %d\0" % len(CONFIG) + CONFIG, usedforsecurity=False).hexdigest()
    assert response.headers["etag"] == f'"{blob}"'
    assert response.headers["x-repo-commit"] == commit
    assert response.headers["content-length"] == str(len(CONFIG))


def test_hf_revisions_and_errors(hf: HfServer, client: httpx.Client) -> None:
    first = hf.add_file("org/repo", "a.safetensors", b"one")
    second = hf.add_file("org/repo", "b.safetensors", b"two")
    pr = hf.add_file("org/repo", "a.safetensors", b"pr", revision="refs/pr/1")
    assert len({first, second, pr}) == 3

    def get(path: str, revision: str) -> httpx.Response:
        return client.head(hf.resolve_url("org/repo", path, revision))

    assert get("a.safetensors", first).headers["x-repo-commit"] == first
    assert get("b.safetensors", "main").headers["x-repo-commit"] == second
    assert "refs%2Fpr%2F1" in hf.resolve_url("org/repo", "a.safetensors", "refs/pr/1")
    assert get("a.safetensors", "refs/pr/1").headers["x-repo-commit"] == pr
    missing_entry = get("b.safetensors", first)  # b did not exist yet at the first commit
    assert (missing_entry.status_code, missing_entry.headers["x-error-code"]) == (
        404,
        "EntryNotFound",
    )
    bad_rev = get("a.safetensors", "nope")
    assert (bad_rev.status_code, bad_rev.headers["x-error-code"]) == (404, "RevisionNotFound")
    no_repo = client.get(hf.resolve_url("org/none", "a.safetensors"))
    assert (no_repo.status_code, no_repo.headers["x-error-code"]) == (401, "RepoNotFound")


def test_hf_gated(client: httpx.Client) -> None:
    with HfServer(token=HF_TOKEN) as hf:
        hf.add_file("org/gated", "m.safetensors", b"weights")
        hf.gate("org/gated")
        hf.add_file("org/pending", "m.safetensors", b"weights")
        hf.gate("org/pending", approved=False)
        url = hf.resolve_url("org/gated", "m.safetensors")
        for headers in ({}, {"Authorization": "Bearer hf_wrong"}):
            denied = client.head(url, headers=headers)
            assert (denied.status_code, denied.headers["x-error-code"]) == (401, "GatedRepo")
            assert "Please log in." in denied.headers["x-error-message"]
        auth = {"Authorization": f"Bearer {HF_TOKEN}"}
        assert client.head(url, headers=auth).status_code == 302
        pending = client.get(hf.resolve_url("org/pending", "m.safetensors"), headers=auth)
        assert pending.status_code == 403
        assert "not in the authorized list" in pending.json()["error"]


def test_hf_revision_api(hf: HfServer, client: httpx.Client) -> None:
    hf.add_file("org/repo", "config.json", CONFIG, lfs=False)
    commit = hf.add_file("org/repo", "unet/model.safetensors", BIG)
    hf.gate("org/repo")
    plain = client.get(f"{hf.endpoint}/api/models/org/repo/revision/main").json()
    assert plain["sha"] == commit
    assert plain["gated"] == "manual"
    assert plain["siblings"] == [
        {"rfilename": "config.json"},
        {"rfilename": "unet/model.safetensors"},
    ]
    blobs = client.get(f"{hf.endpoint}/api/models/org/repo/revision/{commit}?blobs=true").json()
    lfs = blobs["siblings"][1]["lfs"]
    assert lfs["sha256"] == hashlib.sha256(BIG).hexdigest()
    assert lfs["size"] == len(BIG)
    assert "lfs" not in blobs["siblings"][0]
    assert client.get(f"{hf.endpoint}/api/models/org/x/revision/main").status_code == 401
    tree = client.get(
        f"{hf.endpoint}/api/models/org/repo/tree/main?recursive=true",
        headers={"Authorization": f"Bearer {HF_TOKEN}"},
    ).json()
    assert [e["path"] for e in tree] == ["config.json", "unet", "unet/model.safetensors"]


def test_hf_renamed_repo_and_faults(hf: HfServer, client: httpx.Client) -> None:
    hf.add_file("org/new", "m.safetensors", b"w", lfs=False)
    hf.rename("org/old", "org/new")
    moved = client.head(hf.resolve_url("org/old", "m.safetensors"))
    assert (moved.status_code, moved.headers["location"]) == (
        307,
        "/org/new/resolve/main/m.safetensors",
    )
    hf.faults.fail("hf", 429, retry_after="55")
    limited = client.get(hf.resolve_url("org/new", "m.safetensors"))
    assert (limited.status_code, limited.headers["retry-after"]) == (429, "55")
    assert limited.headers["ratelimit"] == '"api";r=0;t=55'
    hf.faults.html_instead = True
    page = client.get(hf.resolve_url("org/new", "m.safetensors"))
    assert page.headers["content-type"].startswith("text/html")
