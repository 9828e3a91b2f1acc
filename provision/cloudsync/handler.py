"""FC 3.0 event handler of the model sync function (runtime python3.12, on the models NAS).

Event: the lockfile JSON itself, or `{"oss": {"bucket", "key", "endpoint"}}` naming an OSS object
that holds it (async payloads are limited to 128 KB). The handler runs the stable CLI contract
(design.md §2) in a subprocess:

    python -m provision.cli sync --lock <tmp>/models.lock.json \
        --models-root /mnt/auto/sd/models --json

Tokens come from the function's environment (`CIVITAI_TOKEN`, `HF_TOKEN`, set from Pulumi secrets)
and reach the CLI through its environment, never its arguments. After a sync it seeds WebUI's
hash cache (`sdprov webui seed-cache`, design.md §6), and on ECS refreshes and verifies the
WebUIs listed in `SDPROV_WEBUI_URLS` with the engine's own `refresh_and_verify` (what
`sdprov sync --webui` runs); problems there are warnings (the models are in place either way).

Every run writes its result, success or failure, to `<data dir>/.sdprov/sync-results/<sha256 of
the event>.json` on NAS, then a failed one raises `SyncError`. FC shows a raised error only as
"UnhandledInvocationError" (the task's `returnPayload` is invite-only), so `pulumi up` reads the
sync's own last error lines back with a synchronous `{"sdprov_report": {"payload_sha256": …}}`
event, which returns that file.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import subprocess
import sys
import tempfile
import urllib.parse
from email.utils import formatdate
from pathlib import Path
from typing import Any, Final

from provision.lock.lockfile import Lockfile

log = logging.getLogger(__name__)

DEFAULT_DATA_DIR: Final = "/mnt/auto/sd"  # WebUI's --data-dir: its cache.json lives here
DEFAULT_MODELS_ROOT: Final = f"{DEFAULT_DATA_DIR}/models"
SECRET_ENV: Final = ("CIVITAI_TOKEN", "HF_TOKEN", "SDPROV_WEBUI_AUTH")
REPORT_KEY: Final = "sdprov_report"  # == provision.cloudsync.invoke.REPORT_KEY
SHARD_KEY: Final = "sdprov_shard"  # == provision.cloudsync.shards.SHARD_KEY
RESULTS_DIR: Final = ".sdprov/sync-results"  # under the data dir, beside (not in) the models
ERROR_LINES: Final = 20  # the last lines of the CLI's stderr that reach `pulumi up`
CODE_ROOT: Final = Path(__file__).resolve().parents[2]  # holds provision/ (and python/ deps)


class SyncError(Exception):
    """The sync failed; the message is what `sdprov sync` said (secrets scrubbed)."""


def _scrub(text: str, environ: dict[str, str]) -> str:
    for name in SECRET_ENV:
        value = environ.get(name, "")
        if len(value) >= 4:
            text = text.replace(value, "***")
    return text


def _credentials(context: Any) -> tuple[str, str, str]:
    creds = getattr(context, "credentials", None)
    if creds is None:
        raise SyncError("the function has no role credentials to read the lock from OSS")
    return (
        str(creds.access_key_id),
        str(creds.access_key_secret),
        str(getattr(creds, "security_token", "") or ""),
    )


def oss_url(ref: dict[str, str]) -> str:
    """Virtual-hosted style, or path style when the endpoint is an IP (as Alibaba's SDKs do)."""
    bucket, key, endpoint = ref["bucket"], ref["key"], ref["endpoint"]
    scheme = ref.get("scheme", "https")
    host = endpoint.rsplit(":", 1)[0]
    if host.replace(".", "").isdigit():
        return f"{scheme}://{endpoint}/{bucket}/{urllib.parse.quote(key)}"
    return f"{scheme}://{bucket}.{endpoint}/{urllib.parse.quote(key)}"


def oss_headers(
    ref: dict[str, str], key_id: str, secret: str, token: str, date: str
) -> dict[str, str]:
    """OSS header signature v1 over `GET`, the date, the STS token and `/bucket/key`."""
    canonical_headers = f"x-oss-security-token:{token}\n" if token else ""
    to_sign = f"GET\n\n\n{date}\n{canonical_headers}/{ref['bucket']}/{ref['key']}"
    signature = base64.b64encode(
        hmac.new(secret.encode(), to_sign.encode(), hashlib.sha1).digest()
    ).decode()
    headers = {"Date": date, "Authorization": f"OSS {key_id}:{signature}"}
    if token:
        headers["x-oss-security-token"] = token
    return headers


def _fetch_oss(ref: dict[str, str], context: Any) -> str:
    """GET one object with the function's STS credentials, through sdprov's network layer
    (`get_small`: the signed headers go to this URL only, retries, a size bound)."""
    from provision.errors import SourceError
    from provision.net.transfer import get_small

    key_id, secret, token = _credentials(context)
    headers = oss_headers(ref, key_id, secret, token, formatdate(usegmt=True))
    what = f"reading the lock from oss://{ref['bucket']}/{ref['key']}"
    try:
        return get_small(oss_url(ref), what=what, headers=headers).decode("utf-8")
    except SourceError as exc:
        raise SyncError(str(exc)) from None


def read_lock_text(event: bytes, context: Any) -> str:
    try:
        payload = json.loads(event)
    except ValueError as exc:
        raise SyncError(f"the event is not JSON: {exc}") from exc
    if isinstance(payload, dict) and isinstance(payload.get("oss"), dict):
        return _fetch_oss(payload["oss"], context)
    return event.decode("utf-8")


def _child_env(environ: dict[str, str]) -> dict[str, str]:
    env = dict(environ)
    paths = [str(CODE_ROOT), str(CODE_ROOT / "python")]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def _cli(argv: list[str], environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "provision.cli", *argv],
        env=_child_env(environ),
        capture_output=True,
        text=True,
        check=False,
    )


