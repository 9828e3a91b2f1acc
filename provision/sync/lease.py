"""One writer per models root, safe on NFS (Alibaba NAS) where flock/fcntl cannot be trusted.

The lease is a small JSON file created with O_CREAT|O_EXCL (atomic on NFSv3+ and NFSv4),
holding the owner and an expiry. A background thread renews it; a lease whose expiry has
passed (or whose writer on this same host is dead) is taken over, one taker at a time.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from provision.errors import LeaseHeld

log = logging.getLogger(__name__)

DEFAULT_TTL: Final = 60.0
GUARD_TTL: Final = 30.0  # the takeover guard is held for milliseconds; older means its taker died


@dataclass(frozen=True, slots=True, kw_only=True)
class LeaseInfo:
    owner: str
    host: str
    pid: int
    expires: float

    @classmethod
    def read(cls, path: Path) -> LeaseInfo | None:
        try:
            raw: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            return cls(
                owner=str(raw["owner"]),
                host=str(raw["host"]),
                pid=int(raw["pid"]),
                expires=float(raw["expires"]),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def to_json(self, extra: dict[str, str] | None = None) -> str:
        return json.dumps(
            {"owner": self.owner, "host": self.host, "pid": self.pid, "expires": self.expires}
            | (extra or {})
        )


class Lease:
    """`with Lease(root / ".sdprov" / "lease"):` — raises LeaseHeld if another writer is live."""

    def __init__(
        self,
        path: Path,
        *,
        ttl: float = DEFAULT_TTL,
        wait: float = 0.0,
        extra: dict[str, str] | None = None,
        durable: bool = True,
    ) -> None:
        self.path = path
        # False for per-file claims: a claim outlives no crash that matters (its writer is
        # dead, so it is taken over), and an fsync per claim was ~10 % of a small-file sync.
        self.durable = durable
        self.extra = dict(extra or {})  # written beside the owner (a claim's path and shard)
        self.ttl = ttl
        self.wait = wait
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self._stop = threading.Event()
        self._lost = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Lease:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def _info(self) -> LeaseInfo:
        return LeaseInfo(
            owner=self.owner,
            host=socket.gethostname(),
            pid=os.getpid(),
            expires=time.time() + self.ttl,
        )

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.wait
        while True:
            if self._try_create():
                break
            current = LeaseInfo.read(self.path)
            if self._is_stale(current):
                self._take_over(current)
                continue
            if time.monotonic() >= deadline:
                raise _held_error(self.path, current)
            time.sleep(min(1.0, max(0.05, self.ttl / 20)))
        self._thread = threading.Thread(target=self._renew_loop, name="sdprov-lease", daemon=True)
        self._thread.start()

    def _try_create(self) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(self._info().to_json(self.extra))
            if self.durable:
                fh.flush()
                os.fsync(fh.fileno())
        return True

    def _is_stale(self, current: LeaseInfo | None) -> bool:
        if current is not None:
            # A writer on this very host whose process is gone (kill -9, OOM) need not be
            # waited for; other hosts' writers are judged by expiry alone.
            return current.expires < time.time() or (
                current.host == socket.gethostname() and not _pid_alive(current.pid)
            )
        # Unreadable (being written, or garbage): stale only once it is older than a TTL.
        try:
            return self.path.stat().st_mtime + self.ttl < time.time()
        except FileNotFoundError:
            return False  # gone meanwhile: just retry the create

    def _take_over(self, seen: LeaseInfo | None) -> None:
        """Remove a stale lease, under a short-lived O_EXCL takeover guard.

        Only the guard holder may delete a lease, and only after re-reading it and finding
        the same stale owner it judged; every contender then races on the O_EXCL create, which
        exactly one wins. Without the guard, a slow taker could delete a lease that another
        taker had just created.
        """
        guard = self.path.with_name(f"{self.path.name}.takeover")
        try:
            fd = os.open(guard, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            with contextlib.suppress(FileNotFoundError):
                if guard.stat().st_mtime + GUARD_TTL < time.time():
                    guard.unlink()  # a taker died inside the guard
            time.sleep(0.01)
            return
        os.close(fd)
        try:
            again = LeaseInfo.read(self.path)
            same = (again is None and seen is None) or (
                again is not None and seen is not None and again.owner == seen.owner
            )
            if same and self._is_stale(again):
                log.warning(
                    "taking over a stale lease on %s (owner %s)",
                    self.path.parent.parent,
                    seen.owner if seen else "unknown",
                )
                self.path.unlink(missing_ok=True)
        finally:
            guard.unlink(missing_ok=True)

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            current = LeaseInfo.read(self.path)
            if current is None or current.owner != self.owner:
                log.error("the lease on %s was taken over; stopping", self.path.parent.parent)
                self._lost.set()
                return
            tmp = self.path.with_name(f"{self.path.name}.{uuid.uuid4().hex[:8]}.tmp")
            tmp.write_text(self._info().to_json(self.extra), encoding="utf-8")
            tmp.replace(self.path)

    def check(self) -> None:
        """Raise if the lease was lost (e.g. this process stalled past its TTL)."""
        if self._lost.is_set():
            raise LeaseHeld(
                f"lost the writer lease on {self.path.parent.parent} (another sync took over)",
                hint="run the sync again once the other one has finished",
            )

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        current = LeaseInfo.read(self.path)
        if current is not None and current.owner == self.owner:
            self.path.unlink(missing_ok=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _held_error(path: Path, current: LeaseInfo | None) -> LeaseHeld:
    root = path.parent.parent
    if current is None:
        return LeaseHeld(f"another sdprov is writing to {root} (lease {path})")
    left = max(0, int(current.expires - time.time()))
    return LeaseHeld(
        f"another sdprov sync is writing to {root}: {current.host} pid {current.pid} "
        f"(lease renewed, expires in {left}s unless renewed)",
        hint="wait for it to finish; a crashed writer's lease expires on its own",
    )
