"""Stack configuration: every `sdprov:` key read once into a frozen dataclass.

`Pulumi.yaml` documents each key; the stack files under `stacks/` give examples. Secrets are
read with `require_secret`, so they stay `Output`s marked secret from here to the resources.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TypeVar

import pulumi

from provision.errors import InfraConfigError
from provision.infra.gpu import check_gpu_size
from provision.infra.mirror_config import MirrorConfig, read_pulumi_config

NAMESPACE: Final = "sdprov"
E = TypeVar("E", bound=enum.StrEnum)
MODELS_MOUNT_DIR: Final = "/mnt/auto"  # where FC (and our ECS cloud-init) mount the NAS
NAS_EXPORT_PATH: Final = "/sdprov"  # NAS directory mounted at /mnt/auto (FC creates it)
DATA_DIR: Final = f"{MODELS_MOUNT_DIR}/sd"  # WebUI --data-dir, as Alibaba's image lays it out
MODELS_ROOT: Final = f"{DATA_DIR}/models"  # sdprov's models root (design.md §3)
WEBUI_PORT: Final = 7860

# Alibaba's 2023 public image (devsapp/fc-stable-diffuson, A1111 v1.6.0, six regions, links demo
# models into the NAS): only with `sdprov:alibabaImage: true`, never by default.
ALIBABA_IMAGE_TEMPLATE: Final = (
    "registry.{region}.aliyuncs.com/aliyun-fc/fc-stable-diffusion:sd1.5-v12"
)
PINNED_IMAGE: Final = re.compile(
    r"^[a-z0-9][a-z0-9.-]*(:\d+)?/[a-z0-9._/-]+(:[\w.-]+)?@sha256:[0-9a-f]{64}$"
)


class Target(enum.StrEnum):
    FC = "fc"
    ECS = "ecs"


class Ui(enum.StrEnum):
    A1111 = "a1111"
    COMFYUI = "comfyui"


class EcsEgress(enum.StrEnum):
    """How the ECS instance reaches the internet (pip, Docker, Civitai): never an ingress rule."""

    PUBLIC_IP = "public-ip"  # a public IP on the instance, no inbound rule unless allowedCidr
    NAT = "nat"  # an enhanced NAT gateway + EIP + SNAT entry for the vSwitch
    NONE = "none"  # the team's own NAT/proxy already gives the vSwitch egress


class TriggerAuth(enum.StrEnum):
    """FC HTTP trigger `authType`. `anonymous` still has WebUI's own password in front."""

    ANONYMOUS = "anonymous"
    FUNCTION = "function"


NAS_STORAGE_TYPES: Final = ("Performance", "Capacity", "Premium")


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
    ui: Ui
    manifest: Path
    zone_id: str | None
    vpc_cidr: str
    vswitch_cidr: str
    existing_network: ExistingNetwork | None
    nas_storage_type: str
    image: str  # digest-pinned, or Alibaba's old image when alibaba_image
    alibaba_image: bool
    domain: str | None  # FC: a custom domain routed to the UI function
    # FC GPU function
    gpu_type: str
    gpu_memory_mb: int
    cpu: float
    memory_mb: int
    provisioned_instances: int
    max_instances: int
    trigger_auth: TriggerAuth
    public_url: bool
    ready_timeout_seconds: int
    # ECS
    ecs_instance_type: str
    ecs_image_id: str | None
    ecs_egress: EcsEgress
    allowed_cidr: str | None
    registry_user: str | None  # ecs: `docker login` to a private ACR repository
    registry_password: pulumi.Output[str]
    # sync
    sync_timeout_seconds: int
    prune: bool  # let the cloud sync remove more than half of the placed models
    sync_shards: int  # FC async tasks downloading one lock at once (issue 14)
    fc_endpoint: str | None
    lock_bucket: str | None
    credentials_profile: str | None  # alicloud:profile, for the deploy host's FC calls
    # UI credentials and model-source tokens
    webui_user: str
    webui_password: pulumi.Output[str]
    civitai_token: pulumi.Output[str]
    hf_token: pulumi.Output[str]
    mirror: MirrorConfig | None = None  # `sdprov:mirror` (provision.infra.mirror)

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


def _enum(cfg: pulumi.Config, key: str, kind: type[E], default: E) -> E:
    return kind(_choice(cfg.get(key) or default.value, tuple(m.value for m in kind), key))


def _network(cfg: pulumi.Config, region: str) -> tuple[ExistingNetwork | None, str | None]:
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
            hint=f"pulumi config set {NAMESPACE}:zoneId {region}-h "
            "(a zone where FC GPU, NAS and your ECS type are sold)",
        )
    return existing, zone_id


def _image(cfg: pulumi.Config, region: str, ui: Ui) -> tuple[str, bool]:
    """A digest-pinned image; Alibaba's 2023 image only when asked for by name."""
    alibaba = bool(cfg.get_bool("alibabaImage"))
    image = cfg.get("image")
    if alibaba:
        if ui is not Ui.A1111 or image:
            raise InfraConfigError(
                f"{NAMESPACE}:alibabaImage is A1111 only and replaces {NAMESPACE}:image; "
                "unset one of them"
            )
        return ALIBABA_IMAGE_TEMPLATE.format(region=region), True
    if not image:
        raise InfraConfigError(
            f"{NAMESPACE}:image is required: the {ui.value} image built from images/{ui.value}/ "
            "and pushed to your ACR, pinned by digest",
            hint=f"pulumi config set {NAMESPACE}:image registry.{region}.aliyuncs.com/<ns>/"
            f"sdprov-{ui.value}@sha256:<digest> (docs/deploy-alibaba.md, 'Build the image')",
        )
    if not PINNED_IMAGE.match(image):
        raise InfraConfigError(
            f"{NAMESPACE}:image {image!r} is not pinned by digest: a tag can move under a "
            "running deployment",
            hint="use the @sha256:<digest> that `docker push` printed",
        )
    return image, False


