"""FC 3.0 event handler of the model sync function (runtime python3.12, on the models NAS).

Event: the lockfile JSON itself, or `{"oss": {"bucket", "key", "endpoint"}}` naming an OSS object
that holds it (async payloads are limited to 128 KB). The handler runs the stable CLI contract
(design.md §2) in a subprocess:

    python -m provision.cli sync --lock <tmp>/models.lock.json \
        --models-root /mnt/auto/sd/models --json

Tokens come from the function's environment (`CIVITAI_TOKEN`, `HF_TOKEN`, set from Pulumi secrets)
and reach the CLI through its environment, never its arguments. A failed sync raises `SyncError`
whose message is the CLI's own stderr; FC records it as the task's error and `pulumi up` shows it.
After a sync it seeds WebUI's hash cache (`sdprov webui seed-cache`, design.md §6), and on ECS
refreshes the WebUIs listed in `SDPROV_WEBUI_URLS`; problems there are warnings in the result
(the models are in place either way).
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
import time
import urllib.error
import urllib.parse
import urllib.request
from email.utils import formatdate
from pathlib import Path
from typing import Any, Final

from provision.lock.lockfile import Lockfile

log = logging.getLogger(__name__)

DEFAULT_DATA_DIR: Final = "/mnt/auto/sd"  # WebUI's --data-dir: its cache.json lives here
DEFAULT_MODELS_ROOT: Final = f"{DEFAULT_DATA_DIR}/models"
SECRET_ENV: Final = ("CIVITAI_TOKEN", "HF_TOKEN", "SDPROV_WEBUI_AUTH")
REFRESH_ROUTES: Final = (
    "/sdapi/v1/refresh-checkpoints",
    "/sdapi/v1/refresh-vae",
    "/sdapi/v1/refresh-loras",
    "/sdapi/v1/refresh-embeddings",
)
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


def _fetch_oss(ref: dict[str, str], context: Any) -> str:
    """GET one object with the function's STS credentials (OSS header signature v1)."""
    key_id, secret, token = _credentials(context)
    bucket, key, endpoint = ref["bucket"], ref["key"], ref["endpoint"]
    date = formatdate(usegmt=True)
    canonical_headers = f"x-oss-security-token:{token}\n" if token else ""
    to_sign = f"GET\n\n\n{date}\n{canonical_headers}/{bucket}/{key}"
    signature = base64.b64encode(
        hmac.new(secret.encode(), to_sign.encode(), hashlib.sha1).digest()
    ).decode()
    headers = {"Date": date, "Authorization": f"OSS {key_id}:{signature}"}
    if token:
        headers["x-oss-security-token"] = token
    url = f"https://{bucket}.{endpoint}/{urllib.parse.quote(key)}"
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return bytes(response.read()).decode("utf-8")
    except urllib.error.HTTPError as exc:
        raise SyncError(
            f"could not read the lock from oss://{bucket}/{key}: HTTP {exc.code}"
        ) from exc


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
        proc = _cli(["sync", *common, "--json"], environ)
        if proc.returncode != 0:
            message = proc.stderr.strip() or proc.stdout.strip() or f"exit {proc.returncode}"
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


def refresh_webuis(environ: dict[str, str], *, attempts: int = 6, delay: float = 10.0) -> list[str]:
    """POST the refresh routes to each WebUI; return one line per problem (never raises)."""
    urls = [u.strip().rstrip("/") for u in environ.get("SDPROV_WEBUI_URLS", "").split(",")]
    auth = environ.get("SDPROV_WEBUI_AUTH", "")
    headers = {"Content-Type": "application/json"}
    if auth:
        headers["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
    problems: list[str] = []
    for base in filter(None, urls):
        for route in REFRESH_ROUTES:
            for attempt in range(attempts):
                request = urllib.request.Request(
                    base + route, data=b"{}", headers=headers, method="POST"
                )
                try:
                    with urllib.request.urlopen(request, timeout=30):
                        break
                except (urllib.error.URLError, OSError) as exc:
                    if attempt == attempts - 1:
                        problems.append(f"{base}{route}: {exc}")
                    else:
                        time.sleep(delay)
    return problems


def handler(event: bytes, context: Any) -> str:
    environ = dict(os.environ)
    lock_text = read_lock_text(event, context)
    models_root = environ.get("SDPROV_MODELS_ROOT", DEFAULT_MODELS_ROOT)
    data_dir = environ.get("SDPROV_DATA_DIR", DEFAULT_DATA_DIR)
    result = run_sync(lock_text, models_root, data_dir, environ)
    result["warnings"] += refresh_webuis(environ)
    return json.dumps(result, sort_keys=True)
