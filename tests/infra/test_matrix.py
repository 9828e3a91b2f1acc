"""Each target × ui under `set_mocks`, and the account checks made before anything is created."""

from __future__ import annotations

import json
from typing import Any

import pytest

from provision.errors import InfraConfigError
from provision.infra.config import EcsEgress, Target, Ui
from tests.infra.mocks import SECRET_SIG, Account, clear_text_paths
from tests.infra.test_program import (
    CIVITAI,
    FN,
    HF,
    IMAGE,
    LOCK_A,
    PASSWORD,
    SYNC_RUN,
    Deployment,
    _config,
    deploy,
)

MATRIX = [(t, u) for t in Target for u in Ui]


@pytest.fixture(scope="module", params=MATRIX, ids=[f"{t.value}-{u.value}" for t, u in MATRIX])
def stack(request: pytest.FixtureRequest) -> tuple[Target, Ui, Deployment]:
    target, ui = request.param
    return target, ui, deploy(lambda: _config(target, ui=ui, ecs_image_id=None), LOCK_A)


def test_the_graph_per_target_and_ui(stack: tuple[Target, Ui, Deployment]) -> None:
    target, ui, d = stack
    functions = {r.inputs["functionName"]: r.inputs for r in d.of(FN)}
    assert "sdprov-test-sync" in functions  # the same sync, the same NAS, either way
    sync = functions["sdprov-test-sync"]
    assert sync["nasConfig"]["mountPoints"][0]["mountDir"] == "/mnt/auto"
    if target is Target.FC:
        ui_fn = functions["sdprov-test-webui"]
        assert ui_fn["customContainerConfig"]["image"] == IMAGE
        assert ui_fn["sessionAffinity"] == "GENERATED_COOKIE"
        route = "/internal/ping" if ui is Ui.A1111 else "/sdprov/health"
        assert ui_fn["customContainerConfig"]["healthCheckConfig"]["httpGetUrl"] == route
        assert d.one(SYNC_RUN, "webui-ready").inputs["health_url"].endswith(route)
        assert d.one("alicloud:fc/v3ConcurrencyConfig:V3ConcurrencyConfig").inputs[
            "reservedConcurrency"
        ] == 1  # fmt: skip
    else:
        instance = d.one("alicloud:ecs/instance:Instance").inputs
        assert IMAGE in instance["userData"] and "--gpus all" in instance["userData"]
        # found with ecs.get_images when sdprov:ecsImageId is unset
        assert instance["imageId"] == "ubuntu_22_04_x64_20G_alibase_20261101.vhd"
        assert set(functions) == {"sdprov-test-sync"}
        urls = sync["environmentVariables"]["SDPROV_WEBUI_URLS"]
        # A1111 is refreshed and verified after a sync; ComfyUI rescans by itself
        assert urls == ("http://10.42.1.7:7860" if ui is Ui.A1111 else "")


def test_no_secret_in_state_or_outputs(stack: tuple[Target, Ui, Deployment]) -> None:
    _, _, d = stack
    for secret in (PASSWORD, CIVITAI, HF):
        for r in d.resources:
            assert clear_text_paths(r.wire, secret) == [], (r.typ, r.name)
        for run in d.of(SYNC_RUN):  # the deploy's own steps never hold one, even wrapped
            assert secret not in json.dumps(run.inputs), run.name
        assert secret not in json.dumps(d.outputs)


def test_provider_keys_reach_the_deploy_steps_only_as_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import pulumi

    config = {"alicloud:accessKey": "AKID-from-config", "alicloud:secretKey": "sk-from-config"}
    pulumi.runtime.set_all_config(config, secret_keys=list(config))
    try:
        d = deploy(lambda: _config(Target.FC), LOCK_A)
    finally:
        pulumi.runtime.set_all_config({})
    for run in d.of(SYNC_RUN):
        assert clear_text_paths(run.wire, "sk-from-config") == [], run.name
        assert SECRET_SIG in json.dumps(run.wire["access_key_secret"])
    assert "sk-from-config" not in json.dumps(d.outputs)


def _fails(account: Account, **changes: Any) -> str:
    with pytest.raises(InfraConfigError) as info:
        deploy(lambda: _config(changes.pop("target", Target.FC), **changes), LOCK_A, account)
    return info.value.render()


def test_a_zone_without_fc_is_named() -> None:
    message = _fails(Account(fc_zones=("cn-hangzhou-k",)))
    assert "sdprov:zoneId cn-hangzhou-h has no FC VPC access" in message
    assert "cn-hangzhou-k" in message


def test_a_zone_without_the_nas_class_is_named() -> None:
    message = _fails(Account(nas_zones={"cn-hangzhou-h": ("Capacity",)}))
    assert "does not sell Performance NAS (sdprov:nasStorageType)" in message


def test_an_ecs_type_not_sold_in_the_zone_is_named() -> None:
    message = _fails(Account(ecs_types={}), target=Target.ECS, ecs_egress=EcsEgress.NONE)
    assert "sdprov:ecsInstanceType ecs.gn7i-c8g1.2xlarge is not sold" in message


def test_a_service_that_cannot_be_activated_points_at_the_checklist() -> None:
    message = _fails(Account(services={"nas": "Closed"}))
    assert "NAS is 'Closed' on this account" in message and "Account prerequisites" in message


def test_nothing_is_created_when_a_check_fails() -> None:
    account = Account(fc_zones=())
    with pytest.raises(InfraConfigError):
        deploy(lambda: _config(Target.FC), LOCK_A, account)
    assert "alicloud:fc/getZones:getZones" in account.calls


def test_the_fc_service_linked_role_is_created_when_missing() -> None:
    d = deploy(lambda: _config(Target.FC), LOCK_A, Account(fc_role=False))
    role = d.one("alicloud:resourcemanager/serviceLinkedRole:ServiceLinkedRole").inputs
    assert role["serviceName"] == "fc.aliyuncs.com"
