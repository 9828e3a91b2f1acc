"""Hostile or unusable file names from a server: refused at lock, never a path outside the root.

A Civitai `files[].name`, a Hugging Face path and a URL's last segment are the server's words.
Without `name:` in the manifest they would become the file name; sdprov refuses a bad one at
lock (exit 2, at the entry's `file:line:col`, quoting what the server sent) and writes nothing.
With `name:` the same entry locks and syncs inside the models root.
"""

from __future__ import annotations

import hashlib
import json
import struct
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.fakes import CivitaiServer, FakeFile, FakeModel, FakeVersion, HfServer
from tests.fixtures.modelfiles import make_lora
from tests.integration.conftest import Cli

HOSTILE = {
    "parent": "../../evil.safetensors",
    "nested": "a/b.safetensors",
    "absolute": "/etc/evil.safetensors",
    "backslash": "..\\..\\evil.safetensors",
    "nul": "evil\x00.safetensors",
    "newline": "evil\n.safetensors",
    "bidi": "evil\u202egnp.safetensors",
    "sdprov": ".sdprov.safetensors",
    "drive": "C:evil.safetensors",
    "device": "CON.safetensors",
    "long": "x" * 300 + ".safetensors",
    "long-utf8": "é" * 130 + ".safetensors",  # 260 bytes, 142 characters
}


def _files_outside(tmp_path: Path, before: set[Path]) -> list[Path]:
    """Files created anywhere under the test's temp dir except where sdprov may write."""
    allowed = (tmp_path / "models", tmp_path / "manifests")
    return sorted(
        p
        for p in tmp_path.rglob("*")
        if p not in before and p.is_file() and not any(p.is_relative_to(a) for a in allowed)
    )


@pytest.fixture
def lora_file(tmp_path: Path) -> Path:
    return make_lora(tmp_path / "src" / "lora.safetensors", "sd1")


@pytest.mark.parametrize("label", sorted(HOSTILE))
def test_civitai_file_name_is_refused_unless_the_entry_names_the_file(
    cli: Cli, civitai: CivitaiServer, tmp_path: Path, lora_file: Path, label: str
) -> None:
    sent = HOSTILE[label]
    file = FakeFile(id=70, name=sent, content=lora_file, primary=True)
    version = FakeVersion(id=700, name="v1", base_model="SD 1.5", files=[file])
    civitai.add(FakeModel(id=7, name="Evil", type="LORA", versions=[version]))
    manifest = tmp_path / "manifests" / "models.yaml"
    manifest.write_text("loras:\n  - civitai: 7@700\n")
    before = set(tmp_path.rglob("*"))

    out = cli.run("lock", check=2)
    assert "manifests/models.yaml:2:5: error: loras[0]:" in out.stderr
    assert "civitai source sent is unusable" in out.stderr
    assert repr(sent)[:40] in out.stderr  # what the server sent, escaped
    assert "`name:`" in out.stderr
    assert not (tmp_path / "manifests" / "models.lock.json").exists()
    assert _files_outside(tmp_path, before) == []

    manifest.write_text("loras:\n  - civitai: 7@700\n    name: evil\n")
    cli.run("lock")
    root = tmp_path / "models"
    cli.run("sync", "--models-root", str(root))
    assert (root / "Lora" / "evil.safetensors").read_bytes() == lora_file.read_bytes()
    assert _files_outside(tmp_path, before) == []


def test_hugging_face_file_name_too_long_is_refused_from_the_manifest(
    cli: Cli, hf: HfServer, tmp_path: Path, lora_file: Path
) -> None:
    long_name = "v" * 250 + ".safetensors"
    hf.add_file("someone/vaes", f"sub/{long_name}", lora_file)
    manifest = tmp_path / "manifests" / "models.yaml"
    manifest.write_text(f"loras:\n  - hf: someone/vaes/sub/{long_name}\n    base: sd1\n")
    out = cli.run("lock", check=2)
    assert "manifests/models.yaml:2:9: error: loras[0].hf: its file name cannot be used" in (
        out.stderr
    )
    assert "262 bytes in UTF-8; file systems allow 255" in out.stderr
    assert not hf.requests  # refused from the manifest alone
    manifest.write_text(
        f"loras:\n  - hf: someone/vaes/sub/{long_name}\n    base: sd1\n    name: short\n"
    )
    cli.run("lock")
    lock = json.loads((tmp_path / "manifests" / "models.lock.json").read_text())
    assert [m["path"] for m in lock["models"]] == ["Lora/short.safetensors"]


@pytest.mark.parametrize(
    "segment", ["..%2F..%2Fevil.safetensors", "evil%00.safetensors", "%2Fetc%2Fevil.safetensors"]
)
def test_url_whose_decoded_name_is_a_path_is_refused_from_the_manifest(
    cli: Cli, tmp_path: Path, segment: str
) -> None:
    # Port 9 (discard) has no listener: any request would fail with exit 1, not 2.
    manifest = tmp_path / "manifests" / "models.yaml"
    manifest.write_text(
        f"loras:\n  - url: http://127.0.0.1:9/{segment}\n    sha256: {'a' * 64}\n    base: sd1\n"
    )
    out = cli.run("lock", check=2)
    assert "manifests/models.yaml:2:10: error: loras[0].url: its file name cannot be used" in (
        out.stderr
    )
    assert not (tmp_path / "manifests" / "models.lock.json").exists()


@pytest.fixture
def plain_http(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    folder = tmp_path / "www"
    folder.mkdir()

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", folder
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_sync_gate_refuses_files_that_attack_the_reader(
    cli: Cli, tmp_path: Path, plain_http: tuple[str, Path]
) -> None:
    """The locked bytes arrive intact, but they are hostile: nothing reaches a kind folder."""
    base, www = plain_http
    # A protocol-0 pickle (no PROTO opcode) calling os.system: used to pass as "not a model".
    (www / "style.pt").write_bytes(b"cos\nsystem\n(S'touch /tmp/sdprov-pwned'\ntR.")
    # A safetensors header length of 2^63: the lock cannot inspect it remotely, sync must.
    (www / "absurd.safetensors").write_bytes(struct.pack("<Q", 1 << 63) + b"{}" + bytes(64))
    manifest = tmp_path / "manifests" / "models.yaml"
    sha = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in www.iterdir()}
    manifest.write_text(
        f"hypernetworks:\n  - url: {base}/style.pt\n    sha256: {sha['style.pt']}\n"
        "    allow_pickle: true\n    base: sd1\n"
        f"loras:\n  - url: {base}/absurd.safetensors\n    sha256: {sha['absurd.safetensors']}\n"
        "    base: sd1\n"
    )
    cli.run("lock")
    root = tmp_path / "models"
    out = cli.run("sync", "--models-root", str(root), check=1)
    assert "hypernetworks/style.pt: refused, even with allow_pickle" in out.stderr
    assert "os.system" in out.stderr or "posix.system" in out.stderr
    assert "header claims 9223372036854775808 bytes" in out.stderr
    placed = [p for p in root.rglob("*") if p.is_file() and ".sdprov" not in p.parts]
    assert placed == []
    assert not Path("/tmp/sdprov-pwned").exists()
