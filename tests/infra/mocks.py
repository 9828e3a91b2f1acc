"""Pulumi mocks for the infra tests: record every resource with its raw (wire) inputs.

Importing pulumi_alicloud (and each lazily loaded submodule) emits DeprecationWarnings for
classes we never use (StarRocksInstance, ecs.Eip, vpc.Subnet, oss.getInstanceAttachments...);
`import_alicloud` loads the modules we use once with those ignored. Deprecated *arguments* warn
at construction, later, so they still fail the tests.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pulumi
from google.protobuf import json_format  # type: ignore[import-untyped]
from pulumi.runtime.mocks import MockMonitor

SECRET_SIG = "4dabf18193072939515e22adb298388d"
ACCOUNT_ID = "1234567890123456"
MOUNT_DOMAIN = "abc123-xyz.cn-hangzhou.nas.aliyuncs.com"


def import_alicloud() -> None:
    with warnings.catch_warnings():
        # only while importing: class-level notices issued by pulumi_alicloud's own modules
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"pulumi_alicloud")
        import pulumi_alicloud as alicloud

        # submodules load lazily, at their first attribute access
        for module, name in (("fc", "V3Function"), ("nas", "FileSystem"), ("vpc", "Switch"),
                             ("ecs", "Instance"), ("ram", "Role"), ("log", "Store"),
                             ("oss", "BucketObject"), ("resourcemanager", "ServiceLinkedRole")):  # fmt: skip
            getattr(getattr(alicloud, module), name)


@dataclass
class Registered:
    typ: str
    name: str
    inputs: dict[str, Any]  # deserialized (secrets unwrapped)
    wire: dict[str, Any]  # as sent to the engine (secrets wrapped in the secret signature)
    parent: str


@dataclass
class Account:
    """What the mocked account answers to the preflight data sources (a healthy one by default)."""

    services: dict[str, str] = field(default_factory=lambda: {"fc": "Opened", "nas": "Opened",
                                                               "log": "Opened"})  # fmt: skip
    fc_zones: tuple[str, ...] = ("cn-hangzhou-h", "cn-hangzhou-k")
    nas_zones: dict[str, tuple[str, ...]] = field(
        default_factory=lambda: {"cn-hangzhou-h": ("Performance", "Capacity"),
                                 "cn-hangzhou-k": ("Capacity",)}
    )  # fmt: skip
    ecs_types: dict[str, tuple[str, ...]] = field(
        default_factory=lambda: {"cn-hangzhou-h": ("ecs.gn7i-c8g1.2xlarge",)}
    )
    fc_role: bool = True
    calls: list[str] = field(default_factory=list)

    def answer(self, token: str, args: dict[str, Any]) -> dict[str, Any] | None:
        self.calls.append(token)
        module = token.split(":")[1].split("/")[0]
        if token.endswith("/getService:getService"):
            status = self.services.get(module, "Opened")
            return {"id": module, "status": status, "enable": "On"}
        if token == "alicloud:fc/getZones:getZones":
            return {"id": "z", "ids": list(self.fc_zones),
                    "zones": [{"id": z} for z in self.fc_zones]}  # fmt: skip
        if token == "alicloud:nas/getZones:getZones":
            return {"id": "z", "zones": [
                {"zoneId": z, "instanceTypes": [{"storageType": t, "protocolType": "NFS"}
                                                for t in types]}
                for z, types in self.nas_zones.items()]}  # fmt: skip
        if token == "alicloud:ecs/getInstanceTypes:getInstanceTypes":
            sold = self.ecs_types.get(str(args.get("availabilityZone")), ())
            ids = [t for t in sold if t == args.get("instanceType")]
            return {"id": "t", "ids": ids, "instanceTypes": []}
        if token == "alicloud:ram/getRoles:getRoles":
            ids = ["AliyunServiceRoleForFC"] if self.fc_role else []
            return {"id": "r", "ids": ids, "names": ids, "roles": []}
        if token == "alicloud:ecs/getImages:getImages":
            return {"id": "i", "ids": ["ubuntu_22_04_x64_20G_alibase_20261101.vhd"], "images": []}
        return None


@dataclass
class Recorder(pulumi.runtime.Mocks):
    resources: list[Registered] = field(default_factory=list)
    account: Account = field(default_factory=Account)

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        out = dict(args.inputs)
        if args.typ == "alicloud:nas/mountTarget:MountTarget":
            out["mountTargetDomain"] = MOUNT_DOMAIN
        elif args.typ == "alicloud:fc/v3Function:V3Function":
            out["functionArn"] = f"acs:fc:cn-hangzhou:{ACCOUNT_ID}:functions/{out['functionName']}"
        elif args.typ == "alicloud:fc/v3Trigger:V3Trigger":
            base = f"{out['functionName']}.fcapp.run"
            out["httpTrigger"] = {
                "urlInternet": f"https://{base}",
                "urlIntranet": f"https://{base}.internal",
            }
        elif args.typ == "alicloud:ecs/instance:Instance":
            out["privateIp"] = "10.42.1.7"
            out["publicIp"] = "203.0.113.7"
        elif args.typ == "alicloud:ram/role:Role":
            out["arn"] = f"acs:ram::{ACCOUNT_ID}:role/{out['roleName']}"
        return f"{args.name}_id", out

    def call(
        self, args: pulumi.runtime.MockCallArgs
    ) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        found = self.account.answer(args.token, dict(args.args))
        if found is not None:
            return found, []
        if args.token == "alicloud:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": ACCOUNT_ID, "arn": "acs:ram::x:root", "id": ACCOUNT_ID,
                    "identityType": "Account"}, []  # fmt: skip
        if args.token == "alicloud:vpc/getSwitches:getSwitches":
            return {
                "id": "q", "ids": ["vsw-existing"], "names": ["existing"], "totalCount": 1,
                "vswitches": [{"id": "vsw-existing", "cidrBlock": "172.16.8.0/24",
                               "zoneId": "cn-hangzhou-k", "vpcId": "vpc-existing",
                               "name": "existing", "vswitchName": "existing"}],
            }, []  # fmt: skip
        return {}, []


class RecordingMonitor(MockMonitor):
    """Keeps the wire form of every registration, where secrets are still marked."""

    def __init__(self, mocks: Recorder) -> None:
        super().__init__(mocks)
        self.recorder = mocks

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type != "pulumi:pulumi:Stack":
            wire = json_format.MessageToDict(request.object)
            self.recorder.resources.append(
                Registered(
                    typ=request.type,
                    name=request.name,
                    inputs=unwrap_secrets(wire),
                    wire=wire,
                    parent=request.parent,
                )
            )
        return response


def unwrap_secrets(value: Any) -> Any:
    if isinstance(value, dict):
        if SECRET_SIG in value:
            return unwrap_secrets(value.get("value"))
        return {k: unwrap_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap_secrets(v) for v in value]
    return value


def clear_text_paths(value: Any, needle: str, path: str = "") -> list[str]:
    """Paths under which `needle` appears outside a secret-wrapped value."""
    if isinstance(value, dict):
        if SECRET_SIG in value:
            return []
        return [p for k, v in value.items() for p in clear_text_paths(v, needle, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in clear_text_paths(v, needle, f"{path}[{i}]")]
    if isinstance(value, str) and needle in value:
        return [path or "."]
    return []


def run_program(fn: Callable[[], Any]) -> None:
    """Run `fn` as a Pulumi program under the mocks set last; wait for every registration."""
    pulumi.runtime.test(fn)()  # type: ignore[no-untyped-call]
