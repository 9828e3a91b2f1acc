"""Wait until an FC function can serve: `state` Active, then (for the UI) its health route.

`pulumi up` calls this twice: for the sync function before it is invoked (an async task sent to a
function still Pending waits in FC's queue, but one sent to a function that goes Failed never
runs), and for the UI function at the end, so the deploy finishes only once the UI answers. A
first GPU deploy pulls a ~10 GB image: minutes, bounded by `timeout`; on timeout the error says
what FC last reported and where to look.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from provision.cloudsync.fc_api import FcFunctions, FunctionState
from provision.errors import SdprovError

ACTIVE: Final = "Active"
FAILED: Final = "Failed"


class NotReady(SdprovError):
    """A function did not become ready in time, or FC says it failed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Waiting:
    timeout: float
    poll_interval: float = 10.0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep

    def deadline(self) -> float:
        return self.clock() + self.timeout

    def pause(self, deadline: float) -> None:
        self.sleep(min(self.poll_interval, max(0.0, deadline - self.clock())))


def wait_active(functions: FcFunctions, name: str, waiting: Waiting) -> FunctionState:
    deadline = waiting.deadline()
    last: FunctionState | None = None
    while True:
        last = functions.state(name) or last
        if last is not None and last.state == ACTIVE and last.last_update != "InProgress":
            return last
        if last is not None and FAILED in (last.state, last.last_update):
            raise NotReady(
                f"FC function {name} failed to start: {last.reason or 'no reason given'}",
                hint="an image FC cannot pull (ACR permission, region, digest) is the usual "
                "cause; see the function's page in the FC console",
            )
        if waiting.clock() >= deadline:
            seen = "not listed" if last is None else last.state
            if last is not None and last.reason:
                seen += f" ({last.reason})"
            raise NotReady(
                f"FC function {name} is still {seen} after {waiting.timeout:.0f} s",
                hint="a first GPU deploy pulls a ~10 GB image; run `pulumi up` again to keep "
                "waiting, or raise sdprov:readyTimeoutSeconds",
            )
        waiting.pause(deadline)


def probe(url: str, timeout: float = 30.0) -> int | str:
    """The HTTP status of one GET (through sdprov's network layer), or why there was none."""
    import httpx

    from provision.net.http import make_client

    try:
        with make_client(timeout=timeout) as client:
            return int(client.get(url).status_code)
    except httpx.HTTPError as exc:
        return type(exc).__name__


def wait_serving(url: str, waiting: Waiting, get: Callable[[str], int | str] = probe) -> None:
    """GET `url` until it answers 2xx. The URL carries no credential: health routes are open."""
    deadline = waiting.deadline()
    while True:
        answer = get(url)
        if isinstance(answer, int) and 200 <= answer < 300:
            return
        if waiting.clock() >= deadline:
            raise NotReady(
                f"the UI at {url} did not answer within {waiting.timeout:.0f} s (last: {answer})",
                hint="the UI's start log is in the SLS logstore of the stack (FC console → "
                "function → Logs); a cold start loads torch and the UI, then the health route "
                "answers",
            )
        waiting.pause(deadline)
