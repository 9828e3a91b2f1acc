"""Shared machinery of the loopback fakes.

Every fake host is a ``ThreadingHTTPServer`` bound to ``("127.0.0.1", 0)`` and run in a daemon
thread. The pieces here are host-agnostic: the request log, the fault knobs, presigned-URL
signing, content digests and the body writer (ranges, sendfile, throttling, cut connections).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.server
import itertools
import json
import math
import re
import secrets
import socket
import struct
import sys
import threading
import time
import traceback
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from types import TracebackType
from typing import Final, Self
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

Content = bytes | Path

CHUNK: Final = 1 << 20
# AutoV1 (A1111 legacy hash) reads 0x10000 bytes at 0x100000 and needs a file of at least 2 MiB.
AUTOV1_OFFSET: Final = 0x100000
AUTOV1_LENGTH: Final = 0x10000
AUTOV1_MIN_SIZE: Final = 0x200000

HTML_ERROR_PAGE: Final = b"<html>login</html>"
JSON_ERROR_PAGE: Final = (
    b'{"error":"Unauthorized","message":"The creator of this asset requires you to be logged in'
    b' to download it"}'
)
_RANGE_RE: Final = re.compile(r"^bytes=(\d*)-(\d*)$")
_BODYLESS_STATUSES: Final = frozenset({204, 304})


@dataclass(frozen=True)
class Recorded:
    """One request as a fake saw it."""

    host: str  # "api" | "storage" | "hf" | "cdn"
    method: str
    path: str  # path only, exactly as sent (still percent-encoded)
    query: dict[str, str]  # decoded; the last value wins when a key repeats
    headers: dict[str, str]  # lower-cased names


# --------------------------------------------------------------------------- faults


@dataclass
class _Failure:
    host: str
    status: int
    times: int
    retry_after: str | None
    body: bytes | None
    content_type: str | None
    path_contains: str | None


@dataclass
class _Reset:
    host: str
    nbytes: int
    times: int


@dataclass
class _Stall:
    host: str
    nbytes: int
    times: int
    seconds: float


class Faults:
    """Fault knobs shared by the hosts of one fake; all off by default, settable at any time.

    The one-shot faults (``fail``, ``reset_after``) are queues consumed under a lock so that
    concurrent downloads each see a fault exactly once. The content knobs are plain attributes
    read when a file body starts; they apply to every response that serves file content
    (Civitai storage, HF CDN, HF non-LFS resolve), never to JSON API answers.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failures: list[_Failure] = []
        self._resets: list[_Reset] = []
        self.ignore_range = False
        self.html_instead = False
        self.json_instead = False
        self.throttle_bps: int | None = None
        # Seconds added before every answer of a JSON API host (not file bytes): a far-away
        # API, for the lock benchmark.
        self.api_latency = 0.0
        self.truncate_to: int | None = None
        self.corrupt = False
        self.on_reset: Callable[[], None] | None = None  # runs as a reset fires (expire URLs)
        self._stalls: list[_Stall] = []
        self._length_lies: list[_Reset] = []  # nbytes: what to add to Content-Length

    def fail(
        self,
        host: str,
        status: int,
        *,
        times: int = 1,
        retry_after: str | None = None,
        body: bytes | None = None,
        path_contains: str | None = None,
        content_type: str | None = None,
    ) -> None:
        """The next ``times`` requests to ``host`` (whose path+query contains ``path_contains``)
        answer ``status``, before any routing."""
        with self._lock:
            self._failures.append(
                _Failure(host, status, times, retry_after, body, content_type, path_contains)
            )

    def reset_after(self, nbytes: int, *, times: int = 1, host: str = "storage") -> None:
        """The next ``times`` responses with a body on ``host`` send their headers and the first
        ``nbytes`` of the body, then reset the connection (RST, not FIN)."""
        with self._lock:
            self._resets.append(_Reset(host, nbytes, times))

    def stall_after(
        self, nbytes: int, seconds: float, *, times: int = 1, host: str = "storage"
    ) -> None:
        """The next ``times`` bodies on ``host`` send ``nbytes``, go silent for ``seconds``
        (a dead CDN node, past any sane read timeout), then reset the connection."""
        with self._lock:
            self._stalls.append(_Stall(host, nbytes, times, seconds))

    def lie_content_length(self, delta: int, *, times: int = 1, host: str = "storage") -> None:
        """The next ``times`` file bodies on ``host`` announce ``Content-Length`` off by
        ``delta`` (negative: shorter than the body sent; positive: longer, then FIN)."""
        with self._lock:
            self._length_lies.append(_Reset(host, delta, times))

    def clear(self) -> None:
        """Turn every knob off and drop pending one-shot faults."""
        with self._lock:
            self._failures.clear()
            self._resets.clear()
            self._stalls.clear()
            self._length_lies.clear()
        self.on_reset = None
        self.ignore_range = self.html_instead = self.json_instead = self.corrupt = False
        self.throttle_bps = self.truncate_to = None
        self.api_latency = 0.0

    def take_failure(self, host: str, target: str) -> _Failure | None:
        with self._lock:
            for failure in self._failures:
                if failure.host != host:
                    continue
                if failure.path_contains is not None and failure.path_contains not in target:
                    continue
                failure.times -= 1
                if failure.times <= 0:
                    self._failures.remove(failure)
                return failure
        return None

    def take_stall(self, host: str) -> tuple[int, float] | None:
        with self._lock:
            for stall in self._stalls:
                if stall.host == host:
                    stall.times -= 1
                    if stall.times <= 0:
                        self._stalls.remove(stall)
                    return stall.nbytes, stall.seconds
        return None

    def take_length_lie(self, host: str) -> int | None:
        with self._lock:
            for lie in self._length_lies:
                if lie.host == host:
                    lie.times -= 1
                    if lie.times <= 0:
                        self._length_lies.remove(lie)
                    return lie.nbytes
        return None

    def take_reset(self, host: str) -> int | None:
        with self._lock:
            for reset in self._resets:
                if reset.host == host:
                    reset.times -= 1
                    if reset.times <= 0:
                        self._resets.remove(reset)
                    return reset.nbytes
        return None


