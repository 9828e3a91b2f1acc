"""A loopback fake of the OSS REST API, the part the mirror uses, path-style (`/bucket/key`).

It speaks what the official SDK (`alibabacloud-oss-v2`) sends and parses: HEAD/GET (Range,
presigned V4 query or an `OSS4-HMAC-SHA256` header), InitiateMultipartUpload, UploadPart (with
Content-MD5 checked as OSS does), ListParts, ListMultipartUploads, CompleteMultipartUpload,
AbortMultipartUpload, PutObject; errors as OSS error XML (on HEAD, base64 in `x-oss-err`).
Signatures are not recomputed: a request must carry the expected access key id and a signature,
and the request log lets tests assert that no secret ever travelled.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from urllib.parse import unquote

from tests.fakes.common import (
    Content,
    FakeHandler,
    FakeHosts,
    Faults,
    LoopbackServer,
    Recorded,
)

ACCESS_KEY_ID = "LTAI5tFakeMirrorKeyId"
ACCESS_KEY_SECRET = "fake-mirror-secret-0123456789abcdef"


@dataclass
class StoredObject:
    content: Content  # a Path when the server spools to disk (served with sendfile)
    metadata: dict[str, str]
    encryption: str | None
    acl: str | None = None
    etag: str = ""  # computed once when stored (hashing a GB object per GET would be the bench)

    def __post_init__(self) -> None:
        self.etag = self.etag or _etag(self.data)

    @property
    def data(self) -> bytes:
        return self.content.read_bytes() if isinstance(self.content, Path) else self.content


@dataclass
class Upload:
    bucket: str
    key: str
    metadata: dict[str, str]
    encryption: str | None
    initiated: float
    parts: dict[int, bytes] = field(default_factory=dict)


def _etag(data: bytes) -> str:
    return f'"{hashlib.md5(data).hexdigest().upper()}"'  # noqa: S324 (OSS part ETag)


def _xml(root: str, children: list[tuple[str, object]]) -> bytes:
    element = ET.Element(root)
    _fill(element, children)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(element)


def _fill(element: ET.Element, children: list[tuple[str, object]]) -> None:
    for name, value in children:
        child = ET.SubElement(element, name)
        if isinstance(value, list):
            _fill(child, value)
        else:
            child.text = str(value)


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(ts))


class OssServer(FakeHosts):
    """`with OssServer(buckets=("models",)) as oss:` then `SDPROV_OSS_ENDPOINT=oss.endpoint`."""

    def __init__(
        self, *, buckets: tuple[str, ...] = ("sdprov-mirror",), spool: Path | None = None
    ) -> None:
        self.spool = spool  # completed objects go to files here (benchmarks: sendfile)
        self.faults = Faults()
        self.requests: list[Recorded] = []
        self.buckets = set(buckets)
        self.objects: dict[tuple[str, str], StoredObject] = {}
        self.uploads: dict[str, Upload] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._host = LoopbackServer("oss", self._route, self.faults, self.requests)
        self._hosts = (self._host,)
        self.endpoint = self._host.url

    # ----------------------------------------------------------------- test helpers

    def put(self, bucket: str, key: str, data: bytes, **metadata: str) -> None:
        self.objects[(bucket, key)] = StoredObject(data, dict(metadata), "AES256")

    def corrupt(self, bucket: str, key: str) -> None:
        """Flip one byte of a stored object (same size: only a hash can tell)."""
        obj = self.objects[(bucket, key)]
        data = obj.data
        obj.content = data[:-1] + bytes([data[-1] ^ 0xFF])  # the ETag stays: OSS would not know

    def keys(self, bucket: str) -> list[str]:
        return sorted(k for b, k in self.objects if b == bucket)

    def of(self, method: str, marker: str = "") -> list[Recorded]:
        """Requests with this method whose path or query mentions `marker`."""
        return [
            r
            for r in self.requests
            if r.method == method and (marker in r.path or marker in r.query)
        ]

    # ----------------------------------------------------------------- routing

    def _route(self, h: FakeHandler) -> None:
        bucket, _, key = h.route_path.lstrip("/").partition("/")
        key = unquote(key)
        if not self._authorised(h):
            self._error(h, 403, "AccessDenied", "The request signature or key id is not valid.")
            return
        if bucket not in self.buckets:
            self._error(h, 404, "NoSuchBucket", "The specified bucket does not exist.")
            return
        q = h.query
        if h.command == "GET" and "uploads" in q and not key:
            self._list_uploads(h, bucket, q.get("prefix", ""))
        elif h.command == "POST" and "uploads" in q:
            self._initiate(h, bucket, key)
        elif h.command == "PUT" and "uploadId" in q:
            self._upload_part(h, q["uploadId"], int(q.get("partNumber", "0")))
        elif h.command == "GET" and "uploadId" in q:
            self._list_parts(h, q["uploadId"])
        elif h.command == "POST" and "uploadId" in q:
            self._complete(h, bucket, key, q["uploadId"])
        elif h.command == "DELETE" and "uploadId" in q:
            with self._lock:
                self.uploads.pop(q["uploadId"], None)
            h.respond(204)
        elif h.command == "PUT":
            self._put_object(h, bucket, key)
        elif h.command in ("GET", "HEAD"):
            self._get(h, bucket, key)
        else:
            self._error(h, 405, "MethodNotAllowed", "The specified method is not allowed.")

    def _authorised(self, h: FakeHandler) -> bool:
        if "x-oss-signature" in h.query:
            credential = h.query.get("x-oss-credential", "")
            expires = int(h.query.get("x-oss-expires", "0") or 0)
            signed_at = time.mktime(time.strptime(h.query.get("x-oss-date", ""), "%Y%m%dT%H%M%SZ"))
            fresh = time.mktime(time.gmtime()) <= signed_at + expires
            return credential.startswith(f"{ACCESS_KEY_ID}/") and fresh
        auth = h.headers.get("Authorization") or ""
        return auth.startswith("OSS4-HMAC-SHA256 ") and f"Credential={ACCESS_KEY_ID}/" in auth

    def _error(self, h: FakeHandler, status: int, code: str, message: str) -> None:
        body = _xml(
            "Error",
            [("Code", code), ("Message", message), ("RequestId", "5F0000000000000000000000"),
             ("HostId", "fake-oss"), ("EC", "0000-00000000")],
        )  # fmt: skip
        headers = {"x-oss-request-id": "5F0000000000000000000000", "x-oss-ec": "0000-00000000"}
        if h.command == "HEAD":
            headers["x-oss-err"] = base64.b64encode(body).decode()
        h.respond(status, body, content_type="application/xml", headers=headers)

    # ----------------------------------------------------------------- objects

    def _get(self, h: FakeHandler, bucket: str, key: str) -> None:
        obj = self.objects.get((bucket, key))
        if obj is None:
            self._error(h, 404, "NoSuchKey", "The specified key does not exist.")
            return
        headers = {
            "ETag": obj.etag,
            "Last-Modified": formatdate(usegmt=True),
            "x-oss-object-type": "Multipart",
            "x-oss-request-id": "5F0000000000000000000001",
            **{f"x-oss-meta-{k}": v for k, v in obj.metadata.items()},
        }
        if obj.encryption:
            headers["x-oss-server-side-encryption"] = obj.encryption
        h.serve_content(obj.content, headers=headers)

    def _put_object(self, h: FakeHandler, bucket: str, key: str) -> None:
        obj = StoredObject(
            h.request_body,
            self._user_metadata(h),
            h.headers.get("x-oss-server-side-encryption"),
            h.headers.get("x-oss-object-acl"),
        )
        self.objects[(bucket, key)] = obj
        h.respond(200, headers={"ETag": obj.etag})

    @staticmethod
    def _user_metadata(h: FakeHandler) -> dict[str, str]:
        prefix = "x-oss-meta-"
        return {
            k.lower()[len(prefix) :]: v
            for k, v in h.headers.items()
            if k.lower().startswith(prefix)
        }

    # ----------------------------------------------------------------- multipart

    def _initiate(self, h: FakeHandler, bucket: str, key: str) -> None:
        upload_id = f"0004B9{next(self._ids):026X}"
        with self._lock:
            self.uploads[upload_id] = Upload(
                bucket, key, self._user_metadata(h),
                h.headers.get("x-oss-server-side-encryption"), time.time(),
            )  # fmt: skip
        body = _xml(
            "InitiateMultipartUploadResult",
            [("Bucket", bucket), ("Key", key), ("UploadId", upload_id)],
        )
        h.respond(200, body, content_type="application/xml")

    def _upload_part(self, h: FakeHandler, upload_id: str, number: int) -> None:
        upload = self.uploads.get(upload_id)
        if upload is None:
            self._error(h, 404, "NoSuchUpload", "The specified upload does not exist.")
            return
        md5 = h.headers.get("Content-MD5")
        if md5 is not None and base64.b64decode(md5) != hashlib.md5(h.request_body).digest():  # noqa: S324
            self._error(h, 400, "InvalidDigest", "The Content-MD5 you specified is not valid.")
            return
        with self._lock:
            upload.parts[number] = h.request_body
        h.respond(200, headers={"ETag": _etag(h.request_body)})

    def _list_parts(self, h: FakeHandler, upload_id: str) -> None:
        upload = self.uploads.get(upload_id)
        if upload is None:
            self._error(h, 404, "NoSuchUpload", "The specified upload does not exist.")
            return
        parts: list[tuple[str, object]] = [
            ("Part", [("PartNumber", n), ("LastModified", _iso(upload.initiated)),
                      ("ETag", _etag(data)), ("Size", len(data))])
            for n, data in sorted(upload.parts.items())
        ]  # fmt: skip
        body = _xml(
            "ListPartsResult",
            [("Bucket", upload.bucket), ("Key", upload.key), ("UploadId", upload_id),
             ("PartNumberMarker", 0), ("NextPartNumberMarker", max(upload.parts, default=0)),
             ("MaxParts", 1000), ("IsTruncated", "false"), *parts],
        )  # fmt: skip
        h.respond(200, body, content_type="application/xml")

    def _list_uploads(self, h: FakeHandler, bucket: str, prefix: str) -> None:
        found: list[tuple[str, object]] = [
            ("Upload", [("Key", u.key), ("UploadId", upload_id),
                        ("Initiated", _iso(u.initiated))])
            for upload_id, u in sorted(self.uploads.items())
            if u.bucket == bucket and u.key.startswith(prefix)
        ]  # fmt: skip
        body = _xml(
            "ListMultipartUploadsResult",
            [("Bucket", bucket), ("Prefix", prefix), ("MaxUploads", 1000),
             ("IsTruncated", "false"), *found],
        )  # fmt: skip
        h.respond(200, body, content_type="application/xml")

    def _complete(self, h: FakeHandler, bucket: str, key: str, upload_id: str) -> None:
        upload = self.uploads.get(upload_id)
        if upload is None:
            self._error(h, 404, "NoSuchUpload", "The specified upload does not exist.")
            return
        listed = [
            (int(p.findtext("PartNumber") or 0), p.findtext("ETag") or "")
            for p in ET.fromstring(h.request_body).iter("Part")  # noqa: S314 (our own client)
        ]
        if [n for n, _ in listed] != sorted(upload.parts) or any(
            _etag(upload.parts.get(n, b"")) != etag for n, etag in listed
        ):
            self._error(h, 400, "InvalidPart", "One or more of the specified parts not found.")
            return
        data = b"".join(upload.parts[n] for n, _ in listed)
        content: Content = data
        if self.spool is not None:
            content = self.spool / f"{upload_id}.object"
            content.write_bytes(data)
        with self._lock:
            self.uploads.pop(upload_id, None)
            self.objects[(bucket, key)] = StoredObject(
                content, upload.metadata, upload.encryption, etag=_etag(data)
            )
        body = _xml(
            "CompleteMultipartUploadResult",
            [("Bucket", bucket), ("Key", key), ("ETag", _etag(data))],
        )
        h.respond(200, body, content_type="application/xml")
