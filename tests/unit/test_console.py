"""The progress display's bookkeeping, in process (the pty tests cover what a user sees)."""

from __future__ import annotations

import io

from provision.console import Console, RichProgress, human_bytes


def _progress() -> RichProgress:
    return RichProgress(Console(stderr=io.StringIO()))


def test_files_finishing_out_of_order_never_break_the_display() -> None:
    progress = _progress()
    progress.start(total_files=5, total_bytes=5000)
    try:
        for key in ("a", "b", "c"):
            progress.file_started(key, 1000)
        progress.file_finished("a", True, "downloaded")  # task ids no longer match positions
        progress.reset("c", 400)  # a resume on a later task: the IndexError of issue 8
        progress.file_started("d", 1000)
        progress.reset("d", 0)
        progress.advance("d", 300)
        progress.file_finished("b", False, "boom")
        progress.file_started("e", 1000)
        progress.reset("e", 1000)
        done = {t.description: t.completed for t in progress._progress.tasks}
        assert done["c"] == 400 and done["d"] == 300 and done["e"] == 1000
        assert done["total (5 files)"] == 400 + 300 + 1000
    finally:
        progress.finish()


def test_resumed_bytes_are_done_not_speed() -> None:
    progress = _progress()
    progress.start(total_files=1, total_bytes=10 << 20)
    try:
        progress.file_started("m", 10 << 20)
        progress.reset("m", 8 << 20)
        progress.advance("m", 1 << 20)
        task = next(t for t in progress._progress.tasks if t.description == "m")
        total = next(t for t in progress._progress.tasks if t.description.startswith("total"))
        assert task.completed == 9 << 20
        progress._began -= 1.0  # one second of this run
        speed = progress.speed_of(total)
        assert speed is not None and 0.9 * (1 << 20) < speed <= 1 << 20  # only the fresh MiB
    finally:
        progress.finish()


def test_one_unit_family() -> None:
    assert human_bytes(64 << 20) == "64.0 MiB"
    assert human_bytes(1536) == "1.5 KiB"
    assert human_bytes(3 << 30) == "3.0 GiB"
