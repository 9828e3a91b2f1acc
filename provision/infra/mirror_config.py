"""`sdprov:mirror`, read and checked (no pulumi_alicloud import: the config tests stay light).

See provision.infra.mirror for what it builds.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Final

import pulumi

from provision.errors import InfraConfigError

_BUCKET: Final = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
_KEYS: Final = frozenset({"bucket", "prefix", "adopt", "seed"})
_SEED_KEYS: Final = frozenset({"region", "bucket", "adopt"})


@dataclass(frozen=True, slots=True, kw_only=True)
class SeedConfig:
    region: str
    bucket: str
    adopt: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class MirrorConfig:
    bucket: str
    prefix: str = ""
    adopt: bool = False
    seed: SeedConfig | None = None

    @property
    def url(self) -> str:
        return f"oss://{self.bucket}/{self.prefix}" if self.prefix else f"oss://{self.bucket}"

    @property
    def object_prefix(self) -> str:
        return f"{self.prefix}/" if self.prefix else ""


def _bucket(raw: dict[str, Any], where: str) -> str:
    name = raw.get("bucket")
    if not isinstance(name, str) or not _BUCKET.match(name):
        raise InfraConfigError(
            f"{where}.bucket must be an OSS bucket name (3-63 lowercase letters, digits, '-')"
        )
    return name


def _unknown(raw: dict[str, Any], allowed: frozenset[str], where: str) -> None:
    extra = sorted(set(raw) - allowed)
    if extra:
        raise InfraConfigError(f"{where}: unknown key(s) {', '.join(extra)}; allowed: "
                               f"{', '.join(sorted(allowed))}")  # fmt: skip


def parse_mirror(raw: object, region: str, where: str = "sdprov:mirror") -> MirrorConfig:
    if not isinstance(raw, dict):
        raise InfraConfigError(f"{where} must be an object with at least `bucket`")
    _unknown(raw, _KEYS, where)
    prefix = raw.get("prefix", "")
    if not isinstance(prefix, str) or any(
        part in ("", ".", "..") for part in prefix.strip("/").split("/") if prefix.strip("/")
    ):
        raise InfraConfigError(f"{where}.prefix must be a plain path such as `sd`")
    seed = None
    if (raw_seed := raw.get("seed")) is not None:
        if not isinstance(raw_seed, dict) or not isinstance(raw_seed.get("region"), str):
            raise InfraConfigError(f"{where}.seed must be an object with `region` and `bucket`")
        _unknown(raw_seed, _SEED_KEYS, f"{where}.seed")
        if raw_seed["region"] == region:
            raise InfraConfigError(f"{where}.seed.region must differ from alicloud:region")
        seed = SeedConfig(
            region=raw_seed["region"],
            bucket=_bucket(raw_seed, f"{where}.seed"),
            adopt=bool(raw_seed.get("adopt", False)),
        )
    return MirrorConfig(
        bucket=_bucket(raw, where),
        prefix=prefix.strip("/"),
        adopt=bool(raw.get("adopt", False)),
        seed=seed,
    )


def read_pulumi_config(cfg: pulumi.Config, region: str) -> MirrorConfig | None:
    raw = cfg.get_object("mirror")
    return None if raw is None else parse_mirror(raw, region)


def read_policy(bucket: str, prefix: str) -> str:
    """Least privilege for the sync function: read objects under the mirror prefix."""
    return json.dumps(
        {
            "Version": "1",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["oss:GetObject"],
                    "Resource": [f"acs:oss:*:*:{bucket}/{prefix}*"],
                }
            ],
        },
        sort_keys=True,
    )


def internal_endpoint(region: str) -> str:
    return f"https://oss-{region}-internal.aliyuncs.com"


def transfer_type(source_region: str, destination_region: str) -> str:
    """Replication across the mainland border needs OSS transfer acceleration (`oss_acc`)."""

    def mainland(region: str) -> bool:
        return region.startswith("cn-") and region != "cn-hongkong"

    return "oss_acc" if mainland(source_region) != mainland(destination_region) else "internal"


def sync_env(config: MirrorConfig, region: str) -> dict[str, str]:
    """What the sync function needs to read the mirror first, over the internal endpoint."""
    return {
        "SDPROV_MIRROR": config.url,
        "SDPROV_OSS_ENDPOINT": internal_endpoint(region),
        "OSS_REGION": region,
    }
