"""The Pulumi program under `set_mocks`, over the real pulumi_alicloud classes.

Each deployment builds the whole stack (`build_stack`) once per module and records every
registration with its wire form (secrets still marked), so the tests assert on exactly what the
engine would receive.
"""

from __future__ import annotations

import ast
import json
import warnings
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pulumi
import pytest

from tests.infra.mocks import (
    ACCOUNT_ID,
    MOUNT_DOMAIN,
    Account,
    Recorder,
    RecordingMonitor,
    Registered,
    clear_text_paths,
    import_alicloud,
    run_program,
)

import_alicloud()
pulumi.runtime.set_mocks(Recorder(), preview=False)  # before the components are imported

from provision.infra.config import (  # noqa: E402
    EcsEgress,
    ExistingNetwork,
    StackConfig,
    Target,
    TriggerAuth,
    Ui,
)
from provision.infra.stack import build_stack  # noqa: E402
from provision.kinds import Family, Kind  # noqa: E402
from provision.lock.lockfile import LockEntry, Lockfile  # noqa: E402
from provision.sources.locked import CivitaiSource  # noqa: E402

PASSWORD = "webui-pass-Zq83"
CIVITAI = "civitai-tok-Xy71"
HF = "hf_tok_Ab55"
CODE = "UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA=="  # an empty zip, base64
REGISTRY_PW = "acr-pass-Lm42"
IMAGE = "registry.cn-hangzhou.aliyuncs.com/team/sdprov-a1111@sha256:" + "e" * 64

FN = "alicloud:fc/v3Function:V3Function"
SYNC_RUN = "pulumi-python:dynamic:Resource"


def _entry(path: str, kind: Kind, sha: str) -> LockEntry:
    return LockEntry(
        name=Path(path).stem, kind=kind, path=path, size=1234, sha256=sha * 64,
        base=Family.SD1, format="safetensors",
        source=CivitaiSource(model_id=1, version_id=2, file_id=3, air="urn:air:sd1:lora:civitai:1@2"),
        entry_digest="d" * 64,
    )  # fmt: skip


LOCK_A = Lockfile(
    manifest_sha256="1" * 64,
    models=(
        _entry("Stable-diffusion/base.safetensors", Kind.CHECKPOINT, "a"),
        _entry("Lora/detail.safetensors", Kind.LORA, "b"),
    ),
)
LOCK_B = Lockfile(
    manifest_sha256="2" * 64,
    models=(*LOCK_A.models, _entry("VAE/vae.safetensors", Kind.VAE, "c")),
)


def _config(target: Target, **changes: Any) -> StackConfig:
    cfg = StackConfig(
        name_prefix="sdprov-test", region="cn-hangzhou", target=target,
        manifest=Path("manifests/models.yaml"), zone_id="cn-hangzhou-h",
        vpc_cidr="10.42.0.0/16", vswitch_cidr="10.42.1.0/24", existing_network=None,
        nas_storage_type="Performance", image=IMAGE, alibaba_image=False, ui=Ui.A1111,
        domain=None, gpu_type="fc.gpu.ada.1", gpu_memory_mb=49152, cpu=8.0, memory_mb=32768,
        provisioned_instances=1, max_instances=1, trigger_auth=TriggerAuth.ANONYMOUS,
        public_url=True, ready_timeout_seconds=1800,
        ecs_instance_type="ecs.gn7i-c8g1.2xlarge", ecs_image_id="ubuntu_22_04_gpu",
        ecs_egress=EcsEgress.PUBLIC_IP, allowed_cidr=None, sync_timeout_seconds=600, prune=False,
        sync_shards=1,
        registry_user=None, registry_password=pulumi.Output.secret(""),
        fc_endpoint=None, lock_bucket=None, credentials_profile=None, webui_user="admin",
        webui_password=pulumi.Output.secret(PASSWORD),
        civitai_token=pulumi.Output.secret(CIVITAI), hf_token=pulumi.Output.secret(HF),
    )  # fmt: skip
    return replace(cfg, **changes)


@dataclass
class Deployment:
    resources: list[Registered]
    outputs: dict[str, Any]
    secret_outputs: dict[str, bool]

    def of(self, typ: str) -> list[Registered]:
        return [r for r in self.resources if r.typ == typ]

    def one(self, typ: str, name_suffix: str = "") -> Registered:
        found = [r for r in self.of(typ) if r.name.endswith(name_suffix)]
        assert len(found) == 1, (typ, name_suffix, [r.name for r in found])
        return found[0]

    def types(self) -> Counter[str]:
        return Counter(r.typ for r in self.resources)


