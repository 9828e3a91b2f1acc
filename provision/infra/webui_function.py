"""The UI (A1111 or ComfyUI) as an FC 3.0 GPU function (custom container), NAS at /mnt/auto.

The image is ours (images/<ui>/, digest-pinned): its entrypoint lays out the NAS and starts the
UI with sdprov's flags, taking the login from `SDPROV_WEBUI_AUTH` (a secret). Alibaba's 2023
image, only when opted into, gets the same flags through its `$EXTRA_ARGS`. `SDPROV_LOCK_DIGEST`
changes with every new lock: a changed environment makes FC replace its instances, so new ones
list the synced set.

One instance by default: cookie session affinity keeps a browser on the instance that holds its
Gradio login, and a `V3ConcurrencyConfig` caps the instances (FC's "maximum instances" is the
function's reserved concurrency). `*.fcapp.run` answers with `Content-Disposition: attachment`,
so a browser downloads the page: `domain` adds a `V3CustomDomain` routed to this function.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Final

import pulumi
import pulumi_alicloud as alicloud

from provision.infra.config import DATA_DIR, MODELS_ROOT, WEBUI_PORT, TriggerAuth, Ui
from provision.infra.fc_access import FcAccess
from provision.infra.fc_placement import FunctionPlacement
from provision.infra.ui_ready import UiReady
from provision.webui.launch import AUTH_ENV, webui_args, with_credentials

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
    ui: Ui = Ui.A1111
    alibaba_image: bool = False
    max_instances: int = 1
    domain: str | None = None
    instance_concurrency: int = 20  # requests per instance (one UI page opens several)
    fc: FcAccess | None = None  # None: do not wait for the UI (tests of the graph only)
    account_id: pulumi.Input[str] = ""
    ready_timeout_seconds: int = 1800


HEALTH_ROUTES: Final = {Ui.A1111: "/internal/ping", Ui.COMFYUI: "/sdprov/health"}
# Cookie affinity (FC3 CookieSessionAffinityConfig): a browser stays on its instance for a
# working day; 6 h is FC's maximum session lifetime.
SESSION_AFFINITY: Final = "GENERATED_COOKIE"
SESSION_CONFIG: Final = json.dumps(
    {"sessionTTLInSeconds": 21600, "sessionIdleTimeoutInSeconds": 3600,
     "sessionConcurrencyPerInstance": 20, "disableSessionIdReuse": False},
    sort_keys=True,
)  # fmt: skip


def cname_target(account_id: str, region: str) -> str:
    """What a custom domain's CNAME points at (FC 3.0: `<account>.<region>.fc.aliyuncs.com`)."""
    return f"{account_id}.{region}.fc.aliyuncs.com"


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


