"""The deploy's own steps against a loopback FC API that behaves like a real account: functions
Pending before Active, no `returnPayload`, a failed task saying only "UnhandledInvocationError".
The sync function in the fake is the real handler, writing its result to a temporary "NAS".
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from provision.cloudsync.handler import handler, result_path
from provision.cloudsync.ready import NotReady
from provision.kinds import Family, Kind
from provision.lock.lockfile import LockEntry, Lockfile
from provision.sources.locked import UrlSource
from tests.infra.fc_server import FcState, Function, fc_server
from tests.infra.mocks import import_alicloud

import_alicloud()
from provision.infra.model_sync import SyncRunProvider  # noqa: E402
from provision.infra.ui_ready import UiReadyProvider  # noqa: E402

ENV = {"ALIBABA_CLOUD_ACCESS_KEY_ID": "AKID-test", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "s3cr3t-x"}
SYNC = "sdprov-dev-sync"
UI = "sdprov-dev-webui"
LOCK = Lockfile(
    manifest_sha256="1" * 64,
    models=(
        LockEntry(
            name="base", kind=Kind.CHECKPOINT, path="Stable-diffusion/base.safetensors",
            size=1234, sha256="a" * 64, base=Family.SD1, format="safetensors",
            source=UrlSource(url="http://127.0.0.1:9/base.safetensors"),
            entry_digest="d" * 64,
        ),
    ),
)  # fmt: skip


class _Context:
    request_id = "req-test"
    credentials = None


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)


def _props(endpoint: str, **more: Any) -> dict[str, Any]:
    return {"region": "cn-hangzhou", "endpoint": endpoint, "protocol": "http", "profile": "",
            "poll_interval": 0.01, **more}  # fmt: skip


def _sync_props(endpoint: str) -> dict[str, Any]:
    return _props(
        endpoint, function_name=SYNC, lock_digest=LOCK.digest, model_count=1, ready_timeout=10,
        payload=LOCK.render(), timeout_seconds=60,
    )  # fmt: skip


def test_a_failed_sync_fails_the_deploy_with_its_own_error(
    keys: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    not_a_dir = tmp_path / "models-is-a-file"
    not_a_dir.write_text("oops")
    monkeypatch.setenv("SDPROV_MODELS_ROOT", str(not_a_dir))
    monkeypatch.setenv("SDPROV_DATA_DIR", str(tmp_path / "nas"))
    real = Function(states=["Pending", "Pending", "Active"],
                    run=lambda event: handler(event, _Context()).encode())  # fmt: skip
    state = FcState(functions={SYNC: real})
    with fc_server(state) as (endpoint, _), pytest.raises(Exception) as info:
        SyncRunProvider().create(_sync_props(endpoint))
    message = str(info.value)
    assert "models-is-a-file" in message  # the CLI's own words, read back from "NAS"
    assert "UnhandledInvocationError" not in message
    (task,) = state.tasks.values()
    assert task.invoked_while == "Active"  # not invoked while the function was Pending
    saved = json.loads(result_path(str(tmp_path / "nas"), LOCK.render().encode()).read_text())
    assert saved["status"] == "failed" and saved["request_id"] == "req-test"
    assert all("s3cr3t-x" not in json.dumps(r["headers"]) for r in state.requests)


def test_a_sync_function_that_fails_to_start_is_named(keys: None) -> None:
    broken = Function(states=["Pending", "Failed"], reason="ImagePullFailed")
    state = FcState(functions={SYNC: broken})
    with fc_server(state) as (endpoint, _), pytest.raises(NotReady, match="ImagePullFailed"):
        SyncRunProvider().create(_sync_props(endpoint))
    assert not state.tasks


@contextmanager
def _ui(answers: list[int]) -> Iterator[str]:
    seen: list[str] = []

    class Health(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            seen.append(self.path)
            code = answers.pop(0) if len(answers) > 1 else answers[0]
            self.send_response(code)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/internal/ping"
    finally:
        server.shutdown()
        server.server_close()


def _ui_props(endpoint: str, health: str, timeout: float = 10) -> dict[str, Any]:
    return _props(endpoint, function_name=UI, image="r/x@sha256:" + "0" * 64,
                  lock_digest=LOCK.digest, health_url=health, timeout_seconds=timeout)  # fmt: skip


def test_the_deploy_waits_for_active_then_the_health_route(keys: None) -> None:
    fn = Function(states=["Pending", "Pending", "Active"])
    with fc_server(FcState(functions={UI: fn})) as (endpoint, _), _ui([502, 503, 200]) as health:
        created = UiReadyProvider().create(_ui_props(endpoint, health))
    assert created.outs is not None and created.outs["checked"] == "health route"
    assert fn.polls >= 3


def test_a_ui_that_never_becomes_active_fails_the_deploy_in_time(keys: None) -> None:
    fn = Function(states=["Pending"], reason="pulling image")
    with (
        fc_server(FcState(functions={UI: fn})) as (endpoint, _),
        _ui([200]) as health,
        pytest.raises(NotReady) as info,
    ):
        UiReadyProvider().create(_ui_props(endpoint, health, timeout=0.5))
    assert "still Pending (pulling image)" in str(info.value)
    assert "readyTimeoutSeconds" in info.value.render()


def test_a_ui_that_never_answers_names_its_url(keys: None) -> None:
    with (
        fc_server(FcState(functions={UI: Function()})) as (endpoint, _),
        _ui([503]) as health,
        pytest.raises(NotReady, match=r"internal/ping.*last: 503"),
    ):
        UiReadyProvider().create(_ui_props(endpoint, health, timeout=0.5))


def test_provider_config_keys_are_used_and_kept_out_of_outputs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key in ENV:
        monkeypatch.delenv(key, raising=False)
    props = _props("", function_name=UI, access_key_id="AKID-cfg", access_key_secret="cfg-s3cr3t")
    with fc_server(FcState(functions={UI: Function()})) as (endpoint, state):
        created = UiReadyProvider().create({**props, "endpoint": endpoint, "image": "i",
                                            "lock_digest": "x", "health_url": "",
                                            "timeout_seconds": 5})  # fmt: skip
    assert created.outs is not None and "cfg-s3cr3t" not in json.dumps(created.outs)
    assert created.outs["checked"] == "Active only"
    auth = state.requests[0]["headers"]["authorization"]
    assert auth.startswith("ACS3-HMAC-SHA256 Credential=AKID-cfg")


def test_an_update_in_progress_is_waited_for(keys: None) -> None:
    """A new image: FC keeps `state` Active while `lastUpdateStatus` is InProgress."""
    from provision.cloudsync.fc_api import FunctionState
    from provision.cloudsync.ready import Waiting, wait_active

    seen = iter([FunctionState("Active", "", "InProgress"), FunctionState("Active", "", "InProgress"),
                 FunctionState("Active", "", "Successful")])  # fmt: skip

    class Functions:
        calls = 0

        def state(self, name: str) -> FunctionState:
            Functions.calls += 1
            return next(seen)

    done = wait_active(Functions(), UI, Waiting(timeout=5, poll_interval=0.0))  # type: ignore[arg-type]
    assert done.last_update == "Successful" and Functions.calls == 3


def test_a_large_lock_is_read_from_oss_with_the_functions_sts_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """OSS header signature v1, checked by the server the way OSS documents it."""
    import base64
    import hashlib
    import hmac

    from provision.cloudsync.handler import read_lock_text

    monkeypatch.setenv("SDPROV_RETRY_BASE_DELAY", "0.01")
    body, seen = LOCK.render().encode(), []

    class Oss(BaseHTTPRequestHandler):
        hits = 0

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            Oss.hits += 1
            token = self.headers["x-oss-security-token"]
            to_sign = f"GET\n\n\n{self.headers['Date']}\nx-oss-security-token:{token}\n{self.path}"
            sig = base64.b64encode(hmac.new(b"sts-secret", to_sign.encode(), hashlib.sha1).digest())
            ok = self.headers["Authorization"] == f"OSS STS.key:{sig.decode()}"
            seen.append((self.path, ok, token))
            code = 503 if Oss.hits == 1 else (200 if ok else 403)  # one transient failure first
            self.send_response(code)
            self.send_header("Content-Length", str(len(body) if code == 200 else 0))
            self.end_headers()
            if code == 200:
                self.wfile.write(body)

    class Credentials:
        access_key_id, access_key_secret, security_token = "STS.key", "sts-secret", "sts-token"

    class Context:
        credentials = Credentials()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Oss)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        ref = {"bucket": "team-locks", "key": "sdprov-locks/abc.json", "scheme": "http",
               "endpoint": f"127.0.0.1:{server.server_address[1]}"}  # fmt: skip
        text = read_lock_text(json.dumps({"oss": ref}).encode(), Context())
    finally:
        server.shutdown()
        server.server_close()
    assert text.encode() == body
    assert seen[-1] == ("/team-locks/sdprov-locks/abc.json", True, "sts-token")
    assert len(seen) == 2  # the 503 was retried by the network layer
