"""`pulumi up` ends only when the UI serves: a dynamic resource that waits for it.

It waits for the UI function to be Active (FC pulled the image) and then for its health route to
answer 2xx through the trigger URL (open routes: `/internal/ping` on A1111, `/sdprov/health` in
front of ComfyUI), bounded by `sdprov:readyTimeoutSeconds`. It is replaced with every new image or
lock, so each rollout is waited for. Without an internet URL or with signed triggers the deploy
host cannot probe: then only Active is waited for, and the output says so.
"""

from __future__ import annotations

from typing import Any, Final

import pulumi
import pulumi.dynamic

from provision.infra.fc_access import SECRET_PROPS, endpoint_from, public_outs


class UiReadyProvider(pulumi.dynamic.ResourceProvider):
    KEYS: Final = ("function_name", "image", "lock_digest", "health_url")

    def diff(
        self, _id: str, _olds: dict[str, Any], _news: dict[str, Any]
    ) -> pulumi.dynamic.DiffResult:
        changed = [k for k in self.KEYS if _olds.get(k) != _news.get(k)]
        return pulumi.dynamic.DiffResult(
            changes=bool(changed), replaces=[], delete_before_replace=False
        )

    def create(self, props: dict[str, Any]) -> pulumi.dynamic.CreateResult:
        return pulumi.dynamic.CreateResult(id_=str(props["function_name"]), outs=self._wait(props))

    def update(
        self, _id: str, _olds: dict[str, Any], _news: dict[str, Any]
    ) -> pulumi.dynamic.UpdateResult:
        return pulumi.dynamic.UpdateResult(outs=self._wait(_news))

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Nothing to undo: waiting left nothing behind."""

    @staticmethod
    def _wait(props: dict[str, Any]) -> dict[str, Any]:
        from provision.cloudsync.fc_api import FcFunctions, make_client
        from provision.cloudsync.ready import Waiting, wait_active, wait_serving

        waiting = Waiting(
            timeout=float(props["timeout_seconds"]),
            poll_interval=float(props.get("poll_interval") or 10.0),
        )
        functions = FcFunctions(make_client(endpoint_from(props)))
        wait_active(functions, str(props["function_name"]), waiting)
        url = str(props.get("health_url") or "")
        if url:
            wait_serving(url, waiting)
        return {**public_outs(props), "checked": "health route" if url else "Active only"}


class UiReady(pulumi.dynamic.Resource):
    checked: pulumi.Output[str]

    def __init__(
        self, name: str, props: dict[str, Any], opts: pulumi.ResourceOptions | None = None
    ) -> None:
        opts = pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(additional_secret_outputs=list(SECRET_PROPS))
        )
        super().__init__(UiReadyProvider(), name, {"checked": None, **props}, opts)
