"""The OSS calls the mirror makes, on the official SDK (`alibabacloud-oss-v2`).

Why the SDK: it owns V4 request signing, presigning, path-style addressing for an IP
endpoint and the multipart verbs; writing a second signer by hand is the kind of solved
problem we take a well-kept library for. Only control calls and uploads go through it: the
bulk GET of a sync goes through sdprov's own byte path (provision.net.transfer) with a
presigned URL, so resume, verification and the download display are the same as for any source.
Every SDK error becomes a MirrorError naming the object and what to do; the SDK's own
messages (which quote request targets) are never shown.
"""

from __future__ import annotations

import base64
import datetime
import logging
import os
import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

import alibabacloud_oss_v2 as oss

from provision.errors import MirrorError, UsageError
from provision.mirror.credentials import AccessKey, default_access_key
from provision.mirror.location import MirrorLocation
from provision.net.config import USER_AGENT, Timeouts, proxy_for
from provision.net.http import RetryPolicy
from provision.net.policy import redact

T = TypeVar("T")
PRESIGN_TTL: Final = datetime.timedelta(hours=1)  # one open(); each resume presigns again
_ENDPOINT_REGION: Final = re.compile(r"^oss-([a-z0-9-]+?)(?:-internal)?\.aliyuncs\.com$")
SSE: Final = "AES256"  # OSS-managed keys; the bucket's default rule says the same

# The SDK logs request details at DEBUG; keep it quiet like httpx (signed URLs).
logging.getLogger("alibabacloud_oss_v2").setLevel(logging.WARNING)


@dataclass(frozen=True, slots=True, kw_only=True)
class OssSettings:
    """Endpoint and region, from the environment (design.md §8)."""

    endpoint: str  # with scheme
    region: str

    @classmethod
    def from_env(cls, *, region: str | None = None) -> OssSettings:
        raw = os.environ.get("SDPROV_OSS_ENDPOINT", "").strip().rstrip("/")
        if raw and "://" not in raw:
            raw = f"https://{raw}"
        host = urllib.parse.urlsplit(raw).hostname or "" if raw else ""
        found = _ENDPOINT_REGION.match(host)
        region = (
            region
            or os.environ.get("OSS_REGION")
            or os.environ.get("ALIBABA_CLOUD_REGION_ID")
            or (found.group(1) if found else "")
        )
        if not region:
            raise UsageError(
                "no region for the OSS mirror",
                hint="set OSS_REGION (or ALIBABA_CLOUD_REGION_ID), e.g. cn-hangzhou",
            )
        if not raw:
            internal = os.environ.get("SDPROV_OSS_INTERNAL", "").lower() in ("1", "true", "yes")
            raw = f"https://oss-{region}{'-internal' if internal else ''}.aliyuncs.com"
        return cls(endpoint=raw, region=region)


@dataclass(frozen=True, slots=True)
class RemoteObject:
    size: int
    metadata: Mapping[str, str] = field(default_factory=dict)
    encryption: str | None = None


@dataclass(frozen=True, slots=True)
class Part:
    number: int
    size: int
    etag: str  # OSS: the quoted upper-case hex MD5 of the part


