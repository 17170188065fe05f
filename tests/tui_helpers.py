"""What the dashboard's test files share: a fixed clock and waiting helpers."""

from __future__ import annotations

import time
from collections.abc import Callable

from seedance_tui.tui.task_list import TaskList

FIXED_NOW = 1_800_000_000.0  # 2027-01-15 08:00 UTC
# The seeded histories' video links: a loopback port nothing listens on, so a frame the
# dashboard tries to read from a link fails the same way on every machine (a demo
# running on its own port would otherwise serve it).
CLOSED_MEDIA = "http://127.0.0.1:1"


def fixed_clock() -> float:
    return FIXED_NOW


async def wait_until(pilot, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.05)


def row_text(tasks: TaskList, index: int) -> str:
    """The painted text of a row (line 0 is the header)."""
    return tasks.render_line(index - round(tasks.scroll_y) + 1).text