def deploy(make_config: Any, lock: Lockfile, account: Account | None = None) -> Deployment:
    recorder = Recorder(account=account or Account())
    pulumi.runtime.set_mocks(recorder, monitor=RecordingMonitor(recorder), preview=False)
    outputs: dict[str, Any] = {}
    secret: dict[str, bool] = {}

    def run() -> pulumi.Output[Any]:
        with warnings.catch_warnings():
            warnings.simplefilter("error", DeprecationWarning)  # no deprecated argument
            out = build_stack(make_config(), lock, sync_code_b64=CODE)
        exported: dict[str, pulumi.Output[Any]] = {
            "webui_url": out.webui_url,
            "trigger_url": out.trigger_url,
            "domain_cname_target": out.domain_cname_target,
            "nas_file_system_id": out.nas_file_system_id,
            "nas_mount_target": out.nas_mount_target,
            "lock_digest": out.lock_digest,
            "sync_task_id": out.sync_task_id,
        }

        async def secrets() -> dict[str, bool]:
            return {k: await v.is_secret() for k, v in exported.items()}

        flags: pulumi.Output[dict[str, bool]] = pulumi.Output.from_input(secrets())
        return pulumi.Output.all(flags, pulumi.Output.all(**exported)).apply(
            lambda v: (secret.update(v[0]), outputs.update(v[1], model_count=out.model_count))
        )

    run_program(run)
    return Deployment(resources=recorder.resources, outputs=outputs, secret_outputs=secret)


@pytest.fixture(scope="module")
def fc() -> Deployment:
    return deploy(lambda: _config(Target.FC), LOCK_A)


@pytest.fixture(scope="module")
def fc_lock_b() -> Deployment:
    return deploy(lambda: _config(Target.FC), LOCK_B)


@pytest.fixture(scope="module")
def ecs() -> Deployment:
    return deploy(lambda: _config(Target.ECS, allowed_cidr="198.51.100.0/24"), LOCK_A)


def _function(d: Deployment, suffix: str) -> dict[str, Any]:
    return d.one(FN, f"{suffix}-function").inputs


# --- resource graph -----------------------------------------------------------------------


def test_fc_resource_graph(fc: Deployment) -> None:
    assert fc.types() == Counter(
        {
            "sdprov:infra:Network": 1, "alicloud:vpc/network:Network": 1,
            "alicloud:vpc/switch:Switch": 1, "alicloud:ecs/securityGroup:SecurityGroup": 1,
            "sdprov:infra:LogStore": 1, "alicloud:log/project:Project": 1,
            "alicloud:log/store:Store": 1,
            "sdprov:infra:FunctionRole": 1, "alicloud:ram/role:Role": 1,
            "alicloud:ram/policy:Policy": 1,
            "alicloud:ram/rolePolicyAttachment:RolePolicyAttachment": 1,
            "sdprov:infra:ModelStore": 1, "alicloud:nas/fileSystem:FileSystem": 1,
            "alicloud:nas/accessGroup:AccessGroup": 1, "alicloud:nas/accessRule:AccessRule": 1,
            "alicloud:nas/mountTarget:MountTarget": 1,
            "sdprov:infra:ModelSync": 1, FN: 2,
            "alicloud:fc/v3AsyncInvokeConfig:V3AsyncInvokeConfig": 1,
            SYNC_RUN: 2,  # the sync run, and the wait until the UI serves
            "sdprov:infra:WebuiFunction": 1, "alicloud:fc/v3Trigger:V3Trigger": 1,
            "alicloud:fc/v3ProvisionConfig:V3ProvisionConfig": 1,
            "alicloud:fc/v3ConcurrencyConfig:V3ConcurrencyConfig": 1,
        }
    )  # fmt: skip
    components = {r.name: r for r in fc.resources if r.typ.startswith("sdprov:infra:")}
    for r in fc.resources:  # every cloud resource is the child of one of our components
        if not r.typ.startswith("sdprov:infra:"):
            assert any(r.parent.endswith(f"::{n}") for n in components), (r.typ, r.parent)