def _count(cfg: pulumi.Config, key: str, default: int, minimum: int) -> int:
    value = cfg.get_int(key)
    value = default if value is None else value
    if value < minimum:
        raise InfraConfigError(f"{NAMESPACE}:{key} must be {minimum} or more, got {value}")
    return value


@dataclass(frozen=True, slots=True)
class _Gpu:
    gpu_type: str
    gpu_memory_mb: int
    cpu: float
    memory_mb: int
    provisioned: int
    max_instances: int


def _gpu(cfg: pulumi.Config, target: Target) -> _Gpu:
    gpu = _Gpu(
        gpu_type=cfg.get("gpuType") or "fc.gpu.tesla.1",
        gpu_memory_mb=cfg.get_int("gpuMemoryMB") or 16384,
        cpu=cfg.get_float("cpu") or 8.0,
        memory_mb=cfg.get_int("memoryMB") or 32768,
        provisioned=_count(cfg, "provisionedInstances", 0, 0),
        max_instances=_count(cfg, "maxInstances", 1, 1),
    )
    if target is Target.FC:
        check_gpu_size(gpu.gpu_type, gpu.gpu_memory_mb, gpu.cpu, gpu.memory_mb, gpu.provisioned)
        if gpu.provisioned > gpu.max_instances:
            raise InfraConfigError(
                f"{NAMESPACE}:provisionedInstances ({gpu.provisioned}) is above "
                f"{NAMESPACE}:maxInstances ({gpu.max_instances})"
            )
    return gpu


def read_config(
    config: pulumi.Config | None = None,
    *,
    region: str | None = None,
    stack: str | None = None,
) -> StackConfig:
    """Read and validate every key. Raise `InfraConfigError` naming the key at fault."""
    cfg = config or pulumi.Config(NAMESPACE)
    provider = pulumi.Config("alicloud")
    stack_name = stack or pulumi.get_stack()
    region_name = region or provider.get("region") or ""
    if not region_name:
        raise InfraConfigError(
            "alicloud:region is not set", hint="pulumi config set alicloud:region cn-hangzhou"
        )
    target = _enum(cfg, "target", Target, Target.FC)
    ui = _enum(cfg, "ui", Ui, Ui.A1111)
    existing, zone_id = _network(cfg, region_name)
    image, alibaba = _image(cfg, region_name, ui)
    if alibaba and target is Target.ECS:
        raise InfraConfigError(f"{NAMESPACE}:alibabaImage is for target fc only")
    gpu = _gpu(cfg, target)
    public_url = cfg.get_bool("publicUrl")
    return StackConfig(
        name_prefix=cfg.get("namePrefix") or f"sdprov-{stack_name}",
        region=region_name,
        target=target,
        ui=ui,
        manifest=Path(cfg.get("manifest") or "manifests/models.yaml"),
        zone_id=zone_id,
        vpc_cidr=cfg.get("vpcCidr") or "10.42.0.0/16",
        vswitch_cidr=cfg.get("vswitchCidr") or "10.42.1.0/24",
        existing_network=existing,
        nas_storage_type=_choice(
            cfg.get("nasStorageType") or "Performance", NAS_STORAGE_TYPES, "nasStorageType"
        ),
        image=image,
        alibaba_image=alibaba,
        domain=cfg.get("domain") or None,
        gpu_type=gpu.gpu_type,
        gpu_memory_mb=gpu.gpu_memory_mb,
        cpu=gpu.cpu,
        memory_mb=gpu.memory_mb,
        provisioned_instances=gpu.provisioned,
        max_instances=gpu.max_instances,
        trigger_auth=_enum(cfg, "triggerAuth", TriggerAuth, TriggerAuth.ANONYMOUS),
        public_url=True if public_url is None else public_url,
        ready_timeout_seconds=_count(cfg, "readyTimeoutSeconds", 1800, 60),
        ecs_instance_type=cfg.get("ecsInstanceType") or "ecs.gn7i-c8g1.2xlarge",
        ecs_image_id=cfg.get("ecsImageId") or None,
        ecs_egress=_enum(cfg, "ecsEgress", EcsEgress, EcsEgress.PUBLIC_IP),
        allowed_cidr=cfg.get("allowedCidr"),
        registry_user=cfg.get("registryUser") or None,
        registry_password=cfg.get_secret("registryPassword") or pulumi.Output.secret(""),
        sync_timeout_seconds=_count(cfg, "syncTimeoutSeconds", 3 * 3600, 60),
        prune=bool(cfg.get_bool("prune")),
        sync_shards=_count(cfg, "syncShards", 1, 1),
        fc_endpoint=cfg.get("fcEndpoint"),
        lock_bucket=cfg.get("lockBucket"),
        credentials_profile=provider.get("profile") or None,
        webui_user=cfg.get("webuiUser") or "admin",
        webui_password=cfg.require_secret("webuiPassword"),
        civitai_token=cfg.require_secret("civitaiToken"),
        hf_token=cfg.require_secret("hfToken"),
        mirror=read_pulumi_config(cfg, region_name),
    )
