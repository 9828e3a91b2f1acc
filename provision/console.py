"""The one place that writes to the terminal: messages on stderr, JSON on stdout, progress.

Library modules never print; they log through `logging` and report progress through the
`ProgressSink` protocol (see `provision.progress`), so they run the same under tests.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from typing import Any, TextIO

from rich.console import Console as RichConsole
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)


class Console:
    def __init__(self, *, json_mode: bool = False, stderr: TextIO | None = None) -> None:
        self.json_mode = json_mode
        self._stderr = stderr or sys.stderr
        self.rich = RichConsole(file=self._stderr, highlight=False, soft_wrap=True)
        self.is_tty = self.rich.is_terminal
        logging.basicConfig(
            level=logging.WARNING, format="sdprov: %(levelname)s: %(message)s", stream=self._stderr
        )

    def info(self, message: str) -> None:
        """Human progress/info lines: stderr, so stdout stays clean for --json."""
        print(message, file=self._stderr, flush=True)

    def warn(self, message: str) -> None:
        print(f"sdprov: warning: {message}", file=self._stderr, flush=True)

    def error(self, message: str) -> None:
        print(f"sdprov: error: {message}", file=self._stderr, flush=True)

    def emit_json(self, obj: Any) -> None:
        json.dump(obj, sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
        sys.stdout.flush()


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


class PlainProgress:
    """Non-TTY progress: one line when a file starts and one when it ends (CI logs, FC logs)."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._started: dict[str, float] = {}
        self._sizes: dict[str, int] = {}
        self._lock = threading.Lock()

    def start(self, total_files: int, total_bytes: int) -> None:
        if total_files:
            self._console.info(f"fetching {total_files} file(s), {human_bytes(total_bytes)}")

    def file_started(self, key: str, size: int) -> None:
        with self._lock:
            self._started[key] = time.monotonic()
            self._sizes[key] = size

    def advance(self, key: str, nbytes: int) -> None:
        pass

    def reset(self, key: str, completed: int) -> None:
        if completed:
            self._console.info(f"  resuming {key} at {human_bytes(completed)}")

    def note(self, key: str, message: str) -> None:
        self._console.info(f"  {key}: {message}")

    def file_finished(self, key: str, ok: bool, message: str = "") -> None:
        with self._lock:
            elapsed = max(1e-6, time.monotonic() - self._started.get(key, time.monotonic()))
            size = self._sizes.get(key, 0)
        if ok:
            rate = f", {human_bytes(size / elapsed)}/s" if message == "downloaded" else ""
            self._console.info(f"  {message:<10} {key} ({human_bytes(size)}{rate})")
        else:
            self._console.info(f"  failed     {key}: {message}")

    def finish(self) -> None:
        pass


class RichProgress(PlainProgress):
    """TTY progress: a bar per file and a total, with speed and ETA."""

    def __init__(self, console: Console) -> None:
        super().__init__(console)
        self._progress = Progress(
            TextColumn("{task.description}", justify="left"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(compact=True),
            console=console.rich,
            transient=False,
        )
        self._tasks: dict[str, TaskID] = {}
        self._total: TaskID | None = None

    def start(self, total_files: int, total_bytes: int) -> None:
        if not total_files:
            return
        self._progress.start()
        self._total = self._progress.add_task(f"total ({total_files} files)", total=total_bytes)

    def file_started(self, key: str, size: int) -> None:
        super().file_started(key, size)
        with self._lock:
            self._tasks[key] = self._progress.add_task(key, total=size)

    def advance(self, key: str, nbytes: int) -> None:
        task = self._tasks.get(key)
        if task is not None:
            self._progress.advance(task, nbytes)
        if self._total is not None:
            self._progress.advance(self._total, nbytes)

    def reset(self, key: str, completed: int) -> None:
        task = self._tasks.get(key)
        if task is not None:
            before = self._progress.tasks[task].completed
            self._progress.update(task, completed=completed)
            if self._total is not None:
                self._progress.advance(self._total, completed - before)

    def note(self, key: str, message: str) -> None:
        self._progress.console.print(f"  {key}: {message}", markup=False)

    def file_finished(self, key: str, ok: bool, message: str = "") -> None:
        task = self._tasks.pop(key, None)
        if task is not None:
            self._progress.remove_task(task)
        self._progress.console.print(
            f"  {'✓' if ok else '✗'} {message:<10} {key}", markup=False, highlight=False
        )

    def finish(self) -> None:
        self._progress.stop()


def make_progress(console: Console, *, quiet: bool = False) -> PlainProgress:
    if quiet or console.json_mode:
        return QuietProgress(console)
    return RichProgress(console) if console.is_tty else PlainProgress(console)


class QuietProgress(PlainProgress):
    def start(self, total_files: int, total_bytes: int) -> None:
        pass

    def reset(self, key: str, completed: int) -> None:
        pass

    def note(self, key: str, message: str) -> None:
        pass

    def file_finished(self, key: str, ok: bool, message: str = "") -> None:
        pass
