"""Stable Diffusion WebUI as an FC 3.0 GPU function (custom container) with the NAS at /mnt/auto.

Alibaba's public image (`aliyun-fc/fc-stable-diffusion`) starts A1111 from
`/docker/entrypoint.sh` and appends `$EXTRA_ARGS` to its command line; we put the design.md §6
flags there, plus the WebUI login (a secret). `DISABLE_AGENT` makes the image run WebUI itself
on 7860 instead of behind its `sd-agent` proxy. `SDPROV_LOCK_DIGEST` changes with every new
lock: a changed environment makes FC replace its instances, so new ones list the synced set.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath

import pulumi
import pulumi_alicloud as alicloud

from provision.infra.config import (
    DATA_DIR,
    MODELS_ROOT,
    WEBUI_PORT,
    TriggerAuth,
)
from provision.infra.fc_placement import FunctionPlacement
from provision.webui.launch import webui_args, with_credentials

HTTP_METHODS = ("GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS")


@dataclass(frozen=True, slots=True, kw_only=True)
class WebuiFunctionArgs:
    name_prefix: str
    image: str
    gpu_type: str
    gpu_memory_mb: int
    cpu: float
    memory_mb: int
    role_arn: pulumi.Input[str]
    placement: FunctionPlacement  # VPC, NAS at /mnt/auto, logs
    webui_user: str
    webui_password: pulumi.Input[str]
    lock_digest: pulumi.Input[str]
    provisioned_instances: int = 0
    trigger_auth: TriggerAuth = TriggerAuth.ANONYMOUS
    public_url: bool = True
    instance_concurrency: int = 10


def trigger_config(auth: TriggerAuth, public_url: bool) -> str:
    """The HTTP trigger's JSON config (reference/alicloud.md §1.3)."""
    return json.dumps(
        {
            "authType": auth.value,
            "methods": list(HTTP_METHODS),
            "disableURLInternet": not public_url,
        },
        sort_keys=True,
    )


def webui_environment(user: str, password: str, lock_digest: str) -> Mapping[str, str]:
    """The WebUI function's environment. Holds the password: only ever inside a secret Output.

    The image expands `$EXTRA_ARGS` unquoted (word splitting, no quote removal), so the
    credentials cannot contain whitespace or quotes; say so without echoing them.
    """
    if any(c.isspace() or c in "'\"\\" for c in f"{user}:{password}"):
        raise ValueError(
            "sdprov:webuiUser/webuiPassword must not contain spaces or quotes: Alibaba's image "
            "word-splits $EXTRA_ARGS"
        )
    flags = webui_args(PurePosixPath(MODELS_ROOT), PurePosixPath(DATA_DIR), port=WEBUI_PORT,
                       auth=True)  # fmt: skip
    return {
        "EXTRA_ARGS": shlex.join(with_credentials(flags, f"{user}:{password}")),
        "DISABLE_AGENT": "1",
        "SD_WEBUI_CACHE_FILE": f"{DATA_DIR}/cache.json",
        "SDPROV_LOCK_DIGEST": lock_digest,
    }


class WebuiFunction(pulumi.ComponentResource):
    function_name: pulumi.Output[str]
    function_arn: pulumi.Output[str]
    url: pulumi.Output[str]

    def __init__(
        self, name: str, args: WebuiFunctionArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("sdprov:infra:WebuiFunction", name, None, opts)
        env: pulumi.Output[dict[str, str]] = pulumi.Output.secret(
            pulumi.Output.all(args.webui_password, args.lock_digest).apply(
                lambda v: dict(webui_environment(args.webui_user, str(v[0]), str(v[1])))
            )
        )
        function = alicloud.fc.V3Function(
            f"{name}-function",
            alicloud.fc.V3FunctionArgs(
                function_name=f"{args.name_prefix}-webui",
                description="Stable Diffusion WebUI (sdprov)",
                runtime="custom-container",
                handler="index.handler",  # required by the API, unused by a custom container
                custom_container_config=alicloud.fc.V3FunctionCustomContainerConfigArgs(
                    image=args.image, port=WEBUI_PORT
                ),
                gpu_config=alicloud.fc.V3FunctionGpuConfigArgs(
                    gpu_type=args.gpu_type, gpu_memory_size=args.gpu_memory_mb
                ),
                cpu=args.cpu,
                memory_size=args.memory_mb,
                disk_size=10240,
                timeout=600,
                instance_concurrency=args.instance_concurrency,
                internet_access=True,
                role=args.role_arn,
                environment_variables=env,
                vpc_config=args.placement.vpc_config(),
                nas_config=args.placement.nas_config(),
                log_config=args.placement.log_config(instance_metrics=True),
            ),
            opts=pulumi.ResourceOptions(
                parent=self, additional_secret_outputs=["environmentVariables"]
            ),
        )
        trigger = alicloud.fc.V3Trigger(
            f"{name}-http",
            alicloud.fc.V3TriggerArgs(
                function_name=function.function_name,
                trigger_name="http",
                trigger_type="http",
                qualifier="LATEST",
                trigger_config=trigger_config(args.trigger_auth, args.public_url),
                description="WebUI over HTTP; WebUI's own login guards it",
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        if args.provisioned_instances > 0:
            # Warm GPU instances: no cold start, billed while idle (docs/deploy-alibaba.md).
            alicloud.fc.V3ProvisionConfig(
                f"{name}-provisioned",
                alicloud.fc.V3ProvisionConfigArgs(
                    function_name=function.function_name,
                    qualifier="LATEST",
                    target=args.provisioned_instances,
                    always_allocate_cpu=False,
                    always_allocate_gpu=False,
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.function_name = function.function_name
        self.function_arn = function.function_arn
        self.url = trigger.http_trigger.apply(
            lambda t: str((t.url_internet if args.public_url else t.url_intranet) or "")
        )
        self.register_outputs(
            {
                "function_name": self.function_name,
                "function_arn": self.function_arn,
                "url": self.url,
            }
        )
