"""The FC 3.0 API as the deploy host uses it: credentials, the client, and the calls we make.

Credentials follow Alibaba Cloud's default chain, never printed: the stack's provider config
(`alicloud:accessKey`/`secretKey`, handed over as secrets), then the environment (Alibaba's
`ALIBABA_CLOUD_*` names and the provider's `ALICLOUD_*` ones), then the `aliyun` CLI profile named
by `alicloud:profile` (or `ALIBABA_CLOUD_PROFILE`), then the rest of `alibabacloud_credentials`'
default chain (~/.alibabacloud/credentials, ECS RAM role, OIDC).

REST calls (alibabacloud-fc20230330 4.8.3, client.py): `GET /2023-03-30/functions/{name}`
(`state`: Pending → Active | Failed, `stateReason`, `lastUpdateStatus`), async invocations and
tasks (invoke.py), and a synchronous invocation whose response body is the handler's result.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from alibabacloud_credentials.client import Client as CredentialClient
from alibabacloud_credentials.models import Config as CredentialConfig
from alibabacloud_credentials.provider import (
    CLIProfileCredentialsProvider,
    DefaultCredentialsProvider,
)
from alibabacloud_fc20230330 import models as fc_models
from alibabacloud_fc20230330.client import Client
from alibabacloud_tea_openapi import utils_models as openapi_models
from darabonba.runtime import RuntimeOptions

from provision.errors import SdprovError

# Access key environment variables, Alibaba's names first, then the alicloud provider's.
KEY_ENV: Final = (
    (
        "ALIBABA_CLOUD_ACCESS_KEY_ID",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
        "ALIBABA_CLOUD_SECURITY_TOKEN",
    ),
    ("ALICLOUD_ACCESS_KEY", "ALICLOUD_SECRET_KEY", "ALICLOUD_SECURITY_TOKEN"),
)


class CredentialsMissing(SdprovError):
    def __init__(self, detail: str = "") -> None:
        super().__init__(
            "no Alibaba Cloud credentials for the deploy's FC calls"
            + (f" ({detail})" if detail else ""),
            hint="use what the alicloud provider uses: `pulumi config set alicloud:profile "
            "<aliyun CLI profile>`, or export ALIBABA_CLOUD_ACCESS_KEY_ID and "
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET before `pulumi up`",
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class FcEndpoint:
    """Where the FC API is. `endpoint` None → the SDK's regional `fcv3.<region>.aliyuncs.com`."""

    region: str
    endpoint: str | None = None
    protocol: str = "https"
    profile: str | None = None  # an `aliyun` CLI profile name
    access_key_id: str | None = None  # the provider's own config, when set there
    access_key_secret: str | None = None


@dataclass(frozen=True, slots=True)
class FunctionState:
    state: str  # Pending | Active | Failed (FC's `state`)
    reason: str  # FC's `stateReason` (why Pending or Failed), may be ""
    last_update: str  # FC's `lastUpdateStatus`: InProgress | Successful | Failed, may be ""


def credential_client(where: FcEndpoint, environ: Mapping[str, str] | None = None) -> Any:
    env = os.environ if environ is None else environ
    if where.access_key_id and where.access_key_secret:
        return CredentialClient(
            CredentialConfig(
                type="access_key",
                access_key_id=where.access_key_id,
                access_key_secret=where.access_key_secret,
            )
        )
    for key_id, secret, token in KEY_ENV:
        if env.get(key_id) and env.get(secret):
            kind = "sts" if env.get(token) else "access_key"
            return CredentialClient(
                CredentialConfig(
                    type=kind,
                    access_key_id=env[key_id],
                    access_key_secret=env[secret],
                    security_token=env.get(token) or None,
                )
            )
    if where.profile:
        return CredentialClient(provider=CLIProfileCredentialsProvider(profile_name=where.profile))
    return CredentialClient(provider=DefaultCredentialsProvider())


def make_client(where: FcEndpoint, environ: Mapping[str, str] | None = None) -> Client:
    credential = credential_client(where, environ)
    try:
        credential.get_credential()  # fail here, naming the fix, not inside the first call
    except Exception as exc:  # the chain's own error lists every place it looked
        raise CredentialsMissing(type(exc).__name__) from None
    config = openapi_models.Config(
        credential=credential,
        region_id=where.region,
        endpoint=where.endpoint,
        protocol=where.protocol,
    )
    return Client(config)


def status_code(exc: BaseException) -> int | None:
    code = getattr(exc, "status_code", None) or getattr(exc, "statusCode", None)
    return int(code) if isinstance(code, int) else None


class FcFunctions:
    """Function state and synchronous invocation, with the SDK's errors kept as they are."""

    def __init__(self, client: Client, qualifier: str = "LATEST") -> None:
        self.client = client
        self.qualifier = qualifier

    def state(self, function_name: str) -> FunctionState | None:
        """None when FC has no such function (yet)."""
        try:
            response = self.client.get_function_with_options(
                function_name, fc_models.GetFunctionRequest(qualifier=self.qualifier), {},
                RuntimeOptions(),
            )  # fmt: skip
        except Exception as exc:
            if status_code(exc) == 404:
                return None
            raise
        body = response.body
        return FunctionState(
            state=str(getattr(body, "state", None) or ""),
            reason=str(getattr(body, "state_reason", None) or ""),
            last_update=str(getattr(body, "last_update_status", None) or ""),
        )

    def invoke_sync(self, function_name: str, payload: bytes) -> bytes:
        """The handler's return value (FC puts it in the response body, no invite needed)."""
        response = self.client.invoke_function_with_options(
            function_name,
            fc_models.InvokeFunctionRequest(body=io.BytesIO(payload), qualifier=self.qualifier),
            fc_models.InvokeFunctionHeaders(x_fc_invocation_type="Sync"),
            RuntimeOptions(),
        )
        body = response.body
        if hasattr(body, "read"):
            return bytes(body.read())
        return body if isinstance(body, bytes) else str(body or "").encode()
