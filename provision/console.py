"""The one place that writes to the terminal: messages on stderr, results on stdout, progress.

Library modules never print; they log through `logging` and report progress through the
`ProgressSink` protocol (see `provision.sync.download`), so they run the same under tests.
Everything that leaves the process through here (messages, JSON, log lines, the debug log
file) passes through `Secrets.scrub`: the tokens and passwords sdprov was given never reach an
output, even when a library puts them into an exception text.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from typing import Any, Final, TextIO

from rich.console import Console as RichConsole
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
)
from rich.text import Text

from provision.errors import SdprovError

SECRET_VARIABLES: Final = (
    "CIVITAI_TOKEN", "HF_TOKEN", "SDPROV_WEBUI_AUTH",
    # the OSS mirror's credentials (provision.mirror.credentials)
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALIBABA_CLOUD_SECURITY_TOKEN",
    "OSS_ACCESS_KEY_SECRET", "OSS_SESSION_TOKEN",
)  # fmt: skip
# Libraries whose debug lines carry full URLs (signed queries) or raw headers.
NOISY_LOGGERS: Final = ("httpx", "httpcore", "urllib3", "hpack")


class Secrets:
    """The secret values of this run, to be cut out of anything we print or log."""

    def __init__(self, environ: dict[str, str] | os._Environ[str] | None = None) -> None:
        env = os.environ if environ is None else environ
        values: set[str] = set()
        for name in SECRET_VARIABLES:
            value = env.get(name, "")
            values.add(value)
            if name == "SDPROV_WEBUI_AUTH":
                values.update(value.split(":", 1)[1:])  # the password alone, too
        # Very short values would scrub ordinary words; no real token is that short.
        self._values = sorted((v for v in values if len(v) >= 6), key=len, reverse=True)

    def add(self, value: str) -> None:
        if len(value) >= 6 and value not in self._values:
            self._values = sorted([*self._values, value], key=len, reverse=True)

    def scrub(self, text: str) -> str:
        for value in self._values:
            if value in text:
                text = text.replace(value, "***")
        return text


# `extra=FILE_ONLY` on a log call: the debug log file gets it, the terminal does not (the
# traceback of an error already reported in plain words).
FILE_ONLY: Final = {"file_only": True}


def _not_file_only(record: logging.LogRecord) -> bool:
    return not getattr(record, "file_only", False)


class _ScrubbingFormatter(logging.Formatter):
    def __init__(self, secrets: Secrets, fmt: str) -> None:
        super().__init__(fmt)
        self._secrets = secrets

    def format(self, record: logging.LogRecord) -> str:
        return self._secrets.scrub(super().format(record))


class Console:
    def __init__(
        self,
        *,
        json_mode: bool = False,
        quiet: bool = False,
        verbose: bool = False,
        log_file: str | None = None,
        stderr: TextIO | None = None,
    ) -> None:
        self.json_mode = json_mode
        self.quiet = quiet
        self.verbose = verbose
        self.secrets = Secrets()
        self._stderr = stderr or sys.stderr
        self.rich = RichConsole(file=self._stderr, highlight=False, soft_wrap=True)
        self.is_tty = self.rich.is_terminal
        self.emitted_json = False
        self._setup_logging(log_file)

    def _setup_logging(self, log_file: str | None) -> None:
        level = logging.DEBUG if self.verbose else logging.ERROR if self.quiet else logging.WARNING
        handler = logging.StreamHandler(self._stderr)
        handler.setLevel(level)
        handler.addFilter(_not_file_only)
        handler.setFormatter(
            _ScrubbingFormatter(self.secrets, "sdprov: %(levelname)s: %(message)s")
        )
        handlers: list[logging.Handler] = [handler]
        if log_file:
            file_handler = logging.FileHandler(log_file, encoding="utf-8")
            file_handler.setLevel(logging.DEBUG)
            file_handler.setFormatter(
                _ScrubbingFormatter(
                    self.secrets, "%(asctime)s %(threadName)s %(name)s %(levelname)s %(message)s"
                )
            )
            handlers.append(file_handler)
        debug_anywhere = self.verbose or bool(log_file)
        logging.basicConfig(
            level=logging.DEBUG if debug_anywhere else level, handlers=handlers, force=True
        )
        for name in NOISY_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)

    def _print(self, message: str, stream: TextIO) -> None:
        print(self.secrets.scrub(message), file=stream, flush=True)

    def info(self, message: str) -> None:
        """Human progress/info lines: stderr, so stdout stays clean for --json and pipes."""
        if not self.quiet:
            self._print(message, self._stderr)

    def out(self, message: str) -> None:
        """A command's result as text (the status table): stdout, so it pipes to grep."""
        if not self.quiet and not self.json_mode:
            self._print(message, sys.stdout)

    def warn(self, message: str) -> None:
        if not self.quiet:
            self._print(f"sdprov: warning: {message}", self._stderr)

    def error(self, message: str) -> None:
        self._print(f"sdprov: error: {message}", self._stderr)

    def fail(self, exc: SdprovError, *, prefixed: bool = True) -> None:
        """Report the error that ends the command: stderr, and one JSON object under --json."""
        if prefixed:
            self.error(exc.render())
        else:
            self._print(exc.render(), self._stderr)
        if self.json_mode and not self.emitted_json:
            self.emit_json({"ok": False, "error": exc.to_json()})

    def emit_json(self, obj: Any) -> None:
        text = json.dumps(obj, indent=2, sort_keys=True)
        sys.stdout.write(self.secrets.scrub(text) + "\n")
        sys.stdout.flush()
        self.emitted_json = True


