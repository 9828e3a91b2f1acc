"""Where an FC 3.0 function runs: our VPC, the models NAS at /mnt/auto, our SLS logstore.

The WebUI function and the sync function must see the same NAS through the same VPC, so both
take these blocks from here rather than each spelling them out.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_alicloud as alicloud

from provision.infra.config import MODELS_MOUNT_DIR


@dataclass(frozen=True, slots=True, kw_only=True)
class FunctionPlacement:
    vpc_id: pulumi.Input[str]
    vswitch_id: pulumi.Input[str]
    security_group_id: pulumi.Input[str]
    nas_server_addr: pulumi.Input[str]
    log_project: pulumi.Input[str]
    logstore: pulumi.Input[str]
    # what a function must wait for beyond its inputs (FC's service-linked role, when created)
    depends_on: tuple[pulumi.Resource, ...] = ()

    def vpc_config(self) -> alicloud.fc.V3FunctionVpcConfigArgs:
        return alicloud.fc.V3FunctionVpcConfigArgs(
            vpc_id=self.vpc_id,
            vswitch_ids=[self.vswitch_id],
            security_group_id=self.security_group_id,
        )

    def nas_config(self) -> alicloud.fc.V3FunctionNasConfigArgs:
        # uid/gid 0: the sync writes as root and WebUI reads as root inside its container.
        return alicloud.fc.V3FunctionNasConfigArgs(
            user_id=0,
            group_id=0,
            mount_points=[
                alicloud.fc.V3FunctionNasConfigMountPointArgs(
                    server_addr=self.nas_server_addr,
                    mount_dir=MODELS_MOUNT_DIR,
                    enable_tls=False,
                )
            ],
        )

    def log_config(self, *, instance_metrics: bool) -> alicloud.fc.V3FunctionLogConfigArgs:
        return alicloud.fc.V3FunctionLogConfigArgs(
            project=self.log_project,
            logstore=self.logstore,
            enable_request_metrics=True,
            enable_instance_metrics=instance_metrics,
            log_begin_rule="DefaultRegex",
        )
