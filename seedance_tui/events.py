"""What the engine tells its listeners: a task changed, something to hear about, a
download's progress.

Plain frozen dataclasses, importing nothing but the domain models, so that every face
(the CLI's printers, the dashboard's message bridge) and every producer (the engine, the
ledger through the engine's notices, the auto-downloader, the batch queue) shares them
without importing each other. A listener is a plain callable, called on the engine's
event loop, synchronously: it must return quickly and never raise (a raising listener is
logged and skipped).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from .models import Task, TaskStatus

Level = Literal["information", "warning", "error"]


@dataclass(frozen=True, slots=True)
class TaskChanged:
    """A task's row changed (or was first seen). `previous`: its status before, when this
    process made the change; None when the change came from elsewhere (another instance
    sharing the history) or the task is new. `external`: another process wrote it (a
    shared history's change feed): it may be a task this face has not shown yet."""

    task: Task
    previous: TaskStatus | None = None
    external: bool = False


@dataclass(frozen=True, slots=True)
class Notice:
    """Something the user should hear about that is not one task's change.

    `persistent`: stays on screen until dismissed (an accepted task id that is not
    recorded yet). `topic`: what it is about (a key's host, the history's disk), so that
    the same news of one topic is told once."""

    level: Level
    message: str
    persistent: bool = False
    topic: str | None = None


@dataclass(frozen=True, slots=True)
class DownloadProgress:
    """An auto-download moved on: `done` bytes of `total` (None: the server gave no size)."""

    task_id: str
    done: int
    total: int | None


EngineEvent = TaskChanged | Notice | DownloadProgress
Listener = Callable[[EngineEvent], None]
# What a producer other than the engine is given to tell the engine's listeners.
Emit = Callable[[EngineEvent], None]

__all__ = [
    "DownloadProgress",
    "Emit",
    "EngineEvent",
    "Level",
    "Listener",
    "Notice",
    "TaskChanged",
]