# --------------------------------------------------------------------------- content


@dataclass(frozen=True)
class Digests:
    sha256: str  # lowercase hex
    crc32: str  # uppercase hex, zlib (big-endian) order
    autov1: str | None  # uppercase, 8 hex; None below 2 MiB


def content_size(content: Content) -> int:
    return len(content) if isinstance(content, bytes) else content.stat().st_size


def iter_content(content: Content, start: int = 0, length: int | None = None) -> Iterator[bytes]:
    """Yield ``length`` bytes of ``content`` from ``start`` in chunks of at most 1 MiB."""
    end = content_size(content) if length is None else start + length
    if isinstance(content, bytes):
        view = memoryview(content)
        for pos in range(start, end, CHUNK):
            yield bytes(view[pos : min(pos + CHUNK, end)])
        return
    with content.open("rb") as fh:
        fh.seek(start)
        remaining = end - start
        while remaining > 0:
            chunk = fh.read(min(CHUNK, remaining))
            if not chunk:
                return
            remaining -= len(chunk)
            yield chunk


def content_digests(content: Content) -> Digests:
    """One streaming pass (flat memory for multi-GB files) for SHA256 and CRC32, plus AutoV1."""
    sha = hashlib.sha256()
    crc = 0
    for chunk in iter_content(content):
        sha.update(chunk)
        crc = zlib.crc32(chunk, crc)
    autov1 = None
    if content_size(content) >= AUTOV1_MIN_SIZE:
        window = b"".join(iter_content(content, AUTOV1_OFFSET, AUTOV1_LENGTH))
        autov1 = hashlib.sha256(window).hexdigest()[:8].upper()
    return Digests(sha256=sha.hexdigest(), crc32=f"{crc:08X}", autov1=autov1)


