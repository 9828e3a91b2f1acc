"""Downloads honour HTTP_PROXY / NO_PROXY on the bytes path too (httpx does on the API path)."""

from __future__ import annotations

import http.client
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.fakes import CivitaiServer, HfServer
from tests.integration.catalog import MANIFEST, build
from tests.integration.conftest import TOKEN, Cli


class _Proxy(BaseHTTPRequestHandler):
    """A forwarding HTTP proxy for absolute-form requests; records what it forwarded."""

    seen: list[tuple[str, dict[str, str]]]

    def do_GET(self) -> None:
        self.seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
        target = urllib.parse.urlsplit(self.path)
        upstream = http.client.HTTPConnection(target.hostname or "", target.port, timeout=10)
        headers = {k: v for k, v in self.headers.items() if k.lower() != "proxy-authorization"}
        upstream.request("GET", target.path + (f"?{target.query}" if target.query else ""),
                         headers=headers)  # fmt: skip
        answer = upstream.getresponse()
        self.send_response(answer.status)
        for key, value in answer.getheaders():
            if key.lower() not in ("connection", "transfer-encoding"):
                self.send_header(key, value)
        self.send_header("Connection", "close")
        self.end_headers()
        while chunk := answer.read(1 << 16):
            self.wfile.write(chunk)
        upstream.close()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def proxy() -> Iterator[tuple[str, list[tuple[str, dict[str, str]]]]]:
    seen: list[tuple[str, dict[str, str]]] = []
    handler = type("Proxy", (_Proxy,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02})
    thread.start()
    try:
        yield f"http://user:pw@127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_sync_downloads_through_the_proxy(
    cli: Cli,
    civitai: CivitaiServer,
    hf: HfServer,
    tmp_path: Path,
    proxy: tuple[str, list[tuple[str, dict[str, str]]]],
) -> None:
    build(tmp_path, civitai, hf)
    (tmp_path / "manifests" / "models.yaml").write_text(MANIFEST)
    cli.run("lock")
    url, seen = proxy
    env = {k: v for k, v in cli.env.items() if k != "NO_PROXY"} | {"HTTP_PROXY": url}
    root = tmp_path / "models"
    Cli(cli.cwd, env).run("sync", "--models-root", str(root))
    storage = [(path, h) for path, h in seen if path.startswith(civitai.storage_url)]
    assert len(storage) == 3  # checkpoint, LoRA, embedding bytes all went through the proxy
    assert all(h.get("proxy-authorization") == "Basic dXNlcjpwdw==" for _, h in storage)
    assert all("authorization" not in h for _, h in storage)  # the token stays home
    api = [h for path, h in seen if path.startswith(civitai.api_url + "/api/download/")]
    assert api and all(h["authorization"] == f"Bearer {TOKEN}" for h in api)
    Cli(cli.cwd, cli.env).run("status", "--models-root", str(root), "--check")


def test_socks_proxy_at_the_cli_is_exit_2(
    cli: Cli, civitai: CivitaiServer, hf: HfServer, tmp_path: Path
) -> None:
    build(tmp_path, civitai, hf)
    (tmp_path / "manifests" / "models.yaml").write_text(MANIFEST)
    env = {**cli.env, "ALL_PROXY": "socks5://127.0.0.1:1080"}
    env.pop("NO_PROXY")
    out = Cli(cwd=cli.cwd, env=env).run("lock", check=2)
    assert "unsupported proxy socks5://127.0.0.1:1080" in out.stderr