def test_ecs_resource_graph(ecs: Deployment) -> None:
    types = ecs.types()
    assert types["alicloud:ecs/instance:Instance"] == 1
    assert types["alicloud:ecs/securityGroupRule:SecurityGroupRule"] == 1
    assert types[FN] == 1  # only the sync function
    assert types["alicloud:fc/v3Trigger:V3Trigger"] == 0
    assert types["sdprov:infra:WebuiFunction"] == 0
    assert types["alicloud:nas/mountTarget:MountTarget"] == 1
    assert types[SYNC_RUN] == 1  # ECS: no FC UI to wait for


# --- WebUI function -----------------------------------------------------------------------


def test_gpu_function(fc: Deployment) -> None:
    webui = _function(fc, "webui")
    assert webui["runtime"] == "custom-container"
    assert webui["gpuConfig"] == {"gpuType": "fc.gpu.ada.1", "gpuMemorySize": 49152}
    assert webui["customContainerConfig"]["port"] == 7860
    assert webui["customContainerConfig"]["image"] == IMAGE  # digest-pinned
    health = webui["customContainerConfig"]["healthCheckConfig"]
    assert health["httpGetUrl"] == "/internal/ping"
    # one instance: cookie affinity keeps the Gradio login, the cap stops a second GPU
    assert webui["sessionAffinity"] == "GENERATED_COOKIE"
    assert json.loads(webui["sessionAffinityConfig"])["sessionTTLInSeconds"] == 21600
    cap = fc.one("alicloud:fc/v3ConcurrencyConfig:V3ConcurrencyConfig").inputs
    assert cap == {"functionName": "sdprov-test-webui", "reservedConcurrency": 1}
    assert (webui["cpu"], webui["memorySize"]) == (8, 32768)
    provision = fc.one("alicloud:fc/v3ProvisionConfig:V3ProvisionConfig").inputs
    assert provision["target"] == 1 and provision["functionName"] == "sdprov-test-webui"


def test_webui_login_and_url(fc: Deployment) -> None:
    env = _function(fc, "webui")["environmentVariables"]
    assert env["SDPROV_WEBUI_AUTH"] == f"admin:{PASSWORD}"  # the image's entrypoint takes it
    assert "EXTRA_ARGS" not in env  # flags live in images/<ui>/entrypoint.sh
    trigger = fc.one("alicloud:fc/v3Trigger:V3Trigger").inputs
    config = json.loads(trigger["triggerConfig"])
    assert trigger["triggerType"] == "http" and trigger["qualifier"] == "LATEST"
    # anonymous at the FC edge, so a browser can reach the WebUI login; never without it
    assert config["authType"] == "anonymous" and config["disableURLInternet"] is False
    assert fc.outputs["webui_url"] == "https://sdprov-test-webui.fcapp.run"
    ready = fc.one(SYNC_RUN, "webui-ready").inputs
    assert ready["health_url"] == "https://sdprov-test-webui.fcapp.run/internal/ping"
    assert ready["image"] == IMAGE and ready["lock_digest"] == LOCK_A.digest


def test_custom_domain_routes_to_the_ui() -> None:
    d = deploy(lambda: _config(Target.FC, domain="sd.example.com"), LOCK_A)
    domain = d.one("alicloud:fc/v3CustomDomain:V3CustomDomain").inputs
    assert domain["customDomainName"] == "sd.example.com" and domain["protocol"] == "HTTP"
    (route,) = domain["routeConfig"]["routes"]
    assert (route["functionName"], route["path"], route["qualifier"]) == (
        "sdprov-test-webui", "/*", "LATEST",
    )  # fmt: skip
    assert d.outputs["webui_url"] == "http://sd.example.com"
    assert d.outputs["domain_cname_target"] == f"{ACCOUNT_ID}.cn-hangzhou.fc.aliyuncs.com"
    assert d.outputs["trigger_url"] == "https://sdprov-test-webui.fcapp.run"


def test_comfyui_uses_its_health_route_and_alibaba_image_is_opt_in() -> None:
    d = deploy(lambda: _config(Target.FC, ui=Ui.COMFYUI), LOCK_A)
    webui = _function(d, "webui")
    assert webui["customContainerConfig"]["healthCheckConfig"]["httpGetUrl"] == "/sdprov/health"
    old = deploy(lambda: _config(Target.FC, alibaba_image=True), LOCK_A)
    env = _function(old, "webui")["environmentVariables"]
    assert f"--gradio-auth admin:{PASSWORD}" in env["EXTRA_ARGS"]
    assert "--ckpt-dir /mnt/auto/sd/models/Stable-diffusion" in env["EXTRA_ARGS"]


