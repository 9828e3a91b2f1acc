"""Account checks made before anything is created, each error naming the key or the step to take.

- Services: FC, NAS and SLS are activated (the provider's `get_service(enable="On")` data sources
  open a service that is not yet, and fail plainly when the account cannot, e.g. unverified).
- Zone (when sdprov creates the network): FC offers VPC access in it (`fc.get_zones`), NAS sells
  the chosen storage class there (`nas.get_zones`), and for ecs the instance type is sold there
  (`ecs.get_instance_types`). FC's GPU stock per zone has no data source: see the docs.
- FC's service-linked role (`AliyunServiceRoleForFC`, needed for VPC and NAS access): if the
  account lacks it, the stack creates it (`resourcemanager.ServiceLinkedRole`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import pulumi
import pulumi_alicloud as alicloud

from provision.errors import InfraConfigError
from provision.infra.config import StackConfig, Target

FC_ROLE: Final = "AliyunServiceRoleForFC"
CHECKLIST: Final = "docs/deploy-alibaba.md, 'Account prerequisites'"


def check_services() -> None:
    getters: tuple[tuple[str, Callable[..., Any]], ...] = (
        ("Function Compute", alicloud.fc.get_service),
        ("NAS", alicloud.nas.get_service),
        ("Simple Log Service", alicloud.log.get_service),
    )
    # An account that cannot activate a service at all gets the provider's own error from the
    # data source (an invoke failure fails the program wherever it is caught).
    for product, getter in getters:
        status = str(getter(enable="On").status)
        if status not in ("Opened", "On"):
            raise InfraConfigError(
                f"{product} is {status!r} on this account, not activated",
                hint=f"activate it in the console ({CHECKLIST})",
            )


def check_zone(cfg: StackConfig) -> None:
    zone = cfg.zone_id
    if zone is None:  # an existing vSwitch: its zone already carries the team's resources
        return
    fc_zones = sorted(alicloud.fc.get_zones().ids or [])
    if zone not in fc_zones:
        raise InfraConfigError(
            f"sdprov:zoneId {zone} has no FC VPC access in {cfg.region}; "
            f"zones with it: {', '.join(fc_zones) or 'none'}",
            hint=f"pulumi config set sdprov:zoneId {fc_zones[0] if fc_zones else '<zone>'}",
        )
    nas_zones = sorted(
        str(z.zone_id)
        for z in alicloud.nas.get_zones(file_system_type="standard").zones or []
        if any(t.storage_type == cfg.nas_storage_type for t in z.instance_types or [])
    )
    if zone not in nas_zones:
        raise InfraConfigError(
            f"sdprov:zoneId {zone} does not sell {cfg.nas_storage_type} NAS "
            f"(sdprov:nasStorageType); zones that do: {', '.join(nas_zones) or 'none'}",
        )
    if cfg.target is Target.ECS:
        sold = alicloud.ecs.get_instance_types(
            availability_zone=zone, instance_type=cfg.ecs_instance_type
        )
        if not sold.ids:
            raise InfraConfigError(
                f"sdprov:ecsInstanceType {cfg.ecs_instance_type} is not sold in sdprov:zoneId "
                f"{zone}",
                hint="pick a zone that sells it (ECS console → instance type availability)",
            )


def fc_service_role(opts: pulumi.ResourceOptions | None = None) -> list[pulumi.Resource]:
    """The FC service-linked role, created only when the account does not have it yet."""
    found = alicloud.ram.get_roles(name_regex=f"^{FC_ROLE}$")
    if found.ids:
        return []
    role = alicloud.resourcemanager.ServiceLinkedRole(
        "fc-service-role",
        alicloud.resourcemanager.ServiceLinkedRoleArgs(service_name="fc.aliyuncs.com"),
        opts=opts,
    )
    return [role]


def preflight(cfg: StackConfig) -> list[pulumi.Resource]:
    """Every check; returns what the functions must wait for (the role, when created)."""
    check_services()
    check_zone(cfg)
    return fc_service_role()
