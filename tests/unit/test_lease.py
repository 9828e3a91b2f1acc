from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

from provision.errors import LeaseHeld
from provision.sync.lease import Lease, LeaseInfo


def test_second_writer_is_refused_with_owner_and_expiry(tmp_path: Path) -> None:
    path = tmp_path / ".sdprov" / "lease"
    with Lease(path, ttl=30):
        info = LeaseInfo.read(path)
        assert info is not None and info.pid == os.getpid()
        with pytest.raises(LeaseHeld, match=r"pid \d+ .*expires in \d+s"):
            Lease(path, ttl=30).acquire()
    assert not path.exists()  # released


def test_expired_lease_of_another_host_is_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "lease"
    stale = LeaseInfo(owner="other:1:x", host="other-host", pid=1, expires=time.time() - 1)
    path.write_text(stale.to_json())
    with Lease(path, ttl=30) as lease:
        info = LeaseInfo.read(path)
        assert info is not None and info.owner == lease.owner
    assert not list(tmp_path.glob("lease.stale-*"))


def test_live_lease_of_another_host_is_respected_until_it_expires(tmp_path: Path) -> None:
    path = tmp_path / "lease"
    live = LeaseInfo(owner="other:1:x", host="other-host", pid=1, expires=time.time() + 0.6)
    path.write_text(live.to_json())
    with pytest.raises(LeaseHeld, match="other-host"):
        Lease(path, ttl=30).acquire()
    # With --lease-wait we get it once the other writer stops renewing.
    with Lease(path, ttl=30, wait=5) as lease:
        assert LeaseInfo.read(path).owner == lease.owner  # type: ignore[union-attr]


def test_lease_is_renewed_while_held(tmp_path: Path) -> None:
    path = tmp_path / "lease"
    with Lease(path, ttl=0.3):
        first = LeaseInfo.read(path)
        time.sleep(0.5)
        second = LeaseInfo.read(path)
        assert first is not None and second is not None
        assert second.expires > first.expires
        # Someone else judging by expiry alone still sees it live.
        assert second.expires > time.time()


def test_losing_the_lease_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "lease"
    lease = Lease(path, ttl=0.3)
    lease.acquire()
    try:
        path.write_text(json.dumps({"owner": "thief", "host": "h", "pid": 1, "expires": 1e12}))
        time.sleep(0.5)
        with pytest.raises(LeaseHeld, match="took over"):
            lease.check()
    finally:
        lease.release()
    assert LeaseInfo.read(path).owner == "thief"  # type: ignore[union-attr]  # not ours to delete


def test_concurrent_takers_elect_one_writer(tmp_path: Path) -> None:
    path = tmp_path / "lease"
    path.write_text(LeaseInfo(owner="dead", host="gone", pid=1, expires=time.time() - 10).to_json())
    winners: list[str] = []
    barrier = threading.Barrier(8)

    def contend() -> None:
        lease = Lease(path, ttl=30)
        barrier.wait()
        try:
            lease.acquire()
        except LeaseHeld:
            return
        winners.append(lease.owner)
        time.sleep(0.3)  # hold it while the others try
        lease.release()

    threads = [threading.Thread(target=contend) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1
