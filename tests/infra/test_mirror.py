"""`sdprov:mirror` under Pulumi mocks: the bucket is private, encrypted and versioned, the sync
function's role reads only the mirror prefix, the sync function reads it over the internal
endpoint, and a seed region replicates into it when configured."""

from __future__ import annotations

import json
from typing import Any

import pytest

from provision.errors import InfraConfigError
from provision.infra.config import Target
from provision.infra.mirror_config import MirrorConfig, SeedConfig, parse_mirror, transfer_type
from tests.infra.test_program import LOCK_A, Deployment, _config, _function, deploy

BUCKET = "alicloud:oss/bucket:Bucket"
ACL = "alicloud:oss/bucketAcl:BucketAcl"
BLOCK = "alicloud:oss/bucketPublicAccessBlock:BucketPublicAccessBlock"
SSE = "alicloud:oss/bucketServerSideEncryption:BucketServerSideEncryption"
VERSIONING = "alicloud:oss/bucketVersioning:BucketVersioning"
REPLICATION = "alicloud:oss/bucketReplication:BucketReplication"
POLICY = "alicloud:ram/policy:Policy"
ATTACH = "alicloud:ram/rolePolicyAttachment:RolePolicyAttachment"
PROVIDER = "pulumi:providers:alicloud"


def _deploy(mirror: MirrorConfig | None) -> Deployment:
    return deploy(lambda: _config(Target.FC, mirror=mirror), LOCK_A)


@pytest.fixture(scope="module")
def plain() -> Deployment:
    return _deploy(MirrorConfig(bucket="team-models-hz", prefix="sd"))


@pytest.fixture(scope="module")
def seeded() -> Deployment:
    seed = SeedConfig(region="ap-southeast-1", bucket="team-models-sg")
    return _deploy(MirrorConfig(bucket="team-models-hz", prefix="sd", seed=seed))


def _settings_of(d: Deployment, bucket: str) -> dict[str, dict[str, Any]]:
    return {
        typ: next(r.inputs for r in d.of(typ) if r.inputs.get("bucket") == bucket)
        for typ in (ACL, BLOCK, SSE, VERSIONING)
    }


def test_mirror_bucket_is_private_encrypted_and_versioned(plain: Deployment) -> None:
    bucket = plain.one(BUCKET)
    assert bucket.inputs["bucket"] == "team-models-hz"
    assert "acl" not in bucket.inputs  # deprecated on Bucket: the ACL is its own resource
    settings = _settings_of(plain, "team-models-hz")
    assert settings[ACL]["acl"] == "private"
    assert settings[BLOCK]["blockPublicAccess"] is True
    assert settings[SSE]["sseAlgorithm"] == "AES256"
    assert settings[VERSIONING]["status"] == "Enabled"
    assert plain.of(REPLICATION) == []


def test_sync_role_reads_only_the_mirror_prefix(plain: Deployment) -> None:
    policy = next(r for r in plain.of(POLICY) if r.name == "mirror-read")
    document = json.loads(policy.inputs["policyDocument"])
    assert document["Statement"] == [
        {"Effect": "Allow", "Action": ["oss:GetObject"],
         "Resource": ["acs:oss:*:*:team-models-hz/sd/*"]}
    ]  # fmt: skip
    attachment = next(r for r in plain.of(ATTACH) if r.name == "mirror-read-attachment")
    role = plain.one("alicloud:ram/role:Role")
    assert attachment.inputs["roleName"] == role.inputs["roleName"]
    assert attachment.inputs["policyName"] == policy.inputs["policyName"]


def test_sync_function_reads_the_mirror_over_the_internal_endpoint(plain: Deployment) -> None:
    env = _function(plain, "sync")["environmentVariables"]
    assert env["SDPROV_MIRROR"] == "oss://team-models-hz/sd"
    assert env["SDPROV_OSS_ENDPOINT"] == "https://oss-cn-hangzhou-internal.aliyuncs.com"
    assert env["OSS_REGION"] == "cn-hangzhou"
    for name in env:
        assert "ACCESS_KEY" not in name  # the role's STS credentials, never a stored key


