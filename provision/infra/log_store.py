"""SLS project and logstore that the WebUI and sync functions write their logs to."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_alicloud as alicloud


@dataclass(frozen=True, slots=True, kw_only=True)
class LogStoreArgs:
    # SLS project names are unique per region across all accounts: callers pass one that
    # includes the account id.
    project_name: pulumi.Input[str]
    retention_days: int = 30


class LogStore(pulumi.ComponentResource):
    project_name: pulumi.Output[str]
    logstore_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: LogStoreArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("sdprov:infra:LogStore", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        project = alicloud.log.Project(
            f"{name}-project",
            alicloud.log.ProjectArgs(
                project_name=args.project_name,
                description="sdprov: WebUI and model sync function logs",
            ),
            opts=child,
        )
        store = alicloud.log.Store(
            f"{name}-store",
            alicloud.log.StoreArgs(
                project_name=project.project_name,
                logstore_name="functions",
                shard_count=2,
                auto_split=True,
                max_split_shard_count=8,
                retention_period=args.retention_days,
                append_meta=True,
            ),
            opts=child,
        )
        self.project_name = project.project_name
        self.logstore_name = store.logstore_name
        self.register_outputs(
            {"project_name": self.project_name, "logstore_name": self.logstore_name}
        )
