"""What the dashboard says in toasts: a task that finished, the engine's notices, a worker
that failed, and the outcome of the actions on the selected task (copy, open, poll).

Text from outside (prompts, server messages, links, error texts) is passed with
`markup=False`: shown as written, never read as markup.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import library
from ..models import Task, TaskStatus
from ..text import one_line
from .opener import over_ssh

if TYPE_CHECKING:
    from collections.abc import Callable

    from textual.widget import Widget
    from textual.worker import Worker

    from ..engine import Engine

PERSISTENT_NOTICE = 86_400.0  # seconds a persistent notice stays unless dismissed
SEVERITIES = ("information", "warning", "error")


def announce_finish(node: Widget, task: Task, *, bell: bool) -> None:
    """A toast (and the bell, if enabled) when a task finishes."""
    excerpt = one_line(task.prompt, 40)
    if task.status is TaskStatus.COMPLETED:
        took = f" in {task.generation_time:.0f}s" if task.generation_time else ""
        node.notify(f"{task.short_id} completed{took}: {excerpt}", title="Video ready",
                    markup=False)  # fmt: skip
    else:
        reason = one_line(task.error or task.status.value, 120)
        node.notify(
            f"{task.short_id} {task.status.value}: {reason}",
            title="Job " + task.status.value,
            severity="error",
            markup=False,
            timeout=8,
        )
    if bell:
        node.app.bell()


def engine_notice(node: Widget, level: str, text: str, *, persistent: bool) -> None:
    """A notice of the engine; a persistent one (an accepted task id the history could
    not record) stays for a day unless dismissed (a click on it)."""
    severity = level if level in SEVERITIES else "information"
    node.notify(
        one_line(text, 400 if persistent else 300),
        severity=severity,  # type: ignore[arg-type]
        markup=False,
        timeout=PERSISTENT_NOTICE if persistent else None,
    )


def worker_failed(node: Widget, worker: Worker) -> None:
    error = worker.error
    node.notify(
        f"{worker.group or worker.name} failed: {type(error).__name__}: "
        f"{one_line(str(error), 200)}",
        severity="error",
        markup=False,
        timeout=10,
    )


def copy_url(node: Widget, task: Task | None) -> None:
    if task is None or not task.video_urls:
        node.notify("This task has no video URL yet.", severity="warning")
        return
    node.app.copy_to_clipboard(task.video_urls[0])
    node.notify(f"Copied {one_line(task.video_urls[0], 80)}", title="Clipboard (OSC 52)",
                markup=False)  # fmt: skip


def open_video(node: Widget, task: Task | None) -> None:
    """The saved file (else the link) with the system's opener; without one (over SSH,
    no desktop) copy the link (else the file's path) and say so."""
    try:
        target = library.open_target(task) if task else None
    except library.UnsafeTarget as exc:
        node.notify(str(exc), title="Not opened", severity="error", markup=False)
        return
    if task is None or target is None:
        node.notify("This task has no video yet.", severity="warning")
        return
    if library.open_with_system(target):
        node.notify(f"Opening {one_line(target, 80)}", markup=False)
        return
    copied = task.video_urls[0] if task.video_urls else target
    node.app.copy_to_clipboard(copied)
    where = "over SSH" if over_ssh() else "on this machine"
    what = "the URL" if task.video_urls else "the file's path"
    node.notify(
        f"No system opener {where}: copied {what} instead — {one_line(copied, 80)}",
        title="Copied",
        markup=False,
    )


def poll_now(
    node: Widget, engine: Engine | None, task: Task | None, clock: Callable[[], float]
) -> None:
    """Check a rendering task now if the budget allows, else say when it is checked."""
    if task is None or engine is None or task.status is not TaskStatus.PROCESSING:
        node.notify("Only a task that is rendering can be checked.", severity="warning")
        return
    if engine.poll_now(task.id):
        node.notify(f"Checking {task.short_id} now")
        return
    next_check = engine.next_check(task.id)
    when = f" next check in {max(0, next_check - clock()):.0f}s" if next_check else ""
    node.notify(f"The hourly request budget is spent;{when}", severity="warning", markup=False)
