"""Stack config is read once and every mistake names the key at fault, with the fix."""

from __future__ import annotations

from collections.abc import Iterator

import pulumi
import pytest

from provision.errors import InfraConfigError
from provision.infra.config import StackConfig, Target, read_config

BASE = {
    "sdprov:target": "fc",
    "sdprov:zoneId": "ap-southeast-1b",
    "sdprov:webuiPassword": "not-a-real-one",
    "sdprov:civitaiToken": "",
    "sdprov:hfToken": "",
    "sdprov:image": "registry.ap-southeast-1.aliyuncs.com/team/sdprov-a1111@sha256:" + "e" * 64,
}


@pytest.fixture
def config() -> Iterator[dict[str, str]]:
    values: dict[str, str] = {}
    yield values
    pulumi.runtime.set_all_config({})


def _read(values: dict[str, str]) -> StackConfig:
    pulumi.runtime.set_all_config(values)
    return read_config(pulumi.Config("sdprov"), region="ap-southeast-1", stack="dev")


def test_defaults(config: dict[str, str]) -> None:
    cfg = _read(BASE)
    assert cfg.target is Target.FC
    assert cfg.max_instances == 1 and cfg.ui.value == "a1111" and not cfg.alibaba_image
    assert str(cfg.manifest) == "manifests/models.yaml"
    assert cfg.sync_shards == 1


def test_sync_shards(config: dict[str, str]) -> None:
    assert _read(BASE | {"sdprov:syncShards": "4"}).sync_shards == 4


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"sdprov:target": "k8s"}, "sdprov:target is 'k8s'; allowed: fc, ecs"),
        ({"sdprov:zoneId": ""}, "sdprov:zoneId is required when sdprov creates the network"),
        (
            {"sdprov:image": "registry.x/sd:latest"},
            "sdprov:image 'registry.x/sd:latest' is not pinned",
        ),
        ({"sdprov:image": ""}, "sdprov:image is required"),
        ({"sdprov:alibabaImage": "true"}, "sdprov:alibabaImage is A1111 only and replaces"),
        ({"sdprov:ui": "invoke"}, "sdprov:ui is 'invoke'; allowed: a1111, comfyui"),
        ({"sdprov:gpuMemoryMB": "1000"}, "sdprov:gpuMemoryMB is 1000; fc.gpu.tesla.1 (T4)"),
        ({"sdprov:gpuMemoryMB": "24576"}, "from 1024 to 16384"),
        ({"sdprov:memoryMB": "65536"}, "sdprov:memoryMB is 65536"),
        ({"sdprov:cpu": "2", "sdprov:memoryMB": "32768"}, "sdprov:cpu 2.0 and sdprov:memoryMB"),
        ({"sdprov:provisionedInstances": "1"}, "only for the Ada, Hopper and Xpu series"),
        ({"sdprov:provisionedInstances": "-1"}, "sdprov:provisionedInstances must be 0 or more"),
        ({"sdprov:maxInstances": "0"}, "sdprov:maxInstances must be 1 or more"),
        ({"sdprov:syncShards": "0"}, "sdprov:syncShards must be 1 or more"),
        ({"sdprov:ecsEgress": "open"}, "sdprov:ecsEgress is 'open'; allowed: public-ip, nat"),
        ({"sdprov:vpcId": "vpc-1"}, "vpcId, vswitchId and securityGroupId go together"),
    ],
)
def test_mistakes_name_the_key(config: dict[str, str], extra: dict[str, str], message: str) -> None:
    with pytest.raises(InfraConfigError) as caught:
        _read(BASE | extra)
    assert message in caught.value.render()
    assert caught.value.exit_code == 2