def test_no_mirror_config_builds_no_mirror(fc_plain: Deployment) -> None:
    assert fc_plain.of(BUCKET) == [] and fc_plain.of(VERSIONING) == []
    assert "SDPROV_MIRROR" not in _function(fc_plain, "sync")["environmentVariables"]


@pytest.fixture(scope="module")
def fc_plain() -> Deployment:
    return _deploy(None)


def test_seed_region_replicates_into_the_mirror(seeded: Deployment) -> None:
    buckets = sorted(r.inputs["bucket"] for r in seeded.of(BUCKET))
    assert buckets == ["team-models-hz", "team-models-sg"]
    settings = _settings_of(seeded, "team-models-sg")  # replication needs versioning on both
    assert settings[VERSIONING]["status"] == "Enabled" and settings[ACL]["acl"] == "private"
    rule = seeded.one(REPLICATION).inputs
    assert rule["bucket"] == "team-models-sg" and rule["action"] == "PUT"
    assert rule["destination"] == {
        "bucket": "team-models-hz", "location": "oss-cn-hangzhou", "transferType": "oss_acc",
    }  # fmt: skip
    assert rule["prefixSet"] == {"prefixes": ["sd/"]}
    assert rule["historicalObjectReplication"] == "enabled"
    provider = seeded.one(PROVIDER, "mirror-seed-region")
    assert provider.inputs["region"] == "ap-southeast-1"


def test_adopted_bucket_is_configured_not_created() -> None:
    d = _deploy(MirrorConfig(bucket="existing-models", adopt=True))
    assert d.of(BUCKET) == []
    settings = _settings_of(d, "existing-models")
    assert settings[VERSIONING]["status"] == "Enabled" and settings[SSE]["sseAlgorithm"]
    policy = next(r for r in d.of(POLICY) if r.name == "mirror-read")
    assert "existing-models/*" in policy.inputs["policyDocument"]


def test_config_is_checked() -> None:
    cfg = parse_mirror({"bucket": "m-1", "prefix": "/sd/", "seed": {"region": "us-west-1",
                        "bucket": "seed-1", "adopt": True}}, "cn-shanghai")  # fmt: skip
    assert cfg.url == "oss://m-1/sd" and cfg.seed == SeedConfig(
        region="us-west-1", bucket="seed-1", adopt=True
    )
    for raw, message in (
        ("m-1", "must be an object"),
        ({"bucket": "Bad_Name"}, "bucket must be an OSS bucket name"),
        ({"bucket": "m-1", "prefx": "sd"}, "unknown key"),
        ({"bucket": "m-1", "prefix": "a/../b"}, "prefix must be a plain path"),
        ({"bucket": "m-1", "seed": {"region": "cn-shanghai", "bucket": "s-1"}}, "must differ"),
    ):
        with pytest.raises(InfraConfigError, match=message):
            parse_mirror(raw, "cn-shanghai")
    assert transfer_type("us-west-1", "cn-hangzhou") == "oss_acc"
    assert transfer_type("cn-beijing", "cn-hangzhou") == "internal"
    assert transfer_type("cn-hongkong", "ap-southeast-1") == "internal"


def test_stack_config_reads_the_mirror_object() -> None:
    import pulumi

    from provision.infra.config import read_config
    from tests.infra.test_config import BASE

    base = BASE | {"sdprov:zoneId": "cn-hangzhou-h"}
    try:
        pulumi.runtime.set_all_config(
            base | {"sdprov:mirror": json.dumps({"bucket": "team-models-hz", "prefix": "sd"})}
        )
        cfg = read_config(pulumi.Config("sdprov"), region="ap-southeast-1", stack="dev")
        assert cfg.mirror == MirrorConfig(bucket="team-models-hz", prefix="sd")
        pulumi.runtime.set_all_config(base)
        assert (
            read_config(pulumi.Config("sdprov"), region="ap-southeast-1", stack="dev").mirror
            is None
        )
    finally:
        pulumi.runtime.set_all_config({})
