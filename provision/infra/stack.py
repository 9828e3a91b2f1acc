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


def build_stack(cfg: StackConfig, lock: Lockfile, *, sync_code_b64: str) -> StackOutputs:
    p = cfg.name_prefix
    service_role = preflight(cfg)  # raises before anything is created
    network = Network(
        "network",
        NetworkArgs(
            name_prefix=p,
            zone_id=cfg.zone_id,
            vpc_cidr=cfg.vpc_cidr,
            vswitch_cidr=cfg.vswitch_cidr,
            existing=cfg.existing_network,
        ),
    )
    account_id = alicloud.get_caller_identity_output().account_id
    logs = LogStore("logs", LogStoreArgs(project_name=account_id.apply(lambda a: f"{p}-{a}")))
    role = FunctionRole(
        "functions",
        FunctionRoleArgs(name_prefix=p, log_project=logs.project_name, lock_bucket=cfg.lock_bucket),
    )
    store = ModelStore(
        "models",
        ModelStoreArgs(
            name_prefix=p,
            storage_type=cfg.nas_storage_type,
            zone_id=network.zone_id,
            vpc_id=network.vpc_id,
            vswitch_id=network.vswitch_id,
            vswitch_cidr=network.vswitch_cidr,
        ),
    )
    placement = FunctionPlacement(
        vpc_id=network.vpc_id,
        vswitch_id=network.vswitch_id,
        security_group_id=network.security_group_id,
        nas_server_addr=store.server_addr,
        log_project=logs.project_name,
        logstore=logs.logstore_name,
        depends_on=tuple(service_role),
    )
    fc = FcAccess.from_provider_config(cfg.region, cfg.fc_endpoint, cfg.credentials_profile)
    instance: WebuiInstance | None = None
    if cfg.target is Target.ECS:
        instance = WebuiInstance(
            "webui",
            WebuiInstanceArgs(
                name_prefix=p,
                instance_type=cfg.ecs_instance_type,
                image_id=cfg.ecs_image_id or find_gpu_image(cfg.ecs_instance_type),
                image=cfg.image,
                egress=cfg.ecs_egress,
                vpc_id=network.vpc_id,
                vswitch_id=network.vswitch_id,
                security_group_id=network.security_group_id,
                nas_mount_target_domain=store.mount_target_domain,
                webui_user=cfg.webui_user,
                webui_password=cfg.webui_password,
                allowed_cidr=cfg.allowed_cidr,
            ),
        )
    sync = ModelSync(
        "sync",
        ModelSyncArgs(
            name_prefix=p,
            code_zip_b64=sync_code_b64,
            role_arn=role.arn,
            placement=placement,
            civitai_token=cfg.civitai_token,
            hf_token=cfg.hf_token,
            lock_text=lock.render(),
            lock_digest=lock.digest,
            model_count=len(lock.models),
            timeout_seconds=cfg.sync_timeout_seconds,
            fc=fc,
            ready_timeout_seconds=cfg.ready_timeout_seconds,
            lock_bucket=cfg.lock_bucket,
            # ECS A1111: refresh and verify it after a sync (ComfyUI rescans by itself; FC
            # instances roll on the new lock digest instead).
            webui_urls=instance.private_url if instance and cfg.ui is Ui.A1111 else "",
            webui_auth=(
                cfg.webui_password.apply(lambda pw: f"{cfg.webui_user}:{pw}") if instance else ""
            ),
        ),
    )
    empty: pulumi.Output[str] = pulumi.Output.from_input("")
    trigger_url, cname = empty, empty
    if instance is not None:
        url = instance.url
    else:
        function = WebuiFunction(
            "webui",
            WebuiFunctionArgs(
                name_prefix=p,
                image=cfg.image,
                gpu_type=cfg.gpu_type,
                gpu_memory_mb=cfg.gpu_memory_mb,
                cpu=cfg.cpu,
                memory_mb=cfg.memory_mb,
                role_arn=role.arn,
                placement=placement,
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
                fc=fc,
                account_id=account_id,
                ready_timeout_seconds=cfg.ready_timeout_seconds,
            ),
        )
        url, trigger_url, cname = function.url, function.trigger_url, function.cname_target
    return StackOutputs(
        webui_url=url,
        trigger_url=trigger_url,
        domain_cname_target=cname,
        nas_file_system_id=store.file_system_id,
        nas_mount_target=store.mount_target_domain,
        lock_digest=sync.lock_digest,
        model_count=len(lock.models),
        sync_task_id=sync.task_id,
    )