def human_bytes(n: float) -> str:
    """One unit family everywhere: IEC (KiB, MiB, GiB), as the progress columns show too."""
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
        self._resumed: dict[str, int] = {}
        self._lock = threading.Lock()

    def start(self, total_files: int, total_bytes: int) -> None:
        if total_files:
            self._console.info(f"fetching {total_files} file(s), {human_bytes(total_bytes)}")

    def file_started(self, key: str, size: int) -> None:
        with self._lock:
            self._started[key] = time.monotonic()
            self._sizes[key] = size
            self._resumed[key] = 0

    def advance(self, key: str, nbytes: int) -> None:
        pass

    def reset(self, key: str, completed: int) -> None:
        with self._lock:
            self._resumed[key] = completed
        if completed:
            self._console.info(f"  resuming {key} at {human_bytes(completed)}")

    def note(self, key: str, message: str) -> None:
        self._console.info(f"  {key}: {message}")

    def file_finished(self, key: str, ok: bool, message: str = "") -> None:
        with self._lock:
            elapsed = max(1e-6, time.monotonic() - self._started.get(key, time.monotonic()))
            size = self._sizes.get(key, 0)
            fetched = size - self._resumed.get(key, 0)  # resumed bytes are not speed
        if ok:
            rate = f", {human_bytes(fetched / elapsed)}/s" if message == "downloaded" else ""
            self._console.info(f"  {message:<10} {key} ({human_bytes(size)}{rate})")
        else:
            self._console.info(f"  failed     {key}: {message}")

    def finish(self) -> None:
        pass


class _IecSpeed(ProgressColumn):
    """Transfer speed in IEC units (rich's own column is decimal), from fresh bytes only."""

    def __init__(self, owner: RichProgress) -> None:
        super().__init__()
        self._owner = owner

    def render(self, task: Task) -> Text:
        speed = self._owner.speed_of(task)
        if speed is None:
            return Text("?", style="progress.data.speed")
        return Text(f"{human_bytes(speed)}/s", style="progress.data.speed")