def test_trigger_signed_and_private() -> None:
    d = deploy(
        lambda: _config(Target.FC, trigger_auth=TriggerAuth.FUNCTION, public_url=False,
                        provisioned_instances=0),
        LOCK_A,
    )  # fmt: skip
    config = json.loads(d.one("alicloud:fc/v3Trigger:V3Trigger").inputs["triggerConfig"])
    assert config["authType"] == "function" and config["disableURLInternet"] is True
    assert d.outputs["webui_url"].endswith(".internal")
    assert not d.of("alicloud:fc/v3ProvisionConfig:V3ProvisionConfig")


# --- NAS and VPC wiring -------------------------------------------------------------------


def test_nas_mounted_at_mnt_auto_in_both_functions(fc: Deployment) -> None:
    for suffix in ("webui", "sync"):
        mounts = _function(fc, suffix)["nasConfig"]["mountPoints"]
        assert mounts == [
            {"serverAddr": f"{MOUNT_DOMAIN}:/sdprov", "mountDir": "/mnt/auto", "enableTls": False}
        ]
    assert fc.outputs["nas_mount_target"] == MOUNT_DOMAIN
    fs = fc.one("alicloud:nas/fileSystem:FileSystem").inputs
    assert (fs["protocolType"], fs["fileSystemType"], fs["storageType"]) == (
        "NFS", "standard", "Performance",
    )  # fmt: skip


def test_vpc_wiring(fc: Deployment) -> None:
    expected = {
        "vpcId": "network-vpc_id",
        "vswitchIds": ["network-vswitch_id"],
        "securityGroupId": "network-sg_id",
    }
    for suffix in ("webui", "sync"):
        assert _function(fc, suffix)["vpcConfig"] == expected
    mount = fc.one("alicloud:nas/mountTarget:MountTarget").inputs
    assert (mount["vpcId"], mount["vswitchId"]) == ("network-vpc_id", "network-vswitch_id")
    assert mount["fileSystemId"] == "models-fs_id"
    rule = fc.one("alicloud:nas/accessRule:AccessRule").inputs
    assert rule["sourceCidrIp"] == "10.42.1.0/24" and rule["rwAccessType"] == "RDWR"
    assert fc.one("alicloud:vpc/switch:Switch").inputs["zoneId"] == "cn-hangzhou-h"
    assert fc.one("alicloud:nas/fileSystem:FileSystem").inputs["zoneId"] == "cn-hangzhou-h"


def test_existing_network_is_used_not_created() -> None:
    existing = ExistingNetwork(vpc_id="vpc-existing", vswitch_id="vsw-existing",
                               security_group_id="sg-existing")  # fmt: skip
    d = deploy(lambda: _config(Target.FC, existing_network=existing, zone_id=None), LOCK_A)
    assert not d.of("alicloud:vpc/network:Network") and not d.of("alicloud:vpc/switch:Switch")
    assert _function(d, "sync")["vpcConfig"] == {
        "vpcId": "vpc-existing", "vswitchIds": ["vsw-existing"], "securityGroupId": "sg-existing"
    }  # fmt: skip
    assert d.one("alicloud:nas/accessRule:AccessRule").inputs["sourceCidrIp"] == "172.16.8.0/24"
    assert d.one("alicloud:nas/fileSystem:FileSystem").inputs["zoneId"] == "cn-hangzhou-k"


# --- model sync ---------------------------------------------------------------------------


def test_sync_function_and_invocation(fc: Deployment) -> None:
    sync = _function(fc, "sync")
    assert sync["runtime"] == "python3.12" and sync["handler"] == "index.handler"
    assert "gpuConfig" not in sync
    assert sync["code"] == {"zipFile": CODE}
    assert sync["environmentVariables"]["SDPROV_MODELS_ROOT"] == "/mnt/auto/sd/models"
    async_cfg = fc.one("alicloud:fc/v3AsyncInvokeConfig:V3AsyncInvokeConfig").inputs
    assert async_cfg["asyncTask"] is True and async_cfg["maxAsyncRetryAttempts"] == 0
    assert async_cfg["functionName"] == "sdprov-test-sync"
    run = fc.one(SYNC_RUN, "sync-run").inputs
    assert run["function_name"] == "sdprov-test-sync"
    assert run["lock_digest"] == LOCK_A.digest and run["model_count"] == 2
    assert json.loads(run["payload"]) == json.loads(LOCK_A.render())
    assert run["shards"] == 1  # sdprov:syncShards default: one task, as before
    # the WebUI's environment carries the digest the sync reported: instances roll after it
    assert _function(fc, "webui")["environmentVariables"]["SDPROV_LOCK_DIGEST"] == LOCK_A.digest
    assert fc.outputs["lock_digest"] == LOCK_A.digest and fc.outputs["model_count"] == 2