def _json_or_text(stdout: str, environ: dict[str, str]) -> Any:
    try:
        return json.loads(stdout) if stdout.strip() else {}
    except ValueError:
        return {"stdout": _scrub(stdout.strip(), environ)}


def run_sync(
    lock_text: str, models_root: str, data_dir: str, environ: dict[str, str]
) -> dict[str, Any]:
    """`sdprov sync`, then `sdprov webui seed-cache` so WebUI never re-hashes what we placed."""
    lock = Lockfile.parse(lock_text, "the sync payload")  # refuse a bad lock before any I/O
    with tempfile.TemporaryDirectory(prefix="sdprov-sync-") as tmp:
        lock_path = Path(tmp) / "models.lock.json"
        lock_path.write_text(lock_text, encoding="utf-8")
        common = ["--lock", str(lock_path), "--models-root", models_root]
        prune = ["--prune"] if environ.get("SDPROV_SYNC_PRUNE") == "1" else []
        proc = _cli(["sync", *common, *prune, "--json"], environ)
        if proc.returncode != 0:
            message = proc.stderr.strip() or proc.stdout.strip() or f"exit {proc.returncode}"
            if "--prune" in message and not prune:
                # The mass-removal guard stopped the sync: in a stack, the switch is config.
                message += (
                    "\n  in a stack: `pulumi config set sdprov:prune true` for this deploy, "
                    "then set it back"
                )
            raise SyncError(_scrub(message, environ))
        report = _json_or_text(proc.stdout, environ)
        seed_argv = ["webui", "seed-cache", *common, "--data-dir", data_dir, "--json"]
        webui_urls = [u for u in environ.get("SDPROV_WEBUI_URLS", "").split(",") if u.strip()]
        if webui_urls:  # ECS: refuse to write cache.json under a running WebUI 1.6
            seed_argv += ["--webui", webui_urls[0].strip()]
        seed = _cli(seed_argv, environ)
    warnings: list[str] = []
    if seed.returncode != 0:  # the models are in place; WebUI will hash them itself, slowly
        warnings.append(_scrub("hash cache not seeded: " + seed.stderr.strip(), environ))
    return {
        "lock_digest": lock.digest,
        "models": len(lock.models),
        "sync": report,
        "seed_cache": _json_or_text(seed.stdout, environ) if seed.returncode == 0 else None,
        "warnings": warnings,
    }


def run_shard(
    lock_text: str, models_root: str, shard: str, environ: dict[str, str]
) -> dict[str, Any]:
    """`sdprov sync --shard I/N`: this task's share of the downloads, nothing else."""
    lock = Lockfile.parse(lock_text, "the sync payload")
    with tempfile.TemporaryDirectory(prefix="sdprov-shard-") as tmp:
        lock_path = Path(tmp) / "models.lock.json"
        lock_path.write_text(lock_text, encoding="utf-8")
        argv = ["sync", "--lock", str(lock_path), "--models-root", models_root, "--shard", shard]
        proc = _cli([*argv, "--json"], environ)
    if proc.returncode != 0:
        message = proc.stderr.strip() or proc.stdout.strip() or f"exit {proc.returncode}"
        raise SyncError(_scrub(f"shard {shard}: {message}", environ))
    report = _json_or_text(proc.stdout, environ)
    return {"lock_digest": lock.digest, "shard": shard, "sync": report, "warnings": []}