class _Eta(ProgressColumn):
    """Time left at the fresh-bytes speed (rich's would count resumed bytes as speed)."""

    def __init__(self, owner: RichProgress) -> None:
        super().__init__()
        self._owner = owner

    def render(self, task: Task) -> Text:
        speed = self._owner.speed_of(task)
        if task.finished or task.total is None or not speed:
            return Text("-:--", style="progress.remaining")
        left = int(max(0.0, task.total - task.completed) / speed)
        hours, rest = divmod(left, 3600)
        text = (
            f"{hours}:{rest // 60:02d}:{rest % 60:02d}"
            if hours
            else f"{rest // 60}:{rest % 60:02d}"
        )
        return Text(text, style="progress.remaining")


class RichProgress(PlainProgress):
    """TTY progress: a bar per file in flight and a total, with speed and ETA.

    Refreshed by rich's own thread (REFRESH_PER_SECOND), so the bars move on a slow link even
    between byte counts; the receive loop reports at a fine grain (provision.sync.download).
    """

    REFRESH_PER_SECOND: Final = 4

    def __init__(self, console: Console) -> None:
        super().__init__(console)
        self._progress = Progress(
            TextColumn("{task.description}", justify="left"),
            BarColumn(),
            DownloadColumn(binary_units=True),
            _IecSpeed(self),
            _Eta(self),
            console=console.rich,
            transient=False,
            refresh_per_second=self.REFRESH_PER_SECOND,
        )
        self._tasks: dict[str, TaskID] = {}
        self._total: TaskID | None = None
        self._began = time.monotonic()
        self._fresh = 0  # bytes received by this run (not resumed ones): the total's speed

    def speed_of(self, task: Task) -> float | None:
        if task.id == self._total:
            elapsed = time.monotonic() - self._began
            return self._fresh / elapsed if elapsed > 0.5 else None
        return task.finished_speed or task.speed

    def start(self, total_files: int, total_bytes: int) -> None:
        if not total_files:
            return
        self._began = time.monotonic()
        self._progress.start()
        self._total = self._progress.add_task(f"total ({total_files} files)", total=total_bytes)

    def file_started(self, key: str, size: int) -> None:
        super().file_started(key, size)
        with self._lock:
            self._tasks[key] = self._progress.add_task(key, total=size)

    def advance(self, key: str, nbytes: int) -> None:
        with self._lock:
            task = self._tasks.get(key)
            self._fresh += nbytes
        if task is not None:
            self._progress.advance(task, nbytes)
        if self._total is not None:
            self._progress.advance(self._total, nbytes)

    def reset(self, key: str, completed: int) -> None:
        """The file (re)starts at `completed`: resumed bytes count as done, never as speed."""
        with self._lock:
            self._resumed[key] = completed
            task = self._tasks.get(key)
            # Task ids are not list indexes once a task was removed: look them up by id.
            done = {t.id: t.completed for t in self._progress.tasks}
            before = done.get(task, 0.0) if task is not None else 0.0
            if task is not None:
                self._progress.reset(task, completed=completed)  # drops its speed samples
            if self._total is not None and completed != before:
                # rich records this as a speed sample, but the total's speed and ETA columns
                # use fresh bytes only (speed_of).
                moved = done.get(self._total, 0.0) + completed - before
                self._progress.update(self._total, completed=moved)

    def note(self, key: str, message: str) -> None:
        self._progress.console.print(
            self._console.secrets.scrub(f"  {key}: {message}"), markup=False
        )

    def file_finished(self, key: str, ok: bool, message: str = "") -> None:
        with self._lock:
            task = self._tasks.pop(key, None)
        if task is not None:
            self._progress.remove_task(task)
        line = f"  {'✓' if ok else '✗'} {message:<10} {key}"
        self._progress.console.print(
            self._console.secrets.scrub(line), markup=False, highlight=False
        )

    def finish(self) -> None:
        self._progress.stop()


def make_progress(console: Console, *, quiet: bool = False) -> PlainProgress:
    if quiet or console.quiet or console.json_mode:
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
