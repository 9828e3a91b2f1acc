"""Resolution details of each source, against the loopback fakes (in-process: fast)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest

from provision.errors import AccessDenied, AuthRequired, NotFound, SourceError
from provision.kinds import Family, Kind
from provision.manifest.refs import CivitaiRef, parse_hf
from provision.net.http import RetryPolicy
from provision.sources import ResolvedFile, SourceContext, huggingface
from provision.sources import civitai as civitai_source
from provision.sources.locked import CivitaiSource, HfSource
from tests.fakes import CivitaiServer, FakeFile, FakeModel, FakeVersion, HfServer
from tests.integration.catalog import MANIFEST, build
from tests.integration.conftest import HF_TOKEN, TOKEN, Cli

FAST = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02, max_retry_after=0.05)


def _hf_ctx(hf: HfServer, token: str | None = HF_TOKEN) -> SourceContext:
    return SourceContext(hf_endpoint=hf.endpoint, hf_token=token, retry=FAST)


def _resolve_hf(hf: HfServer, ref: str, token: str | None = HF_TOKEN) -> ResolvedFile:
    with httpx.Client() as client:
        return huggingface.resolve(
            parse_hf(ref), what="vaes[0]", client=client, ctx=_hf_ctx(hf, token), base=None
        )


def test_hf_lfs_file_locks_commit_sha_and_size(hf: HfServer) -> None:
    data = b"\x01" * 5000
    commit = hf.add_file("org/vae", "dir/v.safetensors", data)
    resolved = _resolve_hf(hf, "org/vae/dir/v.safetensors")
    assert resolved.sha256 == hashlib.sha256(data).hexdigest()
    assert resolved.size == 5000
    assert resolved.source == HfSource(
        repo="org/vae", path="dir/v.safetensors", revision="main", commit=commit
    )
    head = [r for r in hf.requests if r.method == "HEAD"]
    assert head and all(r.headers.get("authorization") == f"Bearer {HF_TOKEN}" for r in head)
    assert not [r for r in hf.requests if r.host == "cdn"]  # metadata came from the HEAD alone


def test_hf_plain_git_file_is_hashed_once(hf: HfServer) -> None:
    data = b"small config-ish file"
    hf.add_file("org/tiny", "x.safetensors", data, lfs=False)
    resolved = _resolve_hf(hf, "org/tiny/x.safetensors")
    assert resolved.sha256 == hashlib.sha256(data).hexdigest() and resolved.size == len(data)


def test_hf_renamed_repo_is_followed(hf: HfServer) -> None:
    hf.add_file("org/new", "v.safetensors", b"abc" * 100)
    hf.rename("org/old", "org/new")
    resolved = _resolve_hf(hf, "org/old/v.safetensors")
    assert resolved.size == 300


def test_hf_errors_say_what_to_do(hf: HfServer) -> None:
    hf.add_file("org/gated", "v.safetensors", b"x" * 10)
    hf.gate("org/gated")
    with pytest.raises(AuthRequired, match="gated repository") as caught:
        _resolve_hf(hf, "org/gated/v.safetensors", token=None)
    assert "HF_TOKEN" in caught.value.render()
    assert _resolve_hf(hf, "org/gated/v.safetensors").size == 10
    with pytest.raises(NotFound, match="repository not found, or private"):
        _resolve_hf(hf, "org/none/v.safetensors")
    with pytest.raises(NotFound, match="file not found"):
        _resolve_hf(hf, "org/gated/missing.safetensors")


@pytest.fixture
def model(civitai: CivitaiServer, tmp_path: Path) -> FakeModel:
    a = tmp_path / "a.safetensors"
    a.write_bytes(b"a" * 3000)
    b = tmp_path / "b.ckpt"
    b.write_bytes(b"b" * 2000)
    fake = FakeModel(
        id=5,
        name="M",
        type="Checkpoint",
        versions=[
            FakeVersion(
                id=50,
                name="v1",
                base_model="Illustrious",
                files=[
                    FakeFile(id=501, name="m_fp16.safetensors", content=a, fp="fp16", primary=True),
                    FakeFile(
                        id=502,
                        name="m_full.ckpt",
                        content=b,
                        format="PickleTensor",
                        size="full",
                        fp="fp32",
                    ),
                ],
            )
        ],
    )
    civitai.add(fake)
    return fake


def _resolve_civitai(
    civitai: CivitaiServer,
    ref: CivitaiRef,
    *,
    selector: dict[str, str | None] | None = None,
    file_id: int | None = None,
) -> ResolvedFile:
    ctx = SourceContext(civitai_url=civitai.api_url, civitai_token=TOKEN, retry=FAST)
    with httpx.Client() as client:
        return civitai_source.resolve(
            ref,
            kind=Kind.CHECKPOINT,
            what="checkpoints[0]",
            client=client,
            ctx=ctx,
            file_id=file_id,
            selector=selector,
        )


def test_civitai_primary_file_exact_size_and_family(
    civitai: CivitaiServer, model: FakeModel
) -> None:
    resolved = _resolve_civitai(civitai, CivitaiRef(model_id=5))
    assert (
        isinstance(resolved.source, CivitaiSource)
        and resolved.source.file_id == 501
        and resolved.size == 3000
    )
    assert resolved.base is Family.SDXL and resolved.base_model == "Illustrious"
    assert resolved.declared_kind is Kind.CHECKPOINT


def test_civitai_selector_and_file_id(civitai: CivitaiServer, model: FakeModel) -> None:
    chosen = _resolve_civitai(
        civitai,
        CivitaiRef(version_id=50),
        selector={"format": "PickleTensor", "size": None, "fp": None},
    )
    assert (
        isinstance(chosen.source, CivitaiSource)
        and chosen.source.file_id == 502
        and chosen.size == 2000
    )
    assert (
        _resolve_civitai(civitai, CivitaiRef(version_id=50), file_id=502).file_name == "m_full.ckpt"
    )
    with pytest.raises(NotFound, match="no file matches the selector"):
        _resolve_civitai(
            civitai,
            CivitaiRef(version_id=50),
            selector={"format": "GGUF", "size": None, "fp": None},
        )
    with pytest.raises(NotFound, match="has no file 999"):
        _resolve_civitai(civitai, CivitaiRef(version_id=50), file_id=999)


def test_civitai_not_found_and_unhashed(civitai: CivitaiServer, model: FakeModel) -> None:
    with pytest.raises(NotFound, match="not found on Civitai"):
        _resolve_civitai(civitai, CivitaiRef(version_id=777))
    with pytest.raises(NotFound, match="belongs to model 5, not 6"):
        _resolve_civitai(civitai, CivitaiRef(model_id=6, version_id=50))
    model.versions[0].files[0].hashed = False
    with pytest.raises(SourceError, match="has not hashed file 501 yet"):
        _resolve_civitai(civitai, CivitaiRef(version_id=50))


def test_civitai_disabled_downloads_and_transient_api(
    civitai: CivitaiServer, model: FakeModel
) -> None:
    civitai.faults.fail("api", 502, times=2, path_contains="/api/v1/model-versions/")
    assert _resolve_civitai(civitai, CivitaiRef(version_id=50)).size == 3000
    model.versions[0].usage_control = "Generation"
    with pytest.raises(AccessDenied, match="disabled downloads"):
        _resolve_civitai(civitai, CivitaiRef(version_id=50))


def test_sync_state_holds_no_secret(
    cli: object, civitai: CivitaiServer, hf: HfServer, tmp_path: Path
) -> None:

    assert isinstance(cli, Cli)
    build(tmp_path, civitai, hf)
    (tmp_path / "manifests" / "models.yaml").write_text(MANIFEST)
    cli.run("lock")
    root = tmp_path / "models"
    cli.run("sync", "--models-root", str(root), "--json")
    for path in (root / ".sdprov").rglob("*"):
        if path.is_file():
            text = path.read_bytes()
            assert TOKEN.encode() not in text and HF_TOKEN.encode() not in text
            assert b"X-Amz-Signature" not in text
    assert (root / ".sdprov" / ".gitignore").read_text() == "*\n"


def test_broken_safetensors_header_fails_lock_naming_the_entry(
    cli: Cli, civitai: CivitaiServer, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes((16).to_bytes(8, "little") + b"this is not json" + b"\0" * 100)
    civitai.add(
        FakeModel(
            id=11,
            name="B",
            type="LORA",
            versions=[
                FakeVersion(
                    id=110,
                    name="v1",
                    base_model="SD 1.5",
                    files=[FakeFile(id=1100, name="b.safetensors", content=broken, primary=True)],
                )
            ],
        )
    )
    (tmp_path / "manifests" / "models.yaml").write_text("loras:\n  - civitai: 11@110\n")
    out = cli.run("lock", check=1)
    assert "loras[0]: civitai version 110 file 1100 serves a broken safetensors file" in out.stderr
    assert "loras[0]: loras[0]" not in out.stderr
