"""What the dashboard says in toasts: a task that finished, the engine's notices, a worker
that failed, and copying the selected task's link (open and poll: downloads.py).

Text from outside (prompts, server messages, links, error texts) is passed with
`markup=False`: shown as written, never read as markup.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..models import Task, TaskStatus
from ..text import one_line

if TYPE_CHECKING:
    from textual.widget import Widget
    from textual.worker import Worker


PERSISTENT_NOTICE = 86_400.0  # seconds a persistent notice stays unless dismissed
SEVERITIES = ("information", "warning", "error")


LISTED = 5  # finished tasks named in one toast, at most


def announce_finished(node: Widget, tasks: list[Task], *, bell: bool) -> None:
    """A toast (and the bell, if enabled) when tasks finish: one for a task, and one for
    the completed and one for the others of several that finished together."""
    completed = [task for task in tasks if task.status is TaskStatus.COMPLETED]
    others = [task for task in tasks if task.status is not TaskStatus.COMPLETED]
    if len(completed) == 1:
        task = completed[0]
        took = f" in {task.generation_time:.0f}s" if task.generation_time else ""
        node.notify(f"{task.short_id} completed{took}: {one_line(task.prompt, 40)}",
                    title="Video ready", markup=False)  # fmt: skip
    elif completed:
        node.notify(_listed(completed, lambda task: one_line(task.prompt, 40)),
                    title=f"{len(completed)} videos ready", markup=False)  # fmt: skip
    if len(others) == 1:
        task = others[0]
        node.notify(
            f"{task.short_id} {task.status.value}: {_reason(task)}",
            title="Job " + task.status.value,
            severity="error",
            markup=False,
            timeout=8,
        )
    elif others:
        node.notify(
            _listed(others, lambda task: f"{task.status.value}: {_reason(task)}"),
            title=f"{len(others)} jobs did not complete",
            severity="error",
            markup=False,
            timeout=8,
        )
    if bell and tasks:
        node.app.bell()


def _reason(task: Task) -> str:
    return one_line(task.error or task.status.value, 120)


def _listed(tasks: list[Task], say: Callable[[Task], str]) -> str:
    lines = [f"{task.short_id} {say(task)}" for task in tasks[:LISTED]]
    if len(tasks) > LISTED:
        lines.append(f"and {len(tasks) - LISTED} more (the list shows them all)")
    return "\n".join(lines)


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