def test_sync_shards_reach_the_sync_run() -> None:
    sharded = deploy(lambda: _config(Target.FC, sync_shards=4), LOCK_A)
    run = sharded.one(SYNC_RUN, "sync-run").inputs
    assert run["shards"] == 4 and run["lock_digest"] == LOCK_A.digest


def test_ecs_instance_mount_and_reachability(ecs: Deployment) -> None:
    instance = ecs.one("alicloud:ecs/instance:Instance").inputs
    user_data = instance["userData"]
    assert "vers=4,minorversion=0,rsize=1048576,wsize=1048576,hard,timeo=600,retrans=2," \
        "noresvport" in user_data  # fmt: skip
    assert f"{MOUNT_DOMAIN}:/sdprov /mnt/auto nfs" in user_data
    # the same container as on FC, with the GPU and the NAS
    assert f"--gpus all -p 7860:7860 -v /mnt/auto:/mnt/auto --env-file /etc/sdprov/ui.env {IMAGE}" \
        in user_data  # fmt: skip
    assert "nvidia-container-toolkit" in user_data and "ubuntu-drivers install" in user_data
    assert f"SDPROV_WEBUI_AUTH=admin:{PASSWORD}" in user_data  # only in the 0600 env file
    assert user_data.count(PASSWORD) == 1
    assert instance["internetMaxBandwidthOut"] == 10
    assert instance["vswitchId"] == "network-vswitch_id"
    assert instance["securityGroups"] == ["network-sg_id"]
    rule = ecs.one("alicloud:ecs/securityGroupRule:SecurityGroupRule").inputs
    assert (rule["cidrIp"], rule["portRange"], rule["type"]) == (
        "198.51.100.0/24", "7860/7860", "ingress",
    )  # fmt: skip
    sync_env = _function(ecs, "sync")["environmentVariables"]
    assert sync_env["SDPROV_WEBUI_URLS"] == "http://10.42.1.7:7860"
    # the sync function (same group) reaches it without any ingress rule for the VPC
    group = ecs.one("alicloud:ecs/securityGroup:SecurityGroup").inputs
    assert group["innerAccessPolicy"] == "Accept"
    assert sync_env["SDPROV_WEBUI_AUTH"] == f"admin:{PASSWORD}"
    assert ecs.outputs["webui_url"] == "http://203.0.113.7:7860"


def test_ecs_egress_without_ingress_by_default() -> None:
    d = deploy(lambda: _config(Target.ECS), LOCK_A)
    assert not d.of("alicloud:ecs/securityGroupRule:SecurityGroupRule")  # nothing inbound
    assert d.one("alicloud:ecs/instance:Instance").inputs["internetMaxBandwidthOut"] == 10
    assert d.outputs["webui_url"] == "http://10.42.1.7:7860"


def test_ecs_logs_in_to_a_private_registry_from_a_file() -> None:
    d = deploy(
        lambda: _config(Target.ECS, registry_user="team@123",
                        registry_password=pulumi.Output.secret(REGISTRY_PW)),
        LOCK_A,
    )  # fmt: skip
    instance = d.one("alicloud:ecs/instance:Instance")
    user_data = instance.inputs["userData"]
    assert "docker login -u team@123 --password-stdin registry.cn-hangzhou.aliyuncs.com " \
        "< /etc/sdprov/registry.pw; rm -f /etc/sdprov/registry.pw" in user_data  # fmt: skip
    assert user_data.count(REGISTRY_PW) == 1  # in the 0600 file only, never a command line
    assert clear_text_paths(instance.wire, REGISTRY_PW) == []
    assert REGISTRY_PW not in json.dumps(d.outputs)


