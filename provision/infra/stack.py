"""Wire the components for one stack: what `__main__.py` runs and the tests build per target."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_alicloud as alicloud

from provision.infra.config import StackConfig, Target, Ui
from provision.infra.fc_access import FcAccess
from provision.infra.fc_placement import FunctionPlacement
from provision.infra.function_role import FunctionRole, FunctionRoleArgs
from provision.infra.log_store import LogStore, LogStoreArgs
from provision.infra.mirror import ModelMirror, ModelMirrorArgs
from provision.infra.mirror_config import sync_env
from provision.infra.model_store import ModelStore, ModelStoreArgs
from provision.infra.model_sync import ModelSync, ModelSyncArgs
from provision.infra.network import Network, NetworkArgs
from provision.infra.preflight import preflight
from provision.infra.webui_function import WebuiFunction, WebuiFunctionArgs
from provision.infra.webui_instance import WebuiInstance, WebuiInstanceArgs, find_gpu_image
from provision.lock.lockfile import Lockfile


@dataclass(frozen=True, slots=True, kw_only=True)
class StackOutputs:
    webui_url: pulumi.Output[str]
    trigger_url: pulumi.Output[str]  # FC only: answers with `attachment`, browsers download
    domain_cname_target: pulumi.Output[str]  # FC with sdprov:domain: point the CNAME here
    nas_file_system_id: pulumi.Output[str]
    nas_mount_target: pulumi.Output[str]
    lock_digest: pulumi.Output[str]
    model_count: int
    sync_task_id: pulumi.Output[str]


@dataclass(frozen=True, slots=True, kw_only=True)
class _Base:
    """What both targets share: the network, the NAS, the logs, the functions' role and access."""

    network: Network
    store: ModelStore
    role: FunctionRole
    placement: FunctionPlacement
    fc: FcAccess
    account_id: pulumi.Output[str]


def _base(cfg: StackConfig, service_role: list[pulumi.Resource]) -> _Base:
    p = cfg.name_prefix
    network = Network(
        "network",
        NetworkArgs(name_prefix=p, zone_id=cfg.zone_id, vpc_cidr=cfg.vpc_cidr,
                    vswitch_cidr=cfg.vswitch_cidr, existing=cfg.existing_network),
    )  # fmt: skip
    account_id = alicloud.get_caller_identity_output().account_id
    logs = LogStore("logs", LogStoreArgs(project_name=account_id.apply(lambda a: f"{p}-{a}")))
    role = FunctionRole(
        "functions",
        FunctionRoleArgs(name_prefix=p, log_project=logs.project_name, lock_bucket=cfg.lock_bucket),
    )
    mirror: list[pulumi.Resource] = []
    if cfg.mirror is not None:  # the functions start once their role may read the mirror
        args = ModelMirrorArgs(
            name_prefix=p, region=cfg.region, config=cfg.mirror, role_name=role.role_name
        )
        mirror.append(ModelMirror("mirror", args))
    store = ModelStore(
        "models",
        ModelStoreArgs(name_prefix=p, storage_type=cfg.nas_storage_type,
                       zone_id=network.zone_id, vpc_id=network.vpc_id,
                       vswitch_id=network.vswitch_id, vswitch_cidr=network.vswitch_cidr),
    )  # fmt: skip
    placement = FunctionPlacement(
        vpc_id=network.vpc_id, vswitch_id=network.vswitch_id,
        security_group_id=network.security_group_id, nas_server_addr=store.server_addr,
        log_project=logs.project_name, logstore=logs.logstore_name,
        depends_on=(*service_role, *mirror),
    )  # fmt: skip
    fc = FcAccess.from_provider_config(cfg.region, cfg.fc_endpoint, cfg.credentials_profile)
    return _Base(network=network, store=store, role=role, placement=placement, fc=fc,
                 account_id=account_id)  # fmt: skip


