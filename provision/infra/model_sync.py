"""The model sync: a CPU FC 3.0 function on the models NAS, run as an async task by `pulumi up`.

NAS is reachable only inside the VPC, so the sync runs there (design.md §7), as a python3.12
function mounting the same NAS at /mnt/auto with `V3AsyncInvokeConfig(async_task=True)` (task
ids and statuses; no automatic retry: a failed sync must surface, not repeat silently).

`SyncRun` is a dynamic resource whose provider invokes that function with the lock and waits
(`provision.cloudsync.invoke`). Its inputs are keyed on the lock digest: the same lock makes no
diff, so no invocation; a new lock updates it, which invokes once with task id
`sdprov-<digest>-<n>`. FC itself refuses to run a task id twice, so a lost state or a retried
`pulumi up` cannot sync one lock twice either. Its `lock_digest` output feeds the WebUI function's
environment, so WebUI instances roll only after the sync succeeded.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import pulumi
import pulumi.dynamic
import pulumi_alicloud as alicloud

from provision.cloudsync.handler import DEFAULT_DATA_DIR, DEFAULT_MODELS_ROOT
from provision.errors import InfraConfigError
from provision.infra.config import DATA_DIR, MODELS_ROOT
from provision.infra.fc_access import SECRET_PROPS, FcAccess, endpoint_from, public_outs
from provision.infra.fc_placement import FunctionPlacement

# FC 3.0 limits an async invocation's payload to 128 KB; stay clearly below it.
INLINE_PAYLOAD_LIMIT: Final = 100 * 1024
SYNC_FUNCTION_TIMEOUT: Final = 86400  # the FC maximum; the deploy waits sdprov:syncTimeoutSeconds

assert (DEFAULT_MODELS_ROOT, DEFAULT_DATA_DIR) == (MODELS_ROOT, DATA_DIR)  # handler == WebUI


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelSyncArgs:
    name_prefix: str
    code_zip_b64: str
    role_arn: pulumi.Input[str]
    placement: FunctionPlacement  # VPC, NAS at /mnt/auto, logs
    civitai_token: pulumi.Input[str]
    hf_token: pulumi.Input[str]
    lock_text: str
    lock_digest: str
    model_count: int
    timeout_seconds: int
    fc: FcAccess
    ready_timeout_seconds: int = 600
    lock_bucket: str | None = None
    webui_urls: pulumi.Input[str] = ""  # ECS: WebUI base URLs to refresh after a sync
    webui_auth: pulumi.Input[str] = ""  # ECS: `user:password` for those refresh calls
    prune: bool = False  # `sdprov sync --prune`: the mass-removal guard is lifted
    mirror_env: Mapping[str, str] = field(default_factory=dict)  # provision.infra.mirror
    shards: int = 1  # sdprov:syncShards: shard tasks before the coordinating one


class SyncRunProvider(pulumi.dynamic.ResourceProvider):
    """Wait for the function, invoke, wait for the task. Credentials: provision.cloudsync.fc_api."""

    KEYS: Final = ("lock_digest", "function_name")

    def diff(
        self, _id: str, _olds: dict[str, Any], _news: dict[str, Any]
    ) -> pulumi.dynamic.DiffResult:
        changed = [k for k in self.KEYS if _olds.get(k) != _news.get(k)]
        return pulumi.dynamic.DiffResult(
            changes=bool(changed), replaces=[], delete_before_replace=False
        )

    def create(self, props: dict[str, Any]) -> pulumi.dynamic.CreateResult:
        outs = self._run(props)
        return pulumi.dynamic.CreateResult(id_=str(outs["task_id"]), outs=outs)

    def update(
        self, _id: str, _olds: dict[str, Any], _news: dict[str, Any]
    ) -> pulumi.dynamic.UpdateResult:
        return pulumi.dynamic.UpdateResult(outs=self._run(_news))

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Nothing to undo: the models stay on NAS until the NAS itself is destroyed."""

    @staticmethod
    def _run(props: dict[str, Any]) -> dict[str, Any]:
        from provision.cloudsync.fc_api import FcFunctions, make_client
        from provision.cloudsync.invoke import AsyncTasks, ResultReader
        from provision.cloudsync.ready import Waiting, wait_active
        from provision.cloudsync.shards import sync_sharded

        client = make_client(endpoint_from(props))
        name = str(props["function_name"])
        poll = float(props.get("poll_interval") or 10.0)
        # An async task sent to a function still Pending is queued, but one whose function then
        # goes Failed never runs: invoke only once FC says the sync function is Active.
        functions = FcFunctions(client)
        wait_active(
            functions, name, Waiting(timeout=float(props["ready_timeout"]), poll_interval=poll)
        )
        outcome = sync_sharded(
            AsyncTasks(client, name, "LATEST"),
            lock_digest=str(props["lock_digest"]),
            payload=str(props["payload"]).encode("utf-8"),
            shards=int(props.get("shards") or 1),
            timeout=float(props["timeout_seconds"]),
            poll_interval=poll,
            read_result=ResultReader(functions, name),
        )
        return {
            **public_outs(props),
            "task_id": outcome.task_id,
            "status": outcome.status,
            "reused": outcome.reused,
            "attempt": outcome.attempt,
        }