def test_ecs_egress_through_nat() -> None:
    d = deploy(lambda: _config(Target.ECS, ecs_egress=EcsEgress.NAT), LOCK_A)
    assert d.one("alicloud:ecs/instance:Instance").inputs["internetMaxBandwidthOut"] == 0
    nat = d.one("alicloud:vpc/natGateway:NatGateway").inputs
    assert nat["natType"] == "Enhanced" and nat["vswitchId"] == "network-vswitch_id"
    snat = d.one("alicloud:vpc/snatEntry:SnatEntry").inputs
    assert snat["sourceVswitchId"] == "network-vswitch_id"
    assert d.one("alicloud:ecs/eipAssociation:EipAssociation").inputs["instanceType"] == "Nat"


# --- secrets ------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["fc", "ecs"])
def test_secrets_stay_secret(target: str, request: pytest.FixtureRequest) -> None:
    d: Deployment = request.getfixturevalue(target)
    for r in d.resources:
        for secret in (PASSWORD, CIVITAI, HF):
            assert clear_text_paths(r.wire, secret) == [], (r.typ, r.name)
    for secret in (PASSWORD, CIVITAI, HF):
        assert secret not in json.dumps(d.outputs)
    assert not any(d.secret_outputs.values())  # outputs carry nothing secret to hide
    for fn in d.of(FN):  # the whole environment is secret, not only the values we know of
        assert "4dabf18193072939515e22adb298388d" in fn.wire["environmentVariables"]
    # and the secrets did reach the resources (inside the secret wrapper)
    sync_env = _function(d, "sync")["environmentVariables"]
    assert (sync_env["CIVITAI_TOKEN"], sync_env["HF_TOKEN"]) == (CIVITAI, HF)


# --- lock changes -------------------------------------------------------------------------


def test_a_new_lock_changes_only_the_sync_and_the_digest(
    fc: Deployment, fc_lock_b: Deployment
) -> None:
    def by_name(d: Deployment) -> dict[str, Any]:
        return {r.name: r.inputs for r in d.resources}

    a, b = by_name(fc), by_name(fc_lock_b)
    assert a.keys() == b.keys()
    changed = {name for name in a if a[name] != b[name]}
    assert changed == {"sync-run", "webui-function", "webui-ready"}
    assert {k for k in a["sync-run"] if a["sync-run"][k] != b["sync-run"][k]} == {
        "lock_digest", "model_count", "payload",
    }  # fmt: skip
    env_a = a["webui-function"]["environmentVariables"]
    env_b = b["webui-function"]["environmentVariables"]
    assert {k for k in env_a if env_a[k] != env_b[k]} == {"SDPROV_LOCK_DIGEST"}
    assert {k for k in a["webui-function"] if a["webui-function"][k] != b["webui-function"][k]} \
        == {"environmentVariables"}  # fmt: skip
    assert (fc.outputs["lock_digest"], fc_lock_b.outputs["lock_digest"]) == (
        LOCK_A.digest, LOCK_B.digest,
    )  # fmt: skip


def test_deprecated_arguments_fail_these_tests() -> None:
    """The net under every deployment above. pulumi_alicloud warns about a deprecated argument
    only in its `*Args` classes (not for keywords passed to the resource), so every resource in
    provision/infra is built from an `*Args` object, and a deprecated argument raises."""
    import pulumi_alicloud as alicloud

    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        with pytest.raises(DeprecationWarning, match="availability_zone"):
            alicloud.vpc.SwitchArgs(vpc_id="v", cidr_block="10.0.0.0/24", availability_zone="z")
        with pytest.raises(DeprecationWarning, match="role_name"):
            alicloud.ecs.InstanceArgs(role_name="r")


def test_every_resource_is_built_from_its_args_class() -> None:
    infra = Path(__file__).resolve().parents[2] / "provision" / "infra"
    offenders = []
    for source in sorted(infra.glob("*.py")):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            chain = ast.unparse(node.func)
            name = node.func.attr
            if not chain.startswith("alicloud.") or not name[:1].isupper():
                continue
            if name.endswith("Args"):
                continue
            second = node.args[1] if len(node.args) > 1 else None
            # `*InitArgs` where pulumi_alicloud gave `*Args` to a nested type (BucketVersioning)
            ok = isinstance(second, ast.Call) and ast.unparse(second.func) in (
                f"{chain}Args",
                f"{chain}InitArgs",
            )
            if not ok or (node.keywords and {k.arg for k in node.keywords} != {"opts"}):
                offenders.append(f"{source.name}:{node.lineno} {chain}")
    assert offenders == []
