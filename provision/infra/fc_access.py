"""How the deploy's own steps (sync invocation, readiness) reach the FC API, as dynamic-resource
inputs: region and endpoint in clear; the provider's access key, when the stack config holds one,
as secrets (encrypted in state, never in outputs); otherwise the credential chain on the host.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import pulumi

from provision.cloudsync.fc_api import FcEndpoint

SECRET_PROPS: Final = ("access_key_id", "access_key_secret")


@dataclass(frozen=True, slots=True, kw_only=True)
class FcAccess:
    region: str
    endpoint: str | None = None
    protocol: str = "https"
    profile: str | None = None
    access_key_id: pulumi.Output[str] | None = None
    access_key_secret: pulumi.Output[str] | None = None

    @classmethod
    def from_provider_config(
        cls, region: str, endpoint: str | None, profile: str | None
    ) -> FcAccess:
        provider = pulumi.Config("alicloud")
        key_id, secret = provider.get_secret("accessKey"), provider.get_secret("secretKey")
        return cls(region=region, endpoint=endpoint, profile=profile,
                   access_key_id=key_id, access_key_secret=secret)  # fmt: skip

    def props(self) -> dict[str, Any]:
        props: dict[str, Any] = {
            "region": self.region,
            "endpoint": self.endpoint or "",
            "protocol": self.protocol,
            "profile": self.profile or "",
        }
        if self.access_key_id is not None and self.access_key_secret is not None:
            props["access_key_id"] = pulumi.Output.secret(self.access_key_id)
            props["access_key_secret"] = pulumi.Output.secret(self.access_key_secret)
        return props


def endpoint_from(props: dict[str, Any]) -> FcEndpoint:
    return FcEndpoint(
        region=str(props["region"]),
        endpoint=str(props.get("endpoint") or "") or None,
        protocol=str(props.get("protocol") or "https"),
        profile=str(props.get("profile") or "") or None,
        access_key_id=str(props.get("access_key_id") or "") or None,
        access_key_secret=str(props.get("access_key_secret") or "") or None,
    )


def public_outs(props: dict[str, Any]) -> dict[str, Any]:
    """What a dynamic resource may keep as outputs: everything but the access key."""
    return {k: v for k, v in props.items() if k not in SECRET_PROPS}
