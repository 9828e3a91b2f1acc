"""Per-file download claims under `<root>/.sdprov/claims/`, for N writers on one root.

A claim is a small lease (provision.sync.lease): a JSON file created with O_CREAT|O_EXCL, which
is atomic on NFSv3+/NFSv4 (Alibaba NAS) where flock/fcntl locks cannot be trusted, holding the
owner, host, pid and an expiry that a thread renews while the file downloads. A claim whose
expiry passed, or whose owner on this host is dead (kill -9), is taken over by the next writer,
which resumes the dead one's partial (partials are named by content and path, not by owner).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from provision.errors import LeaseHeld
from provision.sync.download import Cancelled
from provision.sync.lease import DEFAULT_TTL, Lease, LeaseInfo
from provision.sync.state import STATE_DIR

CLAIM_TTL: Final = DEFAULT_TTL  # ≤ 60 s (design §8), renewed every third of it


def claims_dir(root: Path) -> Path:
    return root / STATE_DIR / "claims"


def claim_path(root: Path, path: str) -> Path:
    return claims_dir(root) / hashlib.sha256(path.encode()).hexdigest()[:24]


def claim(
    root: Path, path: str, shard: str, *, cancel: threading.Event, ttl: float = CLAIM_TTL
) -> Lease:
    """Take the claim on one lock path, waiting while a live writer holds it.

    Returns the held claim (a Lease: `check()` raises once it was lost, `release()` ends it).
    Raises Cancelled when `cancel` is set while waiting (Ctrl-C).
    """
    while True:
        lease = Lease(
            claim_path(root, path),
            ttl=ttl,
            wait=1.0,
            extra={"path": path, "shard": shard},
            durable=False,
        )
        try:
            lease.acquire()
            return lease
        except LeaseHeld:
            if cancel.is_set():
                raise Cancelled(path, 0) from None


@dataclass(frozen=True, slots=True, kw_only=True)
class ClaimView:
    """A claim as `sdprov status` shows it."""

    path: str
    shard: str
    host: str
    pid: int
    expired: bool


def live_claims(root: Path) -> list[ClaimView]:
    folder = claims_dir(root)
    if not folder.is_dir():
        return []
    views: list[ClaimView] = []
    now = time.time()
    for file in sorted(folder.iterdir()):
        info = LeaseInfo.read(file)
        if info is None:
            continue  # being written, or a takeover guard
        try:
            raw: dict[str, Any] = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        views.append(
            ClaimView(
                path=str(raw.get("path", "")),
                shard=str(raw.get("shard", "")),
                host=info.host,
                pid=info.pid,
                expired=info.expires < now,
            )
        )
    return views