class SyncRun(pulumi.dynamic.Resource):
    task_id: pulumi.Output[str]
    status: pulumi.Output[str]
    lock_digest: pulumi.Output[str]

    def __init__(
        self, name: str, props: dict[str, Any], opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(
            SyncRunProvider(),
            name,
            {"task_id": None, "status": None, "reused": None, "attempt": None, **props},
            opts,
        )


def sync_payload(args: ModelSyncArgs) -> str:
    """The lock itself, or an OSS reference when it is too large to be an async payload."""
    if len(args.lock_text.encode("utf-8")) <= INLINE_PAYLOAD_LIMIT:
        return args.lock_text
    if not args.lock_bucket:
        raise InfraConfigError(
            f"the lockfile is larger than {INLINE_PAYLOAD_LIMIT // 1024} KB, too large to pass "
            "to the sync function directly",
            hint="pulumi config set sdprov:lockBucket <an OSS bucket in this region>",
        )
    return json.dumps(
        {
            "oss": {
                "bucket": args.lock_bucket,
                "key": lock_object_key(args.lock_digest),
                "endpoint": f"oss-{args.fc.region}-internal.aliyuncs.com",
            }
        },
        sort_keys=True,
    )


def lock_object_key(lock_digest: str) -> str:
    return f"sdprov-locks/{lock_digest}.json"


class ModelSync(pulumi.ComponentResource):
    function_name: pulumi.Output[str]
    task_id: pulumi.Output[str]
    lock_digest: pulumi.Output[str]

    def __init__(
        self, name: str, args: ModelSyncArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("sdprov:infra:ModelSync", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        function = self._function(name, args)
        async_config = alicloud.fc.V3AsyncInvokeConfig(
            f"{name}-async",
            alicloud.fc.V3AsyncInvokeConfigArgs(
                function_name=function.function_name,
                qualifier="LATEST",
                async_task=True,
                max_async_retry_attempts=0,
                max_async_event_age_in_seconds=SYNC_FUNCTION_TIMEOUT,
            ),
            opts=child,
        )
        depends: list[pulumi.Resource] = [function, async_config]
        payload = sync_payload(args)
        if payload is not args.lock_text and args.lock_bucket:
            depends.append(
                alicloud.oss.BucketObject(
                    f"{name}-lock-object",
                    alicloud.oss.BucketObjectArgs(
                        bucket=args.lock_bucket,
                        key=lock_object_key(args.lock_digest),
                        content=args.lock_text,
                        content_type="application/json",
                    ),
                    opts=child,
                )
            )
        run = SyncRun(
            f"{name}-run",
            {
                **args.fc.props(),
                "function_name": function.function_name,
                "ready_timeout": args.ready_timeout_seconds,
                "lock_digest": args.lock_digest,
                "model_count": args.model_count,
                "payload": payload,
                "timeout_seconds": args.timeout_seconds,
                "shards": args.shards,
            },
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=depends, additional_secret_outputs=list(SECRET_PROPS)
            ),
        )
        self.function_name = function.function_name
        self.task_id = run.task_id
        self.lock_digest = run.lock_digest
        self.register_outputs(
            {
                "function_name": self.function_name,
                "task_id": self.task_id,
                "lock_digest": self.lock_digest,
            }
        )

    def _function(self, name: str, args: ModelSyncArgs) -> alicloud.fc.V3Function:
        env: pulumi.Output[dict[str, str]] = pulumi.Output.secret(
            pulumi.Output.all(
                args.civitai_token, args.hf_token, args.webui_urls, args.webui_auth
            ).apply(
                lambda v: {
                    "CIVITAI_TOKEN": str(v[0]),
                    "HF_TOKEN": str(v[1]),
                    "SDPROV_WEBUI_URLS": str(v[2]),
                    "SDPROV_WEBUI_AUTH": str(v[3]),
                    "SDPROV_MODELS_ROOT": MODELS_ROOT,
                    "SDPROV_DATA_DIR": DATA_DIR,
                    "SDPROV_SYNC_PRUNE": "1" if args.prune else "0",
                    **args.mirror_env,
                }
            )
        )
        return alicloud.fc.V3Function(
            f"{name}-function",
            alicloud.fc.V3FunctionArgs(
                function_name=f"{args.name_prefix}-sync",
                description="sdprov model sync: `sdprov sync` on the models NAS",
                runtime="python3.12",
                handler="index.handler",
                code=alicloud.fc.V3FunctionCodeArgs(zip_file=args.code_zip_b64),
                cpu=2,
                memory_size=4096,
                disk_size=10240,  # partial downloads live on NAS; this is for pip-free temp space
                timeout=SYNC_FUNCTION_TIMEOUT,
                instance_concurrency=1,
                internet_access=True,  # Civitai and Hugging Face
                role=args.role_arn,
                environment_variables=env,
                vpc_config=args.placement.vpc_config(),
                nas_config=args.placement.nas_config(),
                log_config=args.placement.log_config(instance_metrics=False),
            ),
            opts=pulumi.ResourceOptions(
                parent=self,
                additional_secret_outputs=["environmentVariables"],
                depends_on=list(args.placement.depends_on),
            ),
        )
