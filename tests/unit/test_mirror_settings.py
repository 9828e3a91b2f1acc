"""Mirror addressing, endpoint/region and the credential chain (design.md §8)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provision.errors import UsageError
from provision.mirror.credentials import default_access_key
from provision.mirror.location import MirrorLocation
from provision.mirror.store import OssSettings

SHA = "ab" + "0" * 62
CHAIN_VARS = (
    "ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALIBABA_CLOUD_SECURITY_TOKEN",
    "OSS_ACCESS_KEY_ID", "OSS_ACCESS_KEY_SECRET", "OSS_SESSION_TOKEN", "ALIBABA_CLOUD_PROFILE",
    "ALIBABA_CLOUD_CREDENTIALS_FILE", "SDPROV_OSS_ENDPOINT", "SDPROV_OSS_INTERNAL", "OSS_REGION",
    "ALIBABA_CLOUD_REGION_ID",
)  # fmt: skip


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in CHAIN_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))


def test_keys_are_content_addressed_under_the_prefix() -> None:
    loc = MirrorLocation.parse("oss://team-models/sd/v1/")
    assert loc == MirrorLocation("team-models", "sd/v1") and str(loc) == "oss://team-models/sd/v1"
    assert loc.object_key(SHA) == f"sd/v1/sha256/ab/{SHA}"
    assert MirrorLocation.parse("oss://team-models").object_key(SHA) == f"sha256/ab/{SHA}"
    assert loc.card_key(SHA, "model.civitai.info") == f"sd/v1/cards/{SHA}/model.civitai.info"
    for bad in ("s3://x/y", "oss://UPPER", "oss://ab", "oss://team-models/a/../b", "oss://t_m"):
        with pytest.raises(UsageError):
            MirrorLocation.parse(bad)
    with pytest.raises(UsageError):
        loc.card_key(SHA, "../escape")


def test_endpoint_and_region(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UsageError, match="OSS_REGION"):
        OssSettings.from_env()
    monkeypatch.setenv("ALIBABA_CLOUD_REGION_ID", "cn-shanghai")
    assert OssSettings.from_env().endpoint == "https://oss-cn-shanghai.aliyuncs.com"
    monkeypatch.setenv("SDPROV_OSS_INTERNAL", "true")
    assert OssSettings.from_env().endpoint == "https://oss-cn-shanghai-internal.aliyuncs.com"
    monkeypatch.setenv("OSS_REGION", "cn-beijing")  # the OSS SDK's own name wins
    assert OssSettings.from_env().region == "cn-beijing"
    monkeypatch.delenv("OSS_REGION")
    monkeypatch.delenv("ALIBABA_CLOUD_REGION_ID")
    monkeypatch.setenv("SDPROV_OSS_ENDPOINT", "oss-ap-southeast-1-internal.aliyuncs.com")
    settings = OssSettings.from_env()  # the region is read off an Alibaba endpoint
    assert settings == OssSettings(
        endpoint="https://oss-ap-southeast-1-internal.aliyuncs.com", region="ap-southeast-1"
    )
    monkeypatch.setenv("SDPROV_OSS_ENDPOINT", "http://127.0.0.1:9000")
    with pytest.raises(UsageError, match="no region"):
        OssSettings.from_env()


def test_credential_chain_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no Alibaba Cloud credentials"):
        default_access_key()
    cli = tmp_path / ".aliyun" / "config.json"
    cli.parent.mkdir()
    cli.write_text(json.dumps({"current": "work", "profiles": [
        {"name": "work", "mode": "StsToken", "access_key_id": "cli-id",
         "access_key_secret": "cli-secret", "sts_token": "cli-token"}]}))  # fmt: skip
    key = default_access_key()
    assert (key.key_id, key.secret, key.token) == ("cli-id", "cli-secret", "cli-token")
    assert "cli-secret" not in repr(key) and "cli-token" not in repr(key)

    ini = tmp_path / ".alibabacloud" / "credentials"
    ini.parent.mkdir()
    ini.write_text("[default]\ntype = access_key\naccess_key_id = ini-id\naccess_key_secret = s\n")
    assert default_access_key().key_id == "ini-id"

    monkeypatch.setenv("OSS_ACCESS_KEY_ID", "oss-id")
    monkeypatch.setenv("OSS_ACCESS_KEY_SECRET", "oss-secret")
    monkeypatch.setenv("OSS_SESSION_TOKEN", "oss-token")
    assert (default_access_key().key_id, default_access_key().token) == ("oss-id", "oss-token")

    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "ali-id")
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ali-secret")
    monkeypatch.setenv("ALIBABA_CLOUD_SECURITY_TOKEN", "sts")  # what FC injects for a role
    key = default_access_key()
    assert (key.key_id, key.secret, key.token) == ("ali-id", "ali-secret", "sts")


def test_unsupported_profile_types_and_broken_files(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ini = tmp_path / "creds.ini"
    ini.write_text("[default]\ntype = ecs_ram_role\nrole_name = x\n")
    monkeypatch.setenv("ALIBABA_CLOUD_CREDENTIALS_FILE", str(ini))
    with pytest.raises(UsageError, match="no Alibaba Cloud credentials"):
        default_access_key()
    ini.write_text("not an ini file [")
    with pytest.raises(UsageError, match="not a readable credentials file"):
        default_access_key()