def git_blob_sha1(data: bytes) -> str:
    """The git object id of a blob, which Hugging Face uses as the ETag of non-LFS files."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


# --------------------------------------------------------------------------- presigned URLs


class Verdict(Enum):
    OK = "ok"
    BAD_SIGNATURE = "bad-signature"
    EXPIRED = "expired"


class UrlSigner:
    """Issues and checks S3-style presigned query strings.

    The signature is an HMAC over the path and every other query parameter, keyed by a
    per-server secret. Each URL carries a serial number (in ``X-Amz-Credential``) so the server
    can expire everything issued so far while later URLs stay valid, and so that sub-second TTLs
    work (``X-Amz-Expires`` shows the TTL rounded up, as S3 only takes whole seconds).
    """

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._secret = secrets.token_bytes(32)
        self._lock = threading.Lock()
        self._serials = itertools.count(1)
        self._issued: dict[int, float] = {}
        self._expired_below = 0

    def sign(self, path: str, extra: list[tuple[str, str]]) -> str:
        with self._lock:
            serial = next(self._serials)
            self._issued[serial] = time.monotonic()
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        params = [
            ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
            ("X-Amz-Credential", f"FAKE{serial:08d}/{stamp[:8]}/auto/s3/aws4_request"),
            ("X-Amz-Date", stamp),
            ("X-Amz-Expires", str(max(1, math.ceil(self.ttl)))),
            ("X-Amz-SignedHeaders", "host"),
            *extra,
        ]
        params.append(("X-Amz-Signature", self._mac(path, params)))
        return _encode_query(params)

    def check(self, path: str, raw_query: str) -> Verdict:
        pairs = parse_qsl(raw_query, keep_blank_values=True)
        given = [value for key, value in pairs if key == "X-Amz-Signature"]
        rest = [(key, value) for key, value in pairs if key != "X-Amz-Signature"]
        if len(given) != 1 or not hmac.compare_digest(given[0], self._mac(path, rest)):
            return Verdict.BAD_SIGNATURE
        serial = int(re.sub(r"\D", "", dict(rest)["X-Amz-Credential"].split("/")[0]))
        with self._lock:
            issued = self._issued.get(serial)
            expired = serial < self._expired_below
        if issued is None or expired or time.monotonic() > issued + self.ttl:
            return Verdict.EXPIRED
        return Verdict.OK

    def expire_all(self) -> None:
        with self._lock:
            self._expired_below = max(self._issued, default=0) + 1

    def _mac(self, path: str, params: list[tuple[str, str]]) -> str:
        message = f"{path}\n{_encode_query(params)}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()


def _encode_query(params: list[tuple[str, str]]) -> str:
    # S3 presigns percent-encode spaces as %20 (never '+'), as in R2's
    # response-content-disposition=attachment%3B%20filename%3D%22x%22.
    return urlencode(params, quote_via=quote, safe="")


def s3_error_xml(code: str, message: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    ).encode()


# --------------------------------------------------------------------------- HTTP plumbing


def parse_range(header: str | None, total: int) -> tuple[int, int] | bool | None:
    """Parse a single ``Range: bytes=...`` header.

    Returns (start, end) inclusive, None when there is no usable Range (absent, malformed or
    multi-range: RFC 9110 says ignore it and send 200), or False when it is unsatisfiable (416).
    """
    if not header:
        return None
    match = _RANGE_RE.match(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # suffix range: the last N bytes
        suffix = int(last)
        if suffix == 0 or total == 0:
            return False
        return max(0, total - suffix), total - 1
    start = int(first)
    end = total - 1 if not last else min(int(last), total - 1)
    if last and int(last) < start:
        return None
    if start >= total:
        return False
    return start, end


Route = Callable[["FakeHandler"], None]


class FakeHandler(http.server.BaseHTTPRequestHandler):
    """Records each request, applies ``fail`` faults, then hands over to the host's route."""

    server: _FakeHTTPServer
    protocol_version = "HTTP/1.1"  # keep-alive like the real hosts, so every answer has a length
    server_version = "fake"
    sys_version = ""
    timeout = 60  # an idle keep-alive connection must not pin a thread forever
    # TCP_NODELAY, as nginx and CDNs set on keep-alive connections: headers and body go out in
    # two writes, and with Nagle on the second waits for the client's delayed ACK (~40 ms per
    # answer on a reused connection, a stall no real host has).
    disable_nagle_algorithm = True

    route_path: str
    query: dict[str, str]
    raw_query: str
    request_body: bytes

    def log_message(self, format: str, *args: object) -> None:
        # Tests read the request log instead; stderr noise would drown real failures.
        return

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, add=True)
        if self.server.stopping.is_set():
            # Accepted while stop() was cutting connections: cut this one too, or server_close()
            # would wait for its read timeout.
            self.connection.shutdown(socket.SHUT_RDWR)

    def finish(self) -> None:
        self.server.track(self.connection, add=False)
        with contextlib.suppress(OSError):  # the socket may already be cut
            super().finish()

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    # ----------------------------------------------------------------- dispatch

    def _dispatch(self) -> None:
        split = urlsplit(self.path)
        self.route_path = split.path
        self.raw_query = split.query
        self.query = dict(parse_qsl(split.query, keep_blank_values=True))
        length = int(self.headers.get("Content-Length") or 0)
        self.request_body = self.rfile.read(length) if length else b""
        self.server.record(
            Recorded(
                host=self.server.label,
                method=self.command,
                path=self.route_path,
                query=self.query,
                headers={name.lower(): value for name, value in self.headers.items()},
            )
        )
        if self.server.faults.api_latency and self.server.label in ("api", "hf"):
            time.sleep(self.server.faults.api_latency)
        try:
            failure = self.server.faults.take_failure(self.server.label, self.path)
            if failure is not None:
                self._send_failure(failure)
            else:
                self.server.route(self)
        except OSError:
            # The client hung up (or we cut it on purpose): nothing left to answer.
            self.close_connection = True
        except Exception as exc:  # a bug in a fake must surface, not kill the thread silently
            self.server.errors.append(exc)
            traceback.print_exc(file=sys.stderr)
            self.close_connection = True

    def _send_failure(self, failure: _Failure) -> None:
        headers: dict[str, str] = {}
        if failure.retry_after is not None:
            headers["Retry-After"] = failure.retry_after
        if self.server.label == "hf" and failure.status == 429:
            headers["RateLimit"] = '"api";r=0;t=55'
            headers["RateLimit-Policy"] = '"fixed window";"api";q=500;w=300'
        body, content_type = failure.body, failure.content_type
        if body is None:
            body, content_type = self._default_error_body(failure.status)
        self.respond(
            failure.status, body, content_type=content_type or "text/plain", headers=headers
        )

    def _default_error_body(self, status: int) -> tuple[bytes, str]:
        try:
            phrase = http.HTTPStatus(status).phrase
        except ValueError:
            phrase = "Error"
        if self.server.label in ("storage", "cdn"):
            return s3_error_xml(phrase.replace(" ", ""), phrase), "application/xml"
        return json.dumps({"error": phrase}).encode(), "application/json; charset=utf-8"

    # ----------------------------------------------------------------- answers

    def send_header(self, keyword: str, value: str) -> None:
        # http.server encodes headers as strict latin-1; real servers send UTF-8 file names raw.
        super().send_header(keyword, value.encode("utf-8").decode("latin-1"))

    def respond(
        self,
        status: int,
        body: bytes = b"",
        *,
        content_type: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Send a small complete answer (JSON, XML, HTML, redirects)."""
        self.send_response(status)
        if content_type is not None:
            self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if status not in _BODYLESS_STATUSES:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command == "HEAD" or not body:
            return
        cut = self.server.faults.take_reset(self.server.label)
        if cut is not None and cut < len(body):
            self.wfile.write(body[:cut])
            self.abort()
            return
        self.wfile.write(body)

    def send_json(
        self, status: int, payload: object, *, headers: Mapping[str, str] | None = None
    ) -> None:
        body = json.dumps(payload, separators=(",", ":")).encode()
        self.respond(status, body, content_type="application/json; charset=utf-8", headers=headers)

    def serve_content(self, content: Content, *, headers: Mapping[str, str]) -> None:
        """Serve a file body honouring Range and every content fault knob."""
        faults = self.server.faults
        if faults.html_instead or faults.json_instead:
            page, kind = (
                (HTML_ERROR_PAGE, "text/html; charset=utf-8")
                if faults.html_instead
                else (JSON_ERROR_PAGE, "application/json; charset=utf-8")
            )
            self.respond(200, page, content_type=kind)
            return
        total = content_size(content)
        wanted = None if faults.ignore_range else parse_range(self.headers.get("Range"), total)
        if wanted is False:
            self.respond(
                416,
                s3_error_xml("InvalidRange", "The requested range is not satisfiable"),
                content_type="application/xml",
                headers={"Content-Range": f"bytes */{total}"},
            )
            return
        start, end = wanted if isinstance(wanted, tuple) else (0, total - 1)
        length = end - start + 1
        lie = faults.take_length_lie(self.server.label) if self.command != "HEAD" else None
        self.send_response(206 if isinstance(wanted, tuple) else 200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(max(0, length + (lie or 0))))
        self.send_header("Accept-Ranges", "bytes")
        if isinstance(wanted, tuple):
            self.send_header("Content-Range", f"bytes {start}-{end}/{total}")
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD" and length > 0:
            if lie is not None and lie < 0:
                # The body goes out whole; the client must stop at the announced length.
                self._write_chunks(iter_content(content, start, length), None, None)
                self.close_connection = True
                return
            self._write_body(content, start, length)
            if lie is not None:
                self.close_connection = True  # FIN where the announced length says more

    def _write_body(self, content: Content, start: int, length: int) -> None:
        faults = self.server.faults
        cut = faults.take_reset(self.server.label)
        stall = faults.take_stall(self.server.label)
        if stall is not None:
            cut = min(stall[0], cut if cut is not None else stall[0])
        truncate = faults.truncate_to
        limit = min([length, *(n for n in (cut, truncate) if n is not None)])
        throttle, corrupt = faults.throttle_bps, faults.corrupt
        if limit <= 0:
            pass  # headers only (a stall or reset before the first byte)
        elif isinstance(content, Path) and not (throttle or corrupt):
            # Fast path: the kernel copies file pages straight to the socket (os.sendfile).
            with content.open("rb") as fh:
                self.connection.sendfile(fh, offset=start, count=limit)
        else:
            flip_at = length - 1 if corrupt else None  # the last byte: headers stay parseable
            self._write_chunks(iter_content(content, start, limit), throttle, flip_at)
        if stall is not None and cut is not None and cut < length:
            self.wfile.flush()
            self.server.stopping.wait(stall[1])
        if cut is not None and cut < length:
            if faults.on_reset is not None:
                faults.on_reset()
            self.abort()
        elif limit < length:
            self.close_connection = True  # FIN after a short body: a truncated download

    def _write_chunks(
        self, chunks: Iterator[bytes], throttle: int | None, flip_at: int | None
    ) -> None:
        sent, began = 0, time.monotonic()
        for chunk in chunks:
            for piece in _pieces(chunk, throttle):
                if flip_at is not None and sent <= flip_at < sent + len(piece):
                    index = flip_at - sent
                    piece = piece[:index] + bytes([piece[index] ^ 0xFF]) + piece[index + 1 :]
                self.wfile.write(piece)
                sent += len(piece)
                if throttle:
                    self._pace(began, sent, throttle)

    def _pace(self, began: float, sent: int, throttle: int) -> None:
        delay = began + sent / throttle - time.monotonic()
        if delay > 0 and self.server.stopping.wait(delay):
            raise ConnectionAbortedError("server stopping")

    def abort(self) -> None:
        """Close the socket with SO_LINGER 0 so the peer gets a RST mid-body."""
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()

    def bearer_token(self) -> str | None:
        """What Civitai does: ``authorization.split(' ')[1]`` (the scheme word is ignored)."""
        parts = (self.headers.get("Authorization") or "").split(" ")
        return parts[1] if len(parts) > 1 and parts[1] else None


def _pieces(chunk: bytes, throttle: int | None) -> Iterator[bytes]:
    # Small pieces when throttled so the pace is smooth (about 20 writes a second).
    size = max(1024, throttle // 20) if throttle else len(chunk)
    for pos in range(0, len(chunk), size):
        yield chunk[pos : pos + size]


class _FakeHTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = True  # server_close() joins the handler threads: no leaks between tests

    def __init__(self, label: str, route: Route, faults: Faults, log: list[Recorded]) -> None:
        super().__init__(("127.0.0.1", 0), FakeHandler)
        self.label = label
        self.route = route
        self.faults = faults
        self.log = log
        self.errors: list[BaseException] = []
        self.stopping = threading.Event()
        self._active: set[socket.socket] = set()
        self._active_lock = threading.Lock()

    def record(self, entry: Recorded) -> None:
        self.log.append(entry)  # list.append is atomic: the log keeps arrival order

    def track(self, sock: socket.socket, *, add: bool) -> None:
        with self._active_lock:
            if add:
                self._active.add(sock)
            else:
                self._active.discard(sock)

    def cut_all(self) -> None:
        """Shut every open connection so handler threads blocked on I/O return at once."""
        with self._active_lock:
            active = list(self._active)
        for sock in active:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: object, client_address: object) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return  # peers hanging up mid-transfer is the point of several tests
        super().handle_error(request, client_address)  # type: ignore[arg-type]


class LoopbackServer:
    """One fake host: a ThreadingHTTPServer on 127.0.0.1, port chosen by the kernel."""

    def __init__(self, label: str, route: Route, faults: Faults, log: list[Recorded]) -> None:
        self._httpd = _FakeHTTPServer(label, route, faults, log)
        host, port = self._httpd.server_address[:2]
        self.url = f"http://{host!s}:{port}"
        self._thread: threading.Thread | None = None

    @property
    def errors(self) -> list[BaseException]:
        """Exceptions raised by route code (bugs in the fake); tests may assert it is empty."""
        return self._httpd.errors

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.01},  # shutdown() waits one poll interval
            name=f"fake-{self._httpd.label}",
            daemon=True,
        )
        self._thread.start()
        self._wait_ready(deadline=time.monotonic() + 5.0)

    def _wait_ready(self, deadline: float) -> None:
        address = self._httpd.server_address[:2]
        while True:
            try:
                with socket.create_connection((str(address[0]), int(address[1])), timeout=1.0):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def stop(self) -> None:
        if self._thread is None:
            self._httpd.server_close()
            return
        self._httpd.stopping.set()
        self._httpd.shutdown()
        self._httpd.cut_all()
        self._httpd.server_close()
        self._thread.join(timeout=5.0)
        self._thread = None


class FakeHosts:
    """Lifecycle shared by a fake made of several hosts (an API and its storage or CDN)."""

    _hosts: tuple[LoopbackServer, ...] = ()

    def start(self) -> None:
        for host in self._hosts:
            host.start()

    def stop(self) -> None:
        for host in self._hosts:
            host.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def errors(self) -> list[BaseException]:
        """Exceptions raised inside the fake's own code (should stay empty)."""
        return [error for host in self._hosts for error in host.errors]