def _instance(cfg: StackConfig, base: _Base) -> WebuiInstance:
    return WebuiInstance(
        "webui",
        WebuiInstanceArgs(
            name_prefix=cfg.name_prefix,
            instance_type=cfg.ecs_instance_type,
            image_id=cfg.ecs_image_id or find_gpu_image(cfg.ecs_instance_type),
            image=cfg.image,
            egress=cfg.ecs_egress,
            vpc_id=base.network.vpc_id,
            vswitch_id=base.network.vswitch_id,
            security_group_id=base.network.security_group_id,
            nas_mount_target_domain=base.store.mount_target_domain,
            webui_user=cfg.webui_user,
            webui_password=cfg.webui_password,
            allowed_cidr=cfg.allowed_cidr,
            registry_user=cfg.registry_user,
            registry_password=cfg.registry_password,
        ),
    )


def _sync(
    cfg: StackConfig, lock: Lockfile, base: _Base, code: str, instance: WebuiInstance | None
) -> ModelSync:
    return ModelSync(
        "sync",
        ModelSyncArgs(
            name_prefix=cfg.name_prefix,
            code_zip_b64=code,
            role_arn=base.role.arn,
            placement=base.placement,
            civitai_token=cfg.civitai_token,
            hf_token=cfg.hf_token,
            lock_text=lock.render(),
            lock_digest=lock.digest,
            model_count=len(lock.models),
            timeout_seconds=cfg.sync_timeout_seconds,
            prune=cfg.prune,
            shards=cfg.sync_shards,
            fc=base.fc,
            ready_timeout_seconds=cfg.ready_timeout_seconds,
            lock_bucket=cfg.lock_bucket,
            # ECS A1111: refresh and verify it after a sync (ComfyUI rescans by itself; FC
            # instances roll on the new lock digest instead).
            webui_urls=instance.private_url if instance and cfg.ui is Ui.A1111 else "",
            webui_auth=(
                cfg.webui_password.apply(lambda pw: f"{cfg.webui_user}:{pw}") if instance else ""
            ),
            mirror_env=sync_env(cfg.mirror, cfg.region) if cfg.mirror is not None else {},
        ),
    )


def _function(cfg: StackConfig, base: _Base, sync: ModelSync) -> WebuiFunction:
    return WebuiFunction(
        "webui",
        WebuiFunctionArgs(
            name_prefix=cfg.name_prefix,
            image=cfg.image,
            gpu_type=cfg.gpu_type,
            gpu_memory_mb=cfg.gpu_memory_mb,
            cpu=cfg.cpu,
            memory_mb=cfg.memory_mb,
            role_arn=base.role.arn,
            placement=base.placement,
            webui_user=cfg.webui_user,
            webui_password=cfg.webui_password,
            lock_digest=sync.lock_digest,  # roll instances only after the sync succeeded
            provisioned_instances=cfg.provisioned_instances,
            trigger_auth=cfg.trigger_auth,
            public_url=cfg.public_url,
            ui=cfg.ui,
            alibaba_image=cfg.alibaba_image,
            max_instances=cfg.max_instances,
            domain=cfg.domain,
            fc=base.fc,
            account_id=base.account_id,
            ready_timeout_seconds=cfg.ready_timeout_seconds,
        ),
    )


def build_stack(cfg: StackConfig, lock: Lockfile, *, sync_code_b64: str) -> StackOutputs:
    base = _base(cfg, preflight(cfg))  # preflight raises before anything is created
    instance = _instance(cfg, base) if cfg.target is Target.ECS else None
    sync = _sync(cfg, lock, base, sync_code_b64, instance)
    empty: pulumi.Output[str] = pulumi.Output.from_input("")
    trigger_url, cname = empty, empty
    if instance is not None:
        url = instance.url
    else:
        function = _function(cfg, base, sync)
        url, trigger_url, cname = function.url, function.trigger_url, function.cname_target
    return StackOutputs(
        webui_url=url,
        trigger_url=trigger_url,
        domain_cname_target=cname,
        nas_file_system_id=base.store.file_system_id,
        nas_mount_target=base.store.mount_target_domain,
        lock_digest=sync.lock_digest,
        model_count=len(lock.models),
        sync_task_id=sync.task_id,
    )
