"""The one place that writes to the terminal: messages on stderr, JSON on stdout, progress.

Library modules never print; they log through `logging` and report progress through the
`ProgressSink` protocol (see `provision.progress`), so they run the same under tests.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any, TextIO

from rich.console import Console as RichConsole


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
