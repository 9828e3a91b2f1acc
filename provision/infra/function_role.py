"""RAM role the functions run as: write logs to our SLS project, read the lock object."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_alicloud as alicloud

FC_TRUST_POLICY = json.dumps(
    {
        "Version": "1",
        "Statement": [
            {
                "Action": "sts:AssumeRole",
                "Effect": "Allow",
                "Principal": {"Service": ["fc.aliyuncs.com"]},
            }
        ],
    },
    sort_keys=True,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class FunctionRoleArgs:
    name_prefix: str
    log_project: pulumi.Input[str]
    lock_bucket: str | None = None


def _policy_document(log_project: str, lock_bucket: str | None) -> str:
    statements: list[dict[str, object]] = [
        {
            "Effect": "Allow",
            "Action": ["log:PostLogStoreLogs"],
            "Resource": [f"acs:log:*:*:project/{log_project}/*"],
        }
    ]
    if lock_bucket:
        statements.append(
            {
                "Effect": "Allow",
                "Action": ["oss:GetObject"],
                "Resource": [f"acs:oss:*:*:{lock_bucket}/sdprov-locks/*"],
            }
        )
    return json.dumps({"Version": "1", "Statement": statements}, sort_keys=True)


class FunctionRole(pulumi.ComponentResource):
    arn: pulumi.Output[str]
    role_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: FunctionRoleArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("sdprov:infra:FunctionRole", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        role = alicloud.ram.Role(
            f"{name}-role",
            alicloud.ram.RoleArgs(
                role_name=f"{args.name_prefix}-fc",
                assume_role_policy_document=FC_TRUST_POLICY,
                description="sdprov: WebUI and model sync functions",
            ),
            opts=child,
        )
        policy = alicloud.ram.Policy(
            f"{name}-policy",
            alicloud.ram.PolicyArgs(
                policy_name=f"{args.name_prefix}-fc",
                policy_document=pulumi.Output.from_input(args.log_project).apply(
                    lambda project: _policy_document(project, args.lock_bucket)
                ),
                description="sdprov: least privilege for the functions",
            ),
            opts=child,
        )
        alicloud.ram.RolePolicyAttachment(
            f"{name}-attachment",
            alicloud.ram.RolePolicyAttachmentArgs(
                role_name=role.role_name,
                policy_name=policy.policy_name,
                policy_type="Custom",
            ),
            opts=child,
        )
        self.arn = role.arn
        self.role_name = role.role_name
        self.register_outputs({"arn": self.arn, "role_name": self.role_name})