def _shard_request(event: bytes) -> tuple[str, bytes] | None:
    """(I/N, the lock payload) for a shard task's event, else None."""
    try:
        parsed = json.loads(event)
    except ValueError:
        return None
    if isinstance(parsed, dict) and isinstance(parsed.get(SHARD_KEY), str):
        return str(parsed[SHARD_KEY]), str(parsed.get("payload", "")).encode("utf-8")
    return None


def refresh_webuis(lock_text: str, models_root: str, environ: dict[str, str]) -> list[str]:
    """Rescan and verify each WebUI in `SDPROV_WEBUI_URLS` through the engine (one problem a line).

    The same `refresh_and_verify` as `sdprov sync --webui`: no second WebUI client here.
    """
    from provision.webui.client import parse_auth
    from provision.webui.verify import refresh_and_verify

    urls = [u.strip().rstrip("/") for u in environ.get("SDPROV_WEBUI_URLS", "").split(",")]
    auth_text = environ.get("SDPROV_WEBUI_AUTH", "")
    auth = parse_auth(auth_text) if auth_text else None
    lock = Lockfile.parse(lock_text, "the sync payload")
    problems: list[str] = []
    for url in filter(None, urls):
        try:
            report = refresh_and_verify(lock, Path(models_root), url, auth)
        except Exception as exc:  # a WebUI still starting is a warning, not a failed sync
            problems.append(_scrub(f"{url}: {exc}", environ))
            continue
        problems += [_scrub(f"{url}: {row.path}: {row.reason}", environ) for row in report.problems]
    return problems


def _last_lines(text: str) -> str:
    return "\n".join(text.strip().splitlines()[-ERROR_LINES:])


def result_path(data_dir: str, event: bytes) -> Path:
    return Path(data_dir) / RESULTS_DIR / f"{hashlib.sha256(event).hexdigest()}.json"


def _write_result(path: Path, result: dict[str, Any]) -> None:
    """Atomically, so a report read mid-write sees the old result or the new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, sort_keys=True), encoding="utf-8")
    tmp.replace(path)


def read_report(event: dict[str, Any], data_dir: str) -> str:
    sha = str(event.get("payload_sha256", ""))
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        return json.dumps({"status": "unknown", "error": "payload_sha256 must be 64 hex digits"})
    path = Path(data_dir) / RESULTS_DIR / f"{sha}.json"
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return json.dumps({"status": "unknown", "error": f"no sync result for {sha[:12]}"})


def _report_request(event: bytes) -> dict[str, Any] | None:
    try:
        parsed = json.loads(event)
    except ValueError:
        return None
    if isinstance(parsed, dict) and isinstance(parsed.get(REPORT_KEY), dict):
        return dict(parsed[REPORT_KEY])
    return None


def handler(event: bytes, context: Any) -> str:
    environ = dict(os.environ)
    models_root = environ.get("SDPROV_MODELS_ROOT", DEFAULT_MODELS_ROOT)
    data_dir = environ.get("SDPROV_DATA_DIR", DEFAULT_DATA_DIR)
    report = _report_request(event)
    if report is not None:
        return read_report(report, data_dir)
    where = result_path(data_dir, event)
    request_id = str(getattr(context, "request_id", "") or "")
    try:
        shard = _shard_request(event)
        if shard is not None:
            result = run_shard(read_lock_text(shard[1], context), models_root, shard[0], environ)
        else:
            lock_text = read_lock_text(event, context)
            result = run_sync(lock_text, models_root, data_dir, environ)
            result["warnings"] += refresh_webuis(lock_text, models_root, environ)
    except Exception as exc:
        message = str(exc) if isinstance(exc, SyncError) else f"{type(exc).__name__}: {exc}"
        error = _scrub(_last_lines(message), environ)
        _write_result(where, {"status": "failed", "error": error, "request_id": request_id})
        raise SyncError(error) from None
    result.update(status="succeeded", request_id=request_id)
    _write_result(where, result)
    return json.dumps(result, sort_keys=True)
