"""Stack configuration: every `sdprov:` key read once into a frozen dataclass.

`Pulumi.yaml` documents each key; the stack files under `stacks/` give examples. Secrets are
read with `require_secret`, so they stay `Output`s marked secret from here to the resources.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pulumi

from provision.errors import InfraConfigError

NAMESPACE: Final = "sdprov"
MODELS_MOUNT_DIR: Final = "/mnt/auto"  # where FC (and our ECS cloud-init) mount the NAS
NAS_EXPORT_PATH: Final = "/sdprov"  # NAS directory mounted at /mnt/auto (FC creates it)
DATA_DIR: Final = f"{MODELS_MOUNT_DIR}/sd"  # WebUI --data-dir, as Alibaba's image lays it out
MODELS_ROOT: Final = f"{DATA_DIR}/models"  # sdprov's models root (design.md §3)
WEBUI_PORT: Final = 7860

# Alibaba's public SD WebUI image for FC (devsapp/fc-stable-diffuson, A1111 v1.6.0).
DEFAULT_IMAGE_TEMPLATE: Final = (
    "registry.{region}.aliyuncs.com/aliyun-fc/fc-stable-diffusion:sd1.5-v12"
)


class Target(enum.StrEnum):
    FC = "fc"
    ECS = "ecs"


class TriggerAuth(enum.StrEnum):
    """FC HTTP trigger `authType`. `anonymous` still has WebUI's own password in front."""

    ANONYMOUS = "anonymous"
    FUNCTION = "function"


NAS_STORAGE_TYPES: Final = ("Performance", "Capacity", "Premium")
FC_GPU_TYPES: Final = ("fc.gpu.tesla.1", "fc.gpu.ampere.1", "fc.gpu.ada.1")


@dataclass(frozen=True, slots=True, kw_only=True)
class ExistingNetwork:
    vpc_id: str
    vswitch_id: str
    security_group_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StackConfig:
    """Everything `__main__.py` needs, validated. Secrets are `Output[str]` marked secret."""

    name_prefix: str
    region: str
    target: Target
    manifest: Path
    zone_id: str | None
    vpc_cidr: str
    vswitch_cidr: str
    existing_network: ExistingNetwork | None
    nas_storage_type: str
    # FC GPU function
    image: str
    gpu_type: str
    gpu_memory_mb: int
    cpu: float
    memory_mb: int
    provisioned_instances: int
    trigger_auth: TriggerAuth
    public_url: bool
    # ECS
    ecs_instance_type: str
    ecs_image_id: str | None
    allowed_cidr: str | None
    webui_version: str
    # sync
    sync_timeout_seconds: int
    fc_endpoint: str | None
    lock_bucket: str | None
    # WebUI credentials and model-source tokens
    webui_user: str
    webui_password: pulumi.Output[str]
    civitai_token: pulumi.Output[str]
    hf_token: pulumi.Output[str]

    @property
    def lock_path(self) -> Path:
        return self.manifest.with_name(f"{self.manifest.stem}.lock.json")


def _choice(value: str, allowed: tuple[str, ...], key: str) -> str:
    if value not in allowed:
        raise InfraConfigError(
            f"{NAMESPACE}:{key} is {value!r}; allowed: {', '.join(allowed)}",
            hint=f"pulumi config set {NAMESPACE}:{key} {allowed[0]}",
        )
    return value


