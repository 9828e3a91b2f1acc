"""A throwaway nginx on a loopback port serving one folder: the bench's file bytes.

nginx (Debian's package, installed with apt-get when missing and allowed) answers Range
natively and sends with `sendfile`, so the server is never what a byte-path figure measures.
It runs in the foreground from a generated config in a temp dir (its own pid, logs and temp
paths), optionally with a per-connection `limit_rate` (a CDN that caps each connection). The
access log records the body bytes sent per request, which the resume scenario counts.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from types import TracebackType

CONFIG = """\
{user}worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 512; }}
http {{
    log_format bytes '$request_uri $status $body_bytes_sent';
    access_log {tmp}/access.log bytes;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 60;
    keepalive_requests 100000;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{ {limit} }}
    }}
}}
"""


def find_nginx() -> str | None:
    for candidate in (shutil.which("nginx"), "/usr/sbin/nginx"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    if os.geteuid() == 0 and shutil.which("apt-get"):
        for step in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "nginx"]):
            subprocess.run(step, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if os.access("/usr/sbin/nginx", os.X_OK):
            return "/usr/sbin/nginx"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Nginx:
    """`with Nginx(root, rate="50m") as n:` serves `root` at `n.url`."""

    def __init__(self, root: Path, *, rate: str | None = None) -> None:
        binary = find_nginx()
        if binary is None:
            raise RuntimeError("nginx is missing and could not be installed (needs root + apt)")
        self.binary = binary
        self.root = root
        self.rate = rate
        self.tmp = Path(tempfile.mkdtemp(prefix="sdprov-nginx-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Nginx:
        conf = self.tmp / "nginx.conf"
        conf.write_text(
            CONFIG.format(
                # As root nginx would drop to `nobody`, who may not read the bench's folder.
                user="user root;\n" if os.geteuid() == 0 else "",
                tmp=self.tmp,
                port=self.port,
                root=self.root,
                limit=f"limit_rate {self.rate};" if self.rate else "",
            )
        )
        self._proc = subprocess.Popen(
            [self.binary, "-p", str(self.tmp), "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                if self._proc.poll() is not None:
                    break
                time.sleep(0.05)
        log = (self.tmp / "error.log").read_text() if (self.tmp / "error.log").exists() else ""
        self.__exit__(None, None, None)
        raise RuntimeError(f"nginx did not start: {log.strip()[-500:]}")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def bytes_sent(self) -> int:
        """Body bytes sent so far, from the access log (nginx writes a line per request)."""
        path = self.tmp / "access.log"
        if not path.exists():
            return 0
        total = 0
        for line in path.read_text().splitlines():
            last = line.rpartition(" ")[2]
            total += int(last) if last.isdigit() else 0
        return total

    def clear_log(self) -> None:
        (self.tmp / "access.log").unlink(missing_ok=True)
        # nginx keeps writing to the unlinked file until told to reopen its logs.
        if self._proc is not None:
            self._proc.send_signal(10)  # SIGUSR1: reopen log files
            time.sleep(0.2)

    def check(self, name: str) -> None:
        with urllib.request.urlopen(f"{self.url}/{name}", timeout=5) as response:
            response.read(1)
