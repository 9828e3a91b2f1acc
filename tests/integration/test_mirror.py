"""The OSS mirror end to end: real `sdprov` subprocesses against loopback Civitai, Hugging Face
and a fake of the OSS REST API that the official SDK talks to (tests/fakes/oss.py)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes import CivitaiServer, HfServer
from tests.fakes.oss import ACCESS_KEY_ID, ACCESS_KEY_SECRET, OssServer
from tests.integration.catalog import MANIFEST, Catalog, build
from tests.integration.conftest import HF_TOKEN, TOKEN, Cli

BUCKET = "team-models"
MIRROR = f"oss://{BUCKET}/sd"


@pytest.fixture
def oss() -> Iterator[OssServer]:
    with OssServer(buckets=(BUCKET,)) as server:
        yield server
    assert server.errors == []


@pytest.fixture
def mcli(cli: Cli, oss: OssServer) -> Cli:
    env = cli.env | {
        "SDPROV_OSS_ENDPOINT": oss.endpoint,
        "OSS_REGION": "cn-hangzhou",
        "ALIBABA_CLOUD_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": ACCESS_KEY_SECRET,
    }
    return Cli(cwd=cli.cwd, env=env)


def run(cli: Cli, *args: str, check: int | None = 0) -> tuple[int, str, str]:
    result = cli.run(*args, check=check)
    assert ACCESS_KEY_SECRET not in result.stdout + result.stderr
    return result.code, result.stdout, result.stderr


def locked(
    cli: Cli, tmp_path: Path, civitai: CivitaiServer, hf: HfServer
) -> tuple[Catalog, dict[str, Any]]:
    catalog = build(tmp_path, civitai, hf)
    (tmp_path / "manifests" / "models.yaml").write_text(MANIFEST)
    cli.run("lock")
    lock = json.loads((tmp_path / "manifests" / "models.lock.json").read_text())
    return catalog, {m["path"]: m for m in lock["models"]}


def key_of(sha256: str) -> str:
    return f"sd/sha256/{sha256[:2]}/{sha256}"


def assert_no_secret_travelled(oss: OssServer) -> None:
    for request in oss.requests:
        carried = json.dumps([request.path, request.query, request.headers])
        for secret in (ACCESS_KEY_SECRET, TOKEN, HF_TOKEN):
            assert secret not in carried


def test_push_then_sync_takes_every_file_from_the_mirror(
    mcli: Cli, oss: OssServer, civitai: CivitaiServer, hf: HfServer, tmp_path: Path
) -> None:
    _, by_path = locked(mcli, tmp_path, civitai, hf)

    _, out, _ = run(mcli, "mirror", "push", "--mirror", MIRROR, "--dry-run", "--json")
    dry = json.loads(out)
    assert sorted(u["path"] for u in dry["upload"]) == sorted(by_path)
    assert {u["from"] for u in dry["upload"]} == {"source"}
    assert oss.objects == {} and oss.of("PUT") == []

    log = tmp_path / "push.log"
    _, out, _ = run(
        mcli, "-v", "mirror", "push", "--mirror", MIRROR, "--json", "--log-file", str(log)
    )
    assert ACCESS_KEY_SECRET not in log.read_text()
    pushed = json.loads(out)
    assert pushed["ok"] and sorted(pushed["uploaded"]) == sorted(by_path)
    assert oss.keys(BUCKET) == sorted(key_of(m["sha256"]) for m in by_path.values())
    for entry in by_path.values():
        stored = oss.objects[(BUCKET, key_of(entry["sha256"]))]
        assert hashlib.sha256(stored.data).hexdigest() == entry["sha256"]
        assert stored.encryption == "AES256" and stored.acl is None  # private: the bucket's ACL
        assert stored.metadata["sdprov-sha256"] == entry["sha256"]
        assert stored.metadata["sdprov-size"] == str(entry["size"])
        assert json.loads(_unquote(stored.metadata["sdprov-source"])) == entry["source"]
    assert not (tmp_path / ".sdprov-mirror" / "partial").exists() or not any(
        (tmp_path / ".sdprov-mirror" / "partial").iterdir()
    )

    # Nothing lacking: the second push only asks (HEAD), never uploads.
    oss.requests.clear()
    _, out, _ = run(mcli, "mirror", "push", "--mirror", MIRROR, "--json")
    assert json.loads(out)["uploaded"] == [] and {r.method for r in oss.requests} == {"HEAD"}

    civitai.clear_requests()
    hf.requests.clear()
    root = tmp_path / "sd" / "models"
    _, out, _ = run(
        mcli, "-v", "sync", "--models-root", str(root), "--mirror", MIRROR, "--json"
    )  # the most verbose level still prints no credential (run() checks)
    result = json.loads(out)
    assert result["ok"] and sorted(result["mirror"]["from_mirror"]) == sorted(by_path)
    assert result["mirror"]["from_source"] == []
    for path, entry in by_path.items():
        assert hashlib.sha256((root / path).read_bytes()).hexdigest() == entry["sha256"]
    assert civitai.requests == [] and hf.requests == []  # no byte from the internet sources
    gets = oss.of("GET", "sha256/")
    assert gets and all("x-oss-signature" in r.query for r in gets)  # presigned, private
    assert_no_secret_travelled(oss)


def _unquote(text: str) -> str:
    from urllib.parse import unquote

    return unquote(text)


def test_mirror_lacking_a_file_falls_back_to_its_source_and_status_says_so(
    mcli: Cli, oss: OssServer, civitai: CivitaiServer, hf: HfServer, tmp_path: Path
) -> None:
    _, by_path = locked(mcli, tmp_path, civitai, hf)
    run(mcli, "mirror", "push", "--mirror", MIRROR)
    lora = "Lora/add-detail-xl.safetensors"
    del oss.objects[(BUCKET, key_of(by_path[lora]["sha256"]))]

    root = tmp_path / "sd" / "models"
    _, out, err = run(
        mcli, "status", "--models-root", str(root), "--mirror", MIRROR, "--check", check=1
    )
    assert "no-mirror  Lora/add-detail-xl.safetensors" in out + err  # the table may move to stdout
    _, out, _ = run(
        mcli, "status", "--models-root", str(root), "--mirror", MIRROR, "--json", check=0
    )
    assert json.loads(out)["mirror"] == {"url": MIRROR, "lacking": [lora], "present": 3}

    civitai.clear_requests()
    _, out, _ = run(mcli, "sync", "--models-root", str(root), "--mirror", MIRROR, "--json")
    result = json.loads(out)
    assert result["ok"] and result["mirror"]["from_source"] == [lora]
    assert sorted(result["mirror"]["from_mirror"]) == sorted(set(by_path) - {lora})
    assert (root / lora).stat().st_size == by_path[lora]["size"]
    assert [r for r in civitai.requests if r.host == "storage"]  # the fallback's bytes

    run(mcli, "mirror", "push", "--mirror", MIRROR, "--models-root", str(root))
    _, out, err = run(mcli, "status", "--models-root", str(root), "--mirror", MIRROR, "--check")
    assert "mirror oss://team-models/sd: 4 present, 0 lacking" in out + err


def test_mirror_object_with_wrong_bytes_is_refused_at_sync(
    mcli: Cli, oss: OssServer, civitai: CivitaiServer, hf: HfServer, tmp_path: Path
) -> None:
    _, by_path = locked(mcli, tmp_path, civitai, hf)
    run(mcli, "mirror", "push", "--mirror", MIRROR)
    ckpt = "Stable-diffusion/juggernaut_xl_v9.safetensors"
    oss.corrupt(BUCKET, key_of(by_path[ckpt]["sha256"]))

    root = tmp_path / "sd" / "models"
    _, out, err = run(
        mcli, "sync", "--models-root", str(root), "--mirror", MIRROR, "--json", check=1
    )
    assert "sha256 mismatch" in err and f"oss://{BUCKET}/{key_of(by_path[ckpt]['sha256'])}" in err
    assert "mirror push --verify" in err  # the hint fits the mirror, not "re-lock"
    assert not (root / ckpt).exists()  # never placed
    result = json.loads(out)
    assert list(result["failures"]) == [ckpt]
    assert sorted(result["downloaded"]) == sorted(set(by_path) - {ckpt})

    # A plain push trusts key and size; --verify reads back, finds it and uploads it again.
    _, out, _ = run(mcli, "mirror", "push", "--mirror", MIRROR, "--json")
    assert json.loads(out)["uploaded"] == []
    _, out, _ = run(mcli, "mirror", "push", "--mirror", MIRROR, "--verify", "--dry-run", "--json")
    assert [(u["path"], u["damaged"]) for u in json.loads(out)["upload"]] == [(ckpt, True)]
    _, out, _ = run(mcli, "mirror", "push", "--mirror", MIRROR, "--verify", "--json")
    assert json.loads(out)["uploaded"] == [ckpt]
    run(mcli, "sync", "--models-root", str(root), "--mirror", MIRROR)
    assert hashlib.sha256((root / ckpt).read_bytes()).hexdigest() == by_path[ckpt]["sha256"]


def test_a_civitai_model_gone_410_after_mirroring_still_syncs_from_the_mirror(
    mcli: Cli, oss: OssServer, civitai: CivitaiServer, hf: HfServer, tmp_path: Path
) -> None:
    _, by_path = locked(mcli, tmp_path, civitai, hf)
    run(mcli, "mirror", "push", "--mirror", MIRROR)
    for model in civitai._snapshot():
        model.mode = "Archived"  # the download endpoint now answers 410

    plain = tmp_path / "plain"
    _, _, err = run(mcli, "sync", "--models-root", str(plain), check=1)
    assert "410" in err or "archived" in err.lower()

    civitai.clear_requests()
    root = tmp_path / "sd" / "models"
    _, out, _ = run(mcli, "sync", "--models-root", str(root), "--mirror", MIRROR, "--json")
    result = json.loads(out)
    assert result["ok"] and sorted(result["downloaded"]) == sorted(by_path)
    assert sorted(result["mirror"]["from_mirror"]) == sorted(by_path)
    assert civitai.requests == []  # the lock alone, and the mirror, rebuild the environment


def test_interrupted_multipart_upload_resumes_without_resending_parts(
    mcli: Cli, oss: OssServer, civitai: CivitaiServer, hf: HfServer, tmp_path: Path
) -> None:
    _, by_path = locked(mcli, tmp_path, civitai, hf)
    biggest = max(by_path.values(), key=lambda m: m["size"])
    part = 100 << 10
    assert biggest["size"] > 4 * part, "the checkpoint must span several parts"
    cli = Cli(cwd=mcli.cwd, env=mcli.env | {"SDPROV_OSS_PART_SIZE": str(part)})
    lock = str(tmp_path / "manifests" / "models.lock.json")
    oss.faults.fail("oss", 500, times=100, path_contains="partNumber=3&")

    _, _, err = run(cli, "mirror", "push", "--lock", lock, "--mirror", MIRROR, check=1)
    assert "HTTP 500" in err and biggest["path"] in err
    assert (BUCKET, key_of(biggest["sha256"])) not in oss.objects
    assert len(oss.uploads) == 1
    first_sent = {r.query["partNumber"] for r in oss.of("PUT") if r.query.get("partNumber")}
    assert "1" in first_sent and "2" in first_sent

    oss.faults.clear()
    oss.requests.clear()
    _, out, _ = run(cli, "mirror", "push", "--lock", lock, "--mirror", MIRROR, "--json")
    result = json.loads(out)
    assert result["ok"] and result["uploaded"] == [biggest["path"]]
    assert result["parts_resumed"] >= 2
    resent = [r.query["partNumber"] for r in oss.of("PUT") if r.query.get("partNumber")]
    assert "1" not in resent and "2" not in resent and "3" in resent
    stored = oss.objects[(BUCKET, key_of(biggest["sha256"]))].data
    assert hashlib.sha256(stored).hexdigest() == biggest["sha256"]
    assert oss.uploads == {}


def test_push_from_the_models_root_reads_no_source(
    mcli: Cli, oss: OssServer, civitai: CivitaiServer, hf: HfServer, tmp_path: Path
) -> None:
    _, by_path = locked(mcli, tmp_path, civitai, hf)
    root = tmp_path / "sd" / "models"
    run(mcli, "sync", "--models-root", str(root))
    civitai.clear_requests()
    hf.requests.clear()
    _, out, _ = run(
        mcli, "mirror", "push", "--mirror", MIRROR, "--models-root", str(root), "--dry-run",
        "--json",
    )  # fmt: skip
    assert {u["from"] for u in json.loads(out)["upload"]} == {"models_root"}
    _, out, _ = run(mcli, "mirror", "push", "--mirror", MIRROR, "--models-root", str(root))
    assert len(oss.keys(BUCKET)) == len(by_path)
    assert civitai.requests == [] and hf.requests == []


def test_credentials_missing_or_refused_are_clear_errors_without_secrets(
    mcli: Cli, oss: OssServer, civitai: CivitaiServer, hf: HfServer, tmp_path: Path
) -> None:
    locked(mcli, tmp_path, civitai, hf)
    bare = {k: v for k, v in mcli.env.items() if not k.startswith("ALIBABA_CLOUD_ACCESS_KEY")}
    _, _, err = run(Cli(mcli.cwd, bare), "mirror", "push", "--mirror", MIRROR, check=2)
    assert "no Alibaba Cloud credentials" in err and "ALIBABA_CLOUD_ACCESS_KEY_ID" in err

    wrong = mcli.env | {"ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAI5tSomeoneElse"}
    _, _, err = run(Cli(mcli.cwd, wrong), "mirror", "push", "--mirror", MIRROR, check=1)
    assert "access denied" in err
    root = tmp_path / "sd" / "models"
    _, _, err = run(
        Cli(mcli.cwd, wrong), "sync", "--models-root", str(root), "--mirror", MIRROR, check=1
    )
    assert "refused access" in err and not (root / "Lora").exists()

    _, _, err = run(mcli, "mirror", "push", "--mirror", "oss://Bad_Bucket", check=2)
    assert "not an OSS bucket name" in err
    _, _, err = run(mcli, "mirror", "push", "--mirror", "oss://no-such-bucket", check=1)
    assert "does not exist" in err
    assert_no_secret_travelled(oss)


def test_credentials_from_a_profile_file(
    mcli: Cli, oss: OssServer, civitai: CivitaiServer, hf: HfServer, tmp_path: Path
) -> None:
    locked(mcli, tmp_path, civitai, hf)
    env = {k: v for k, v in mcli.env.items() if not k.startswith("ALIBABA_CLOUD_ACCESS_KEY")}
    profile = tmp_path / ".alibabacloud" / "credentials"  # HOME is tmp_path
    profile.parent.mkdir()
    profile.write_text(
        f"[team]\ntype = access_key\naccess_key_id = {ACCESS_KEY_ID}\n"
        f"access_key_secret = {ACCESS_KEY_SECRET}\n"
    )
    env["ALIBABA_CLOUD_PROFILE"] = "team"
    _, out, _ = run(Cli(mcli.cwd, env), "mirror", "push", "--mirror", MIRROR, "--json")
    assert json.loads(out)["ok"] and len(oss.keys(BUCKET)) == 4