def webui_environment(
    user: str, password: str, lock_digest: str, *, alibaba_image: bool = False
) -> Mapping[str, str]:
    """The UI function's environment. Holds the password: only ever inside a secret Output.

    Alibaba's image expands `$EXTRA_ARGS` unquoted (word splitting, no quote removal), so there
    the credentials cannot contain whitespace or quotes; say so without echoing them.
    """
    if not alibaba_image:
        return {AUTH_ENV: f"{user}:{password}", "SDPROV_LOCK_DIGEST": lock_digest}
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
    url: pulumi.Output[str]  # the custom domain when set, else the trigger URL
    trigger_url: pulumi.Output[str]

    def __init__(
        self, name: str, args: WebuiFunctionArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("sdprov:infra:WebuiFunction", name, None, opts)
        function = self._function(name, args)
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
        self._scaling(name, args, function.function_name)
        self.function_name = function.function_name
        self.function_arn = function.function_arn
        self.trigger_url = trigger.http_trigger.apply(
            lambda t: str((t.url_internet if args.public_url else t.url_intranet) or "")
        )
        self.cname_target: pulumi.Output[str] = pulumi.Output.from_input("")
        self.url = self.trigger_url
        if args.domain:
            self.url = self._custom_domain(name, args, function.function_name)
        self.ready = self._ready(name, args, function)
        self.register_outputs(
            {"function_name": self.function_name, "url": self.url, "cname": self.cname_target}
        )

    def _function(self, name: str, args: WebuiFunctionArgs) -> alicloud.fc.V3Function:
        env: pulumi.Output[dict[str, str]] = pulumi.Output.secret(
            pulumi.Output.all(args.webui_password, args.lock_digest).apply(
                lambda v: dict(
                    webui_environment(
                        args.webui_user, str(v[0]), str(v[1]), alibaba_image=args.alibaba_image
                    )
                )
            )
        )
        return alicloud.fc.V3Function(
            f"{name}-function",
            alicloud.fc.V3FunctionArgs(
                function_name=f"{args.name_prefix}-webui",
                description=f"Stable Diffusion {args.ui.value} (sdprov)",
                runtime="custom-container",
                handler="index.handler",  # required by the API, unused by a custom container
                custom_container_config=alicloud.fc.V3FunctionCustomContainerConfigArgs(
                    image=args.image,
                    port=WEBUI_PORT,
                    # FC routes requests only once this answers: torch and the UI load first.
                    health_check_config=alicloud.fc.V3FunctionCustomContainerConfigHealthCheckConfigArgs(
                        http_get_url=HEALTH_ROUTES[args.ui],
                        initial_delay_seconds=30,
                        period_seconds=10,
                        timeout_seconds=5,
                        failure_threshold=60,
                        success_threshold=1,
                    ),
                ),
                gpu_config=alicloud.fc.V3FunctionGpuConfigArgs(
                    gpu_type=args.gpu_type, gpu_memory_size=args.gpu_memory_mb
                ),
                cpu=args.cpu,
                memory_size=args.memory_mb,
                disk_size=10240,
                timeout=600,
                instance_concurrency=args.instance_concurrency,
                session_affinity=SESSION_AFFINITY,
                session_affinity_config=SESSION_CONFIG,
                internet_access=True,
                role=args.role_arn,
                environment_variables=env,
                vpc_config=args.placement.vpc_config(),
                nas_config=args.placement.nas_config(),
                log_config=args.placement.log_config(instance_metrics=True),
            ),
            opts=pulumi.ResourceOptions(
                parent=self,
                additional_secret_outputs=["environmentVariables"],
                depends_on=list(args.placement.depends_on),
            ),
        )

    def _scaling(self, name: str, args: WebuiFunctionArgs, fn_name: pulumi.Output[str]) -> None:
        child = pulumi.ResourceOptions(parent=self)
        # FC's "maximum instances" for a function: a second GPU instance would break Gradio
        # logins (in-memory sessions) and double the bill.
        alicloud.fc.V3ConcurrencyConfig(
            f"{name}-max-instances",
            alicloud.fc.V3ConcurrencyConfigArgs(
                function_name=fn_name, reserved_concurrency=args.max_instances
            ),
            opts=child,
        )
        if args.provisioned_instances > 0:
            # Warm GPU instances: no cold start, billed while idle (docs/deploy-alibaba.md).
            alicloud.fc.V3ProvisionConfig(
                f"{name}-provisioned",
                alicloud.fc.V3ProvisionConfigArgs(
                    function_name=fn_name,
                    qualifier="LATEST",
                    target=args.provisioned_instances,
                    always_allocate_cpu=False,
                    always_allocate_gpu=False,
                ),
                opts=child,
            )

    def _custom_domain(
        self, name: str, args: WebuiFunctionArgs, fn_name: pulumi.Output[str]
    ) -> pulumi.Output[str]:
        assert args.domain is not None
        domain = alicloud.fc.V3CustomDomain(
            f"{name}-domain",
            alicloud.fc.V3CustomDomainArgs(
                custom_domain_name=args.domain,
                protocol="HTTP",
                auth_config=alicloud.fc.V3CustomDomainAuthConfigArgs(auth_type="anonymous"),
                route_config=alicloud.fc.V3CustomDomainRouteConfigArgs(
                    routes=[
                        alicloud.fc.V3CustomDomainRouteConfigRouteArgs(
                            function_name=fn_name,
                            path="/*",
                            methods=list(HTTP_METHODS),
                            qualifier="LATEST",
                        )
                    ]
                ),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.cname_target = pulumi.Output.from_input(args.account_id).apply(
            lambda a: cname_target(str(a), args.fc.region if args.fc else "")
        )
        return domain.custom_domain_name.apply(lambda d: f"http://{d}")

    def _ready(
        self, name: str, args: WebuiFunctionArgs, function: alicloud.fc.V3Function
    ) -> UiReady | None:
        if args.fc is None:
            return None
        probe = args.public_url and args.trigger_auth is TriggerAuth.ANONYMOUS
        health = HEALTH_ROUTES[args.ui]
        return UiReady(
            f"{name}-ready",
            {
                **args.fc.props(),
                "function_name": function.function_name,
                "image": args.image,
                "lock_digest": args.lock_digest,
                "health_url": self.trigger_url.apply(lambda u: u.rstrip("/") + health)
                if probe
                else "",
                "timeout_seconds": args.ready_timeout_seconds,
            },
            opts=pulumi.ResourceOptions(parent=self),
        )
