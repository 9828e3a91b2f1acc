"""VPC, vSwitch and security group, or the ids of existing ones.

NAS is reachable only from inside its VPC, so the WebUI (FC or ECS), the NAS mount target and the
sync function all sit in this one vSwitch. The zone is chosen by config because the zones that sell
FC GPU, NAS and a given ECS GPU type differ per region.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_alicloud as alicloud

from provision.infra.config import ExistingNetwork


@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkArgs:
    name_prefix: str
    zone_id: str | None
    vpc_cidr: str
    vswitch_cidr: str
    existing: ExistingNetwork | None = None


class Network(pulumi.ComponentResource):
    vpc_id: pulumi.Output[str]
    vswitch_id: pulumi.Output[str]
    security_group_id: pulumi.Output[str]
    vswitch_cidr: pulumi.Output[str]
    zone_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("sdprov:infra:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        if args.existing is not None:
            self._adopt(args.existing)
        else:
            if args.zone_id is None:
                raise ValueError("zone_id is required when the network is created")
            vpc = alicloud.vpc.Network(
                f"{name}-vpc",
                alicloud.vpc.NetworkArgs(
                    vpc_name=f"{args.name_prefix}-vpc",
                    cidr_block=args.vpc_cidr,
                    description="sdprov: Stable Diffusion WebUI, its NAS and the model sync",
                ),
                opts=child,
            )
            vswitch = alicloud.vpc.Switch(
                f"{name}-vswitch",
                alicloud.vpc.SwitchArgs(
                    vswitch_name=f"{args.name_prefix}-vswitch",
                    vpc_id=vpc.id,
                    cidr_block=args.vswitch_cidr,
                    zone_id=args.zone_id,
                ),
                opts=child,
            )
            # No ingress rule here: FC needs none, and the ECS component adds exactly the
            # WebUI port for the configured CIDR. Egress stays open (models come from the
            # internet through the sync function).
            group = alicloud.ecs.SecurityGroup(
                f"{name}-sg",
                alicloud.ecs.SecurityGroupArgs(
                    security_group_name=f"{args.name_prefix}-sg",
                    vpc_id=vpc.id,
                    # members reach each other: the sync function refreshes the ECS WebUI
                    inner_access_policy="Accept",
                    description="sdprov WebUI and model sync",
                ),
                opts=child,
            )
            self.vpc_id = vpc.id
            self.vswitch_id = vswitch.id
            self.security_group_id = group.id
            self.vswitch_cidr = pulumi.Output.from_input(args.vswitch_cidr)
            self.zone_id = pulumi.Output.from_input(args.zone_id)
        self.register_outputs(
            {
                "vpc_id": self.vpc_id,
                "vswitch_id": self.vswitch_id,
                "security_group_id": self.security_group_id,
                "vswitch_cidr": self.vswitch_cidr,
                "zone_id": self.zone_id,
            }
        )

    def _adopt(self, existing: ExistingNetwork) -> None:
        """Reuse a network: read the vSwitch's CIDR (for the NAS access rule) and zone."""
        found = alicloud.vpc.get_switches_output(
            ids=[existing.vswitch_id], opts=pulumi.InvokeOutputOptions(parent=self)
        )
        self.vpc_id = pulumi.Output.from_input(existing.vpc_id)
        self.vswitch_id = pulumi.Output.from_input(existing.vswitch_id)
        self.security_group_id = pulumi.Output.from_input(existing.security_group_id)
        self.vswitch_cidr = found.vswitches.apply(lambda s: str(s[0].cidr_block))
        self.zone_id = found.vswitches.apply(lambda s: str(s[0].zone_id))
