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
    assert str(cfg.manifest) == "manifests/models.yaml"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"sdprov:target": "k8s"}, "sdprov:target is 'k8s'; allowed: fc, ecs"),
        ({"sdprov:zoneId": ""}, "sdprov:zoneId is required when sdprov creates the network"),
        ({"sdprov:target": "ecs"}, "sdprov:ecsImageId is required for target ecs"),
        ({"sdprov:gpuMemoryMB": "1000"}, "sdprov:gpuMemoryMB must be a multiple of 1024"),
        ({"sdprov:provisionedInstances": "-1"}, "sdprov:provisionedInstances must be 0 or more"),
        ({"sdprov:vpcId": "vpc-1"}, "vpcId, vswitchId and securityGroupId go together"),
    ],
)
def test_mistakes_name_the_key(config: dict[str, str], extra: dict[str, str], message: str) -> None:
    with pytest.raises(InfraConfigError) as caught:
        _read(BASE | extra)
    assert message in caught.value.render()
    assert caught.value.exit_code == 2
