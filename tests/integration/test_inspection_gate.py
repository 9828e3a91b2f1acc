"""Kind, family and pickle safety decided from the files' own bytes, at lock and at sync."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.fakes import CivitaiServer, FakeFile, FakeModel, FakeVersion
from tests.fixtures.modelfiles import make_checkpoint, make_hypernetwork, make_lora
from tests.fixtures.torchpickle import write_malicious_pickle
from tests.integration.conftest import Cli


def _model(model_id: int, kind: str, base: str, path: Path, name: str) -> FakeModel:
    file = FakeFile(id=model_id * 10, name=name, content=path, primary=True)
    version = FakeVersion(id=model_id * 100, name="v1", base_model=base, files=[file])
    return FakeModel(id=model_id, name=name, type=kind, versions=[version])


@pytest.fixture
def mixed(civitai: CivitaiServer, tmp_path: Path) -> None:
    src = tmp_path / "src"
    civitai.add(
        _model(
            1,
            "Checkpoint",
            "Pony",
            make_checkpoint(src / "p.safetensors", "sdxl"),
            "pony.safetensors",
        )
    )
    civitai.add(
        _model(
            2, "LORA", "SD 1.5", make_lora(src / "a.safetensors", "sd1"), "add_detail.safetensors"
        )
    )
    # Labelled a LoRA on the site, but really an SDXL checkpoint.
    civitai.add(
        _model(
            3,
            "LORA",
            "SDXL 1.0",
            make_checkpoint(src / "c.safetensors", "sdxl"),
            "fake_lora.safetensors",
        )
    )


def test_lora_that_fits_no_checkpoint_fails_lock(cli: Cli, tmp_path: Path, mixed: None) -> None:
    manifest = tmp_path / "manifests" / "models.yaml"
    manifest.write_text("checkpoints:\n  - civitai: 1@100\nloras:\n  - civitai: 2@200\n")
    out = cli.run("lock", check=2)
    assert "manifests/models.yaml:4:5: error:" in out.stderr
    assert "add_detail (sd1, SD 1.5)" in out.stderr and "pony (sdxl, Pony)" in out.stderr
    assert not (tmp_path / "manifests" / "models.lock.json").exists()
    # The user knows better: `base:` on the entry overrides the source's label.
    manifest.write_text(
        "checkpoints:\n  - civitai: 1@100\nloras:\n  - civitai: 2@200\n    base: sdxl\n"
    )
    cli.run("lock")
    # Or the whole manifest only warns.
    manifest.write_text(
        "options: {base_check: warn}\ncheckpoints:\n  - civitai: 1@100\n"
        "loras:\n  - civitai: 2@200\n"
    )
    warned = cli.run("lock")
    assert "warning:" in warned.stderr and "add_detail" in warned.stderr


def test_mislabelled_file_is_caught_at_lock_from_its_header(
    cli: Cli, civitai: CivitaiServer, tmp_path: Path, mixed: None
) -> None:
    (tmp_path / "manifests" / "models.yaml").write_text(
        "checkpoints:\n  - civitai: 1@100\nloras:\n  - civitai: 3@300\n"
    )
    out = cli.run("lock", check=2)
    assert (
        "manifests/models.yaml:4:5: error: loras[0]: the file itself is an SDXL checkpoint, "
        "not a lora" in out.stdout + out.stderr
    )
    assert "list it under `checkpoints`" in out.stderr
    # Only the header was read, with ranged requests: never the whole file.
    storage = [r for r in civitai.requests if r.host == "storage"]
    assert storage and all(r.headers.get("range", "").startswith("bytes=") for r in storage)


def test_lock_records_the_family_from_the_file_itself(
    cli: Cli, civitai: CivitaiServer, tmp_path: Path
) -> None:
    # Civitai says "SD 1.5", the tensors say SDXL: the lock believes the tensors.
    lora = make_lora(tmp_path / "l.safetensors", "sdxl", variant="LoHa")
    ckpt = make_checkpoint(tmp_path / "c.safetensors", "sdxl")
    civitai.add(_model(7, "LORA", "SD 1.5", lora, "mislabelled.safetensors"))
    civitai.add(_model(8, "Checkpoint", "SDXL 1.0", ckpt, "base.safetensors"))
    (tmp_path / "manifests" / "models.yaml").write_text(
        "checkpoints:\n  - civitai: 8@800\nloras:\n  - civitai: 7@700\n"
    )
    cli.run("lock")
    lock = json.loads((tmp_path / "manifests" / "models.lock.json").read_text())
    entry = next(m for m in lock["models"] if m["kind"] == "lora")
    assert entry["base"] == "sdxl" and entry["base_model"] == "SD 1.5"
    assert entry["inspected"] == {"kind": "lora", "variant": "LoHa", "family": "sdxl", "flags": []}


def test_mislabelled_pickle_is_not_placed(cli: Cli, civitai: CivitaiServer, tmp_path: Path) -> None:
    # Pickles cannot be inspected from a header at lock time: sync inspects them before placing.
    ckpt = make_checkpoint(tmp_path / "c.ckpt", "sdxl")
    civitai.add(_model(9, "LORA", "SDXL 1.0", ckpt, "fake_lora.ckpt"))
    (tmp_path / "manifests" / "models.yaml").write_text(
        "loras:\n  - civitai: 9@900\n    allow_pickle: true\n"
    )
    cli.run("lock")
    root = tmp_path / "models"
    out = cli.run("sync", "--models-root", str(root), check=1)
    assert (
        "Lora/fake_lora.ckpt: the lock says a sdxl LoRA, but the file is an SDXL checkpoint"
        in out.stderr
    )
    assert not (root / "Lora" / "fake_lora.ckpt").exists()


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


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_pickles_need_allow_pickle_and_must_be_safe(
    cli: Cli, tmp_path: Path, plain_http: tuple[str, Path]
) -> None:
    base, www = plain_http
    good = make_hypernetwork(www / "anime_3.pt", "sd1")
    evil = write_malicious_pickle(www / "evil.pt")
    manifest = tmp_path / "manifests" / "models.yaml"
    manifest.write_text(f"hypernetworks:\n  - url: {base}/anime_3.pt\n    sha256: {_sha(good)}\n")
    refused = cli.run("lock", check=2)
    assert "is a pickle file" in refused.stderr and "allow_pickle: true" in refused.stderr
    manifest.write_text(
        f"hypernetworks:\n  - url: {base}/anime_3.pt\n    sha256: {_sha(good)}\n"
        "    allow_pickle: true\n"
        f"  - url: {base}/evil.pt\n    sha256: {_sha(evil)}\n    allow_pickle: true\n"
    )
    cli.run("lock")
    lock = json.loads((tmp_path / "manifests" / "models.lock.json").read_text())
    assert {m["format"] for m in lock["models"]} == {"pickle"}
    root = tmp_path / "models"
    out = cli.run("sync", "--models-root", str(root), check=1)
    assert "hypernetworks/evil.pt: refused, even with allow_pickle" in out.stderr
    assert "os.system" in out.stderr or "posix.system" in out.stderr
    assert (root / "hypernetworks" / "anime_3.pt").read_bytes() == good.read_bytes()
    assert not (root / "hypernetworks" / "evil.pt").exists()