class MirrorStore:
    """One bucket (and prefix) of the mirror, with its credentials."""

    def __init__(
        self,
        location: MirrorLocation,
        settings: OssSettings,
        key: AccessKey,
        *,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.location = location
        self.settings = settings
        self._secret = key.secret
        t = Timeouts.from_env()
        policy = retry or RetryPolicy.from_env()
        proxy = proxy_for(settings.endpoint)
        cfg = oss.config.Config(
            region=settings.region,
            endpoint=settings.endpoint,
            credentials_provider=oss.credentials.StaticCredentialsProvider(
                key.key_id, key.secret, key.token
            ),
            connect_timeout=t.connect,
            readwrite_timeout=t.read,
            retryer=oss.retry.StandardRetryer(
                max_attempts=policy.attempts,
                max_backoff=policy.max_delay,
                base_delay=policy.base_delay * 0.2,  # the SDK's own base, scaled like ours
            ),
            user_agent=USER_AGENT,
            proxy_host=_proxy_url(proxy) if proxy is not None else None,
        )
        self._client = oss.Client(cfg)

    @classmethod
    def from_env(cls, location: MirrorLocation) -> MirrorStore:
        return cls(location, OssSettings.from_env(), default_access_key())

    @property
    def bucket(self) -> str:
        return self.location.bucket

    def describe(self, key: str) -> str:
        return self.location.url(key)

    # ------------------------------------------------------------------ reads

    def head(self, key: str) -> RemoteObject | None:
        """Size and metadata of `key`, or None when the mirror lacks it."""
        request = oss.HeadObjectRequest(bucket=self.bucket, key=key)
        try:
            result = self._client.head_object(request)
        except oss.exceptions.OperationError as exc:
            if _status(exc) == 404 and _code(exc) != "NoSuchBucket":
                return None
            raise self._error(exc, key, "read") from None
        except Exception as exc:
            raise self._error(exc, key, "read") from None
        return RemoteObject(
            size=int(result.content_length or 0),
            metadata={k.lower(): v for k, v in (result.metadata or {}).items()},
            encryption=result.server_side_encryption,
        )

    def presign_get(self, key: str) -> str:
        """A GET URL for `key` signed for PRESIGN_TTL. Computed locally; no request is made."""
        request = oss.GetObjectRequest(bucket=self.bucket, key=key)
        result = self._call(lambda: self._client.presign(request, expires=PRESIGN_TTL), key)
        return str(result.url)

    # ------------------------------------------------------------------ multipart

    def initiate(self, key: str, metadata: Mapping[str, str]) -> str:
        request = oss.InitiateMultipartUploadRequest(
            bucket=self.bucket,
            key=key,
            metadata=dict(metadata),
            server_side_encryption=SSE,
            content_type="application/octet-stream",
        )
        result = self._call(lambda: self._client.initiate_multipart_upload(request), key)
        return str(result.upload_id)

    def find_upload(self, key: str) -> str | None:
        """The newest unfinished multipart upload of exactly `key`, to resume it."""
        request = oss.ListMultipartUploadsRequest(bucket=self.bucket, prefix=key)
        result = self._call(lambda: self._client.list_multipart_uploads(request), key)
        uploads = [u for u in (result.uploads or []) if u.key == key and u.upload_id]
        uploads.sort(key=lambda u: u.initiated or datetime.datetime.min)
        return str(uploads[-1].upload_id) if uploads else None

    def list_parts(self, key: str, upload_id: str) -> dict[int, Part]:
        parts: dict[int, Part] = {}
        marker: int | None = None
        while True:
            request = oss.ListPartsRequest(
                bucket=self.bucket, key=key, upload_id=upload_id, part_number_marker=marker
            )
            result = self._call(lambda r=request: self._client.list_parts(r), key)  # type: ignore[misc]
            for part in result.parts or []:
                number = int(part.part_number)
                parts[number] = Part(number, int(part.size or 0), str(part.etag or ""))
            if not result.is_truncated:
                return parts
            marker = int(result.next_part_number_marker)

    def upload_part(self, key: str, upload_id: str, number: int, data: bytes, md5: bytes) -> str:
        request = oss.UploadPartRequest(
            bucket=self.bucket,
            key=key,
            upload_id=upload_id,
            part_number=number,
            body=data,
            content_md5=base64.b64encode(md5).decode(),  # OSS refuses a part that arrives damaged
        )
        result = self._call(lambda: self._client.upload_part(request), key)
        return str(result.etag)

    def complete(self, key: str, upload_id: str, parts: list[Part]) -> None:
        request = oss.CompleteMultipartUploadRequest(
            bucket=self.bucket,
            key=key,
            upload_id=upload_id,
            complete_multipart_upload=oss.CompleteMultipartUpload(
                parts=[oss.UploadPart(part_number=p.number, etag=p.etag) for p in parts]
            ),
        )
        self._call(lambda: self._client.complete_multipart_upload(request), key)

    # ------------------------------------------------------------------ errors

    def _call(self, fn: Callable[[], T], key: str) -> T:
        try:
            return fn()
        except Exception as exc:
            raise self._error(exc, key, "write") from None

    def _error(self, exc: BaseException, key: str, verb: str) -> MirrorError:
        where = self.describe(key)
        status, code = _status(exc), _code(exc)
        if status == 403:
            return MirrorError(
                f"{where}: access denied ({code or 'HTTP 403'})",
                hint=f"the credentials need oss:GetObject/oss:PutObject on {self.location} "
                "(and oss:ListMultipartUploads on the bucket to resume uploads)",
                status=403,
            )
        if code == "NoSuchBucket":
            return MirrorError(
                f"{where}: the bucket {self.bucket!r} does not exist in {self.settings.region}",
                hint="create it with the stack (`sdprov:mirror`) or check OSS_REGION",
                status=404,
            )
        if status:
            return MirrorError(
                f"{where}: OSS answered HTTP {status} ({code or 'no code'}) to a {verb}",
                status=status,
            )
        detail = type(exc.unwrap() if isinstance(exc, oss.exceptions.OperationError) else exc)
        text = (
            f"{where}: could not reach OSS at {redact(self.settings.endpoint)} ({detail.__name__})"
        )
        return MirrorError(
            text.replace(self._secret, "***") if self._secret else text,
            hint="check SDPROV_OSS_ENDPOINT / OSS_REGION and the network",
        )


def _service_error(exc: BaseException) -> Any:
    inner = exc.unwrap() if isinstance(exc, oss.exceptions.OperationError) else exc
    return inner if isinstance(inner, oss.exceptions.ServiceError) else None


def _status(exc: BaseException) -> int:
    error = _service_error(exc)
    return int(error.status_code or 0) if error is not None else 0


def _code(exc: BaseException) -> str:
    error = _service_error(exc)
    return str(error.code or "") if error is not None else ""


def _proxy_url(proxy: Any) -> str:
    auth = ""
    if proxy.username is not None:
        auth = urllib.parse.quote(proxy.username, safe="")
        auth += f":{urllib.parse.quote(proxy.password or '', safe='')}@"
    return f"http://{auth}{proxy.host}:{proxy.port}"
