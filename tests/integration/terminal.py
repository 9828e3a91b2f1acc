"""Run `sdprov` on a pseudo-terminal, as a user at a shell does.

The child gets the pty as stdin/stdout/stderr *and* as its controlling terminal, so rich sees
a terminal and a `\\x03` written to the master reaches it as SIGINT from the line discipline,
exactly like Ctrl-C at a keyboard (not a signal sent by pid).
"""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

# Become a session leader's controlling terminal, then run the real command.
_TRAMPOLINE = (
    "import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
    "os.execv(sys.executable, [sys.executable, '-m', 'provision.cli', *sys.argv[1:]])"
)
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\r")


@dataclass
class PtyRun:
    proc: subprocess.Popen[bytes]
    master: int
    chunks: list[tuple[float, bytes]] = field(default_factory=list)

    @property
    def raw(self) -> str:
        return b"".join(c for _, c in self.chunks).decode("utf-8", "replace")

    @property
    def text(self) -> str:
        """The output without cursor movement and colour codes."""
        return ANSI.sub("\n", self.raw)

    def pump(self, seconds: float) -> None:
        """Read whatever the terminal shows for `seconds` (or until the child closes it)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([self.master], [], [], min(left, 0.05))
            if ready:
                try:
                    data = os.read(self.master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    return
                if not data:
                    return
                self.chunks.append((time.monotonic(), data))

    def until(self, condition: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return True
            self.pump(0.05)
        return condition()

    def type(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def wait(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            self.pump(0.05)
        code = self.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        self.pump(0.2)  # what was written just before the exit
        os.close(self.master)
        return code


def start_in_pty(cwd: Path, env: dict[str, str], *args: str) -> PtyRun:
    master, slave = pty.openpty()
    term_env = {**env, "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"}
    proc = subprocess.Popen(
        [sys.executable, "-c", _TRAMPOLINE, *args],
        cwd=cwd,
        env=term_env,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
    )
    os.close(slave)
    return PtyRun(proc=proc, master=master)
