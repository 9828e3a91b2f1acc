"""Pulumi.yaml documents every key the program reads; stack files hold no secret in clear;
the sync function's code zip is deterministic and holds what FC needs."""

from __future__ import annotations

import base64
import io
import re
import zipfile
from pathlib import Path

import yaml

from provision.infra.sync_code import build_code, build_zip, runtime_requirements

ROOT = Path(__file__).resolve().parents[2]


def _read_keys() -> set[str]:
    source = (ROOT / "provision" / "infra" / "config.py").read_text(encoding="utf-8")
    keys = set(
        re.findall(r'cfg\.(?:get|get_int|get_float|get_bool|require_secret)\("(\w+)"\)', source)
    )
    keys |= set(re.findall(r'"(vpcId|vswitchId|securityGroupId)"', source))
    return {f"sdprov:{k}" for k in keys}


def test_every_config_key_is_documented() -> None:
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text(encoding="utf-8"))
    assert project["runtime"]["name"] == "python" and project["stackConfigDir"] == "stacks"
    documented = project["template"]["config"]
    read = _read_keys()
    assert len(read) >= 25
    assert read <= set(documented), read - set(documented)
    assert all(documented[k].get("description") for k in documented)
    for secret in ("sdprov:webuiPassword", "sdprov:civitaiToken", "sdprov:hfToken"):
        assert documented[secret]["secret"] is True


def test_stack_files_hold_no_secret_in_clear() -> None:
    for name in ("Pulumi.dev.yaml", "Pulumi.prod.yaml"):
        config = yaml.safe_load((ROOT / "stacks" / name).read_text(encoding="utf-8"))["config"]
        for key in ("sdprov:webuiPassword", "sdprov:civitaiToken", "sdprov:hfToken"):
            assert key not in config or set(config[key]) == {"secure"}
        assert config["sdprov:target"] in ("fc", "ecs")


def test_sync_code_zip(tmp_path: Path) -> None:
    vendor = tmp_path / "deps"
    (vendor / "httpx").mkdir(parents=True)
    (vendor / "httpx" / "__init__.py").write_text("VERSION = 'x'\n")
    data = build_zip(vendor)
    assert build_zip(vendor) == data  # same sources, same bytes: no spurious function update
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert names[0] == "index.py"
    assert "provision/cloudsync/handler.py" in names and "provision/cli.py" in names
    assert "provision/manifest/schema.json" in names
    assert "python/httpx/__init__.py" in names
    assert not [n for n in names if n.startswith("provision/infra/") or "__pycache__" in n]
    index = zipfile.ZipFile(io.BytesIO(data)).read("index.py").decode()
    assert "from provision.cloudsync.handler import handler" in index
    b64, sha = build_code(vendor)
    assert base64.b64decode(b64) == data and len(sha) == 64
    assert any(r.startswith("httpx==") for r in runtime_requirements())
    assert not any("pulumi" in r for r in runtime_requirements())
