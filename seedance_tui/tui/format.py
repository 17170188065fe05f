"""How task fields look on screen: status glyphs, ages, credits, parameters.

Everything that came from outside (prompts, errors, URLs) goes through `seedance_tui.text`
and into `rich.text.Text`, never into markup.
"""

from __future__ import annotations

import datetime as dt
import math

from rich.text import Text

from ..models import Provider, Task, TaskStatus
from ..text import span as duration  # noqa: F401  (the widgets' name for it)

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
STATUS_GLYPHS = {
    TaskStatus.QUEUED: "◌",
    TaskStatus.SUBMITTING: "↑",
    TaskStatus.PROCESSING: "⠋",
    TaskStatus.COMPLETED: "✓",
    TaskStatus.FAILED: "✗",
    TaskStatus.REJECTED: "⊘",
    TaskStatus.CANCELLED: "–",
    TaskStatus.ORPHANED: "?",
}
# Rich styles per status; NO_COLOR strips the colour and the glyph still tells them apart.
STATUS_STYLES = {
    TaskStatus.QUEUED: "blue",
    TaskStatus.SUBMITTING: "bold yellow",
    TaskStatus.PROCESSING: "bold cyan",
    TaskStatus.COMPLETED: "green",
    TaskStatus.FAILED: "bold red",
    TaskStatus.REJECTED: "red",
    TaskStatus.CANCELLED: "dim",
    TaskStatus.ORPHANED: "bold magenta",
}
# The library state of a finished render (`library.link_state`): a one-cell mark in the
# list and a line in the detail pane.
LINK_MARKS = {
    "saved": ("⤓", "green"),
    "missing": ("!", "bold yellow"),
    "expired": ("⚠", "bold yellow"),
}
LINK_TEXT = {
    "saved": "saved in the library",
    "missing": "the saved file is gone: save it again while the link lasts",
    "expired": "link likely expired, never saved",
    "remote": "not saved yet (result links expire)",
}
PROVIDER_SHORT = {Provider.NANOPHOTO: "nano", Provider.SEEDANCE15PRO: "sd15"}


def status_glyph(status: TaskStatus, now: float) -> str:
    """A spinner frame for work under way, one step a second (driven by the clock, so a
    frozen clock freezes it; the list repaints its pending rows once a second); a queued
    job waits, it does not spin."""
    if status.is_pending and status is not TaskStatus.QUEUED:
        return SPINNER[int(now) % len(SPINNER)]
    return STATUS_GLYPHS[status]


def eta_text(eta: float, now: float) -> str:
    """A pending task's expected finish as a list cell: "≈1m05s", "due" once that moment
    has passed, "overdue" when there is no finite expectation (past its likely finish)."""
    if not (math.isfinite(eta) and math.isfinite(now)):
        return "overdue"
    if eta <= now:
        return "due"
    return "≈" + duration(eta - now)


def clock_time(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def credits_cell(task: Task) -> str:
    """Net credits when the server said, else the estimate marked with ~."""
    if task.credits_charged is not None:
        return str(task.credits_net)
    if task.credits_estimated is not None:
        return f"~{task.credits_estimated}"
    return "-"


def params_text(task: Task) -> str:
    try:
        return task.spec.summary()
    except (ValueError, KeyError):
        return ""


def fitting(variants: list[Text], width: int) -> Text:
    """The first of `variants` (longest wording first) that fits `width` cells; the
    last, cut with an ellipsis, when none does. A width of 0 (not laid out yet) takes
    the first: the panel shows it again at its width once it has one."""
    for variant in variants:
        if width <= 0 or variant.cell_len <= width:
            return variant
    last = variants[-1].copy()
    last.truncate(width, overflow="ellipsis")
    return last