def read_config(
    config: pulumi.Config | None = None,
    *,
    region: str | None = None,
    stack: str | None = None,
) -> StackConfig:
    """Read and validate every key. Raise `InfraConfigError` naming the key at fault."""
    cfg = config or pulumi.Config(NAMESPACE)
    stack_name = stack or pulumi.get_stack()
    region_name = region or pulumi.Config("alicloud").get("region") or ""
    if not region_name:
        raise InfraConfigError(
            "alicloud:region is not set", hint="pulumi config set alicloud:region cn-hangzhou"
        )

    target = Target(_choice(cfg.get("target") or "fc", tuple(t.value for t in Target), "target"))
    existing_ids = [cfg.get(k) for k in ("vpcId", "vswitchId", "securityGroupId")]
    existing: ExistingNetwork | None = None
    if any(existing_ids):
        if not all(existing_ids):
            raise InfraConfigError(
                f"{NAMESPACE}:vpcId, vswitchId and securityGroupId go together; "
                "set all three to reuse a network, or none to create one"
            )
        vpc_id, vswitch_id, sg_id = (str(v) for v in existing_ids)
        existing = ExistingNetwork(vpc_id=vpc_id, vswitch_id=vswitch_id, security_group_id=sg_id)
    zone_id = cfg.get("zoneId")
    if existing is None and not zone_id:
        raise InfraConfigError(
            f"{NAMESPACE}:zoneId is required when sdprov creates the network",
            hint=f"pulumi config set {NAMESPACE}:zoneId {region_name}-h "
            "(a zone where FC GPU, NAS and your ECS type are sold)",
        )

    ecs_image_id = cfg.get("ecsImageId")
    if target is Target.ECS and not ecs_image_id:
        raise InfraConfigError(
            f"{NAMESPACE}:ecsImageId is required for target ecs",
            hint="use an Alibaba Cloud GPU image with the NVIDIA driver preinstalled",
        )
    gpu_memory_mb = cfg.get_int("gpuMemoryMB") or 16384
    if gpu_memory_mb % 1024:
        raise InfraConfigError(f"{NAMESPACE}:gpuMemoryMB must be a multiple of 1024")
    public_url = cfg.get_bool("publicUrl")
    provisioned = cfg.get_int("provisionedInstances") or 0
    if provisioned < 0:
        raise InfraConfigError(f"{NAMESPACE}:provisionedInstances must be 0 or more")

    return StackConfig(
        name_prefix=cfg.get("namePrefix") or f"sdprov-{stack_name}",
        region=region_name,
        target=target,
        manifest=Path(cfg.get("manifest") or "manifests/models.yaml"),
        zone_id=zone_id,
        vpc_cidr=cfg.get("vpcCidr") or "10.42.0.0/16",
        vswitch_cidr=cfg.get("vswitchCidr") or "10.42.1.0/24",
        existing_network=existing,
        nas_storage_type=_choice(
            cfg.get("nasStorageType") or "Performance", NAS_STORAGE_TYPES, "nasStorageType"
        ),
        image=cfg.get("image") or DEFAULT_IMAGE_TEMPLATE.format(region=region_name),
        gpu_type=_choice(cfg.get("gpuType") or FC_GPU_TYPES[0], FC_GPU_TYPES, "gpuType"),
        gpu_memory_mb=gpu_memory_mb,
        cpu=cfg.get_float("cpu") or 8.0,
        memory_mb=cfg.get_int("memoryMB") or 32768,
        provisioned_instances=provisioned,
        trigger_auth=TriggerAuth(
            _choice(
                cfg.get("triggerAuth") or TriggerAuth.ANONYMOUS.value,
                tuple(a.value for a in TriggerAuth),
                "triggerAuth",
            )
        ),
        public_url=True if public_url is None else public_url,
        ecs_instance_type=cfg.get("ecsInstanceType") or "ecs.gn7i-c8g1.2xlarge",
        ecs_image_id=ecs_image_id,
        allowed_cidr=cfg.get("allowedCidr"),
        webui_version=cfg.get("webuiVersion") or "v1.6.0",
        sync_timeout_seconds=cfg.get_int("syncTimeoutSeconds") or 3 * 3600,
        fc_endpoint=cfg.get("fcEndpoint"),
        lock_bucket=cfg.get("lockBucket"),
        webui_user=cfg.get("webuiUser") or "admin",
        webui_password=cfg.require_secret("webuiPassword"),
        civitai_token=cfg.require_secret("civitaiToken"),
        hf_token=cfg.require_secret("hfToken"),
    )
