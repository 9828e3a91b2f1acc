"""NAS file system that holds every model, with its access group, rule and mount target.

General-purpose NAS (`file_system_type="standard"`) over NFS: FC mounts it natively and ECS mounts
it with NFSv4.0. The access rule admits only the vSwitch's CIDR, read-write, `no_squash` because FC
runs as root by default and the sync must own the files it places.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_alicloud as alicloud

from provision.infra.config import NAS_EXPORT_PATH

FILE_SYSTEM_TYPE = "standard"


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelStoreArgs:
    name_prefix: str
    storage_type: str
    zone_id: pulumi.Input[str]
    vpc_id: pulumi.Input[str]
    vswitch_id: pulumi.Input[str]
    vswitch_cidr: pulumi.Input[str]


class ModelStore(pulumi.ComponentResource):
    file_system_id: pulumi.Output[str]
    mount_target_domain: pulumi.Output[str]
    server_addr: pulumi.Output[str]  # "<mount target>:/sd" as FC's nas_config expects

    def __init__(
        self, name: str, args: ModelStoreArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("sdprov:infra:ModelStore", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        fs = alicloud.nas.FileSystem(
            f"{name}-fs",
            alicloud.nas.FileSystemArgs(
                protocol_type="NFS",
                file_system_type=FILE_SYSTEM_TYPE,
                storage_type=args.storage_type,
                zone_id=args.zone_id,
                encrypt_type=1,  # NAS-managed key: encrypted at rest at no extra cost
                description=f"{args.name_prefix} models",
            ),
            opts=child,
        )
        group = alicloud.nas.AccessGroup(
            f"{name}-access-group",
            alicloud.nas.AccessGroupArgs(
                access_group_name=f"{args.name_prefix}-models",
                access_group_type="Vpc",
                file_system_type=FILE_SYSTEM_TYPE,
                description="sdprov: only the WebUI/sync vSwitch",
            ),
            opts=child,
        )
        alicloud.nas.AccessRule(
            f"{name}-access-rule",
            alicloud.nas.AccessRuleArgs(
                access_group_name=group.access_group_name,
                file_system_type=FILE_SYSTEM_TYPE,
                source_cidr_ip=args.vswitch_cidr,
                rw_access_type="RDWR",
                user_access_type="no_squash",
                priority=1,
            ),
            opts=child,
        )
        mount = alicloud.nas.MountTarget(
            f"{name}-mount-target",
            alicloud.nas.MountTargetArgs(
                file_system_id=fs.id,
                access_group_name=group.access_group_name,
                network_type="Vpc",
                vpc_id=args.vpc_id,
                vswitch_id=args.vswitch_id,
            ),
            opts=child,
        )
        self.file_system_id = fs.id
        self.mount_target_domain = mount.mount_target_domain
        self.server_addr = mount.mount_target_domain.apply(lambda d: f"{d}:{NAS_EXPORT_PATH}")
        self.register_outputs(
            {
                "file_system_id": self.file_system_id,
                "mount_target_domain": self.mount_target_domain,
                "server_addr": self.server_addr,
            }
        )
