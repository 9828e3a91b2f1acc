"""Answers one run already has: asked twice, fetched once."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")


class Memo:
    """What one run already asked Civitai: two entries of one model (a checkpoint and its VAE
    part, one file under two names) cost one request. Concurrent askers wait for the first;
    a failure is not kept, so each entry gets its own error, naming itself."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._answers: dict[Hashable, Future[Any]] = {}

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        with self._lock:
            future = self._answers.get(key)
            mine = future is None
            if future is None:
                future = self._answers[key] = Future()
        if not mine:
            try:
                answer: T = future.result()
            except Exception:
                return compute()
            return answer
        try:
            value = compute()
        except BaseException as exc:
            with self._lock:
                del self._answers[key]
            future.set_exception(exc)
            raise
        future.set_result(value)
        return value
