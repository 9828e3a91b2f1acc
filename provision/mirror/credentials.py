"""Alibaba Cloud's default credential chain, the part sdprov needs, without its network probes.

In order: `ALIBABA_CLOUD_ACCESS_KEY_ID`/`_SECRET` (+ `ALIBABA_CLOUD_SECURITY_TOKEN`: what FC
injects for the function's RAM role), the OSS SDK's `OSS_ACCESS_KEY_ID`/`_SECRET`
(+ `OSS_SESSION_TOKEN`), the credentials file (`ALIBABA_CLOUD_CREDENTIALS_FILE`, else
`~/.alibabacloud/credentials`, profile `ALIBABA_CLOUD_PROFILE` or `default`), then the aliyun
CLI's `~/.aliyun/config.json` (its current profile, AK or StsToken mode). The secret lives only
in the returned object (never in its repr) and in request signatures.
"""

from __future__ import annotations

import configparser
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from provision.errors import UsageError


@dataclass(frozen=True, slots=True)
class AccessKey:
    key_id: str
    secret: str = field(repr=False)
    token: str | None = field(default=None, repr=False)
    origin: str = ""  # where it came from, for messages


def _from_env(prefix: str, token_name: str) -> AccessKey | None:
    key_id = os.environ.get(f"{prefix}_ACCESS_KEY_ID", "")
    secret = os.environ.get(f"{prefix}_ACCESS_KEY_SECRET", "")
    if key_id and secret:
        token = os.environ.get(token_name) or None
        return AccessKey(key_id, secret, token, origin=f"{prefix}_ACCESS_KEY_ID")
    return None


def _from_credentials_file(home: Path) -> AccessKey | None:
    path = Path(
        os.environ.get("ALIBABA_CLOUD_CREDENTIALS_FILE") or home / ".alibabacloud" / "credentials"
    )
    if not path.is_file():
        return None
    parser = configparser.ConfigParser()
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: not a readable credentials file ({type(exc).__name__})") from exc
    profile = os.environ.get("ALIBABA_CLOUD_PROFILE") or "default"
    if not parser.has_section(profile):
        return None
    section = parser[profile]
    if section.get("type", "access_key") not in ("access_key", "sts"):
        return None  # ram_role_arn, ecs_ram_role…: not supported here; say so below
    key_id, secret = section.get("access_key_id", ""), section.get("access_key_secret", "")
    if key_id and secret:
        token = section.get("security_token") or None
        return AccessKey(key_id, secret, token, origin=f"{path} [{profile}]")
    return None


def _from_aliyun_cli(home: Path) -> AccessKey | None:
    path = home / ".aliyun" / "config.json"
    if not path.is_file():
        return None
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: not readable JSON ({type(exc).__name__})") from exc
    wanted = os.environ.get("ALIBABA_CLOUD_PROFILE") or config.get("current") or "default"
    for profile in config.get("profiles") or []:
        if not isinstance(profile, dict) or profile.get("name") != wanted:
            continue
        if profile.get("mode") not in ("AK", "StsToken"):
            return None
        key_id = str(profile.get("access_key_id") or "")
        secret = str(profile.get("access_key_secret") or "")
        if key_id and secret:
            token = str(profile.get("sts_token") or "") or None
            return AccessKey(key_id, secret, token, origin=f"{path} [{wanted}]")
    return None


def default_access_key() -> AccessKey:
    """The first access key of the chain; a UsageError (exit 2) saying what to set if none."""
    home = Path(os.environ.get("HOME") or Path.home())
    for found in (
        _from_env("ALIBABA_CLOUD", "ALIBABA_CLOUD_SECURITY_TOKEN"),
        _from_env("OSS", "OSS_SESSION_TOKEN"),
        _from_credentials_file(home),
        _from_aliyun_cli(home),
    ):
        if found is not None:
            return found
    raise UsageError(
        "no Alibaba Cloud credentials for the OSS mirror",
        hint="set ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET (or "
        "OSS_ACCESS_KEY_ID/_SECRET, or an access_key profile in ~/.alibabacloud/credentials)",
    )
