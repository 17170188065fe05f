"""Messages the dashboard's workers and engine bridge post; `@on` handlers act on them.

Dataclass messages (toolong's style): the fields say what a message carries. Where a
newer message about the same thing makes an older one pointless, `can_replace` lets it
stand in for it (Textual asks a message taken off the queue whether the next one
queued may replace it).
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass, field

from textual.message import Message

from ..models import Task, TaskStatus


class DashboardReady(Message):
    """The dashboard takes keys from now on; keys read before this are let go now, in order."""


@dataclass
class TaskUpdated(Message):
    """The engine changed a task (a newer update of the same task replaces a queued one)."""

    task: Task
    previous: TaskStatus | None
    _: KW_ONLY
    # Another machine's change (studio mode): it may be of a task not listed yet.
    external: bool = False
    # A row that did not exist before: the list must re-count, not repaint a line.
    is_new: bool = field(init=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.is_new = self.external or (
            self.previous is None and self.task.status is TaskStatus.SUBMITTING
        )

    def can_replace(self, message: Message) -> bool:
        """May the queued `message` (newer) stand in for this one (older)?"""
        if not (isinstance(message, TaskUpdated) and message.task.id == self.task.id):
            return False
        # The newer one carries what this one knew: its `previous` (so a finish is still
        # seen as one) and whether the task is new.
        if self.previous is not None:
            message.previous = self.previous
        message.is_new = message.is_new or self.is_new
        return True


@dataclass
class EngineNotice(Message):
    """A notice of the engine; `persistent` ones stay until dismissed."""

    level: str
    text: str
    _: KW_ONLY
    persistent: bool = False


@dataclass
class SubmitFinished(Message):
    """A submission got its answer (processing, rejected or orphaned)."""

    task: Task


@dataclass
class SubmitFailed(Message):
    """A submission was refused before anything was sent (validation, missing key)."""

    reason: str
    field: str | None = None


@dataclass
class CreditsComputed(Message):
    """The credits summary of the whole history (summed in a thread)."""

    summary: dict

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, CreditsComputed)


@dataclass
class DownloadProgress(Message):
    """Bytes saved so far of a task's video (throttled by the sender; newer replaces older)."""

    task_id: str
    done: int
    total: int | None
    _: KW_ONLY
    auto: bool  # started by the engine's auto-download, not by a key

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, DownloadProgress) and message.task_id == self.task_id


@dataclass
class DownloadFinished(Message):
    task_id: str
    path: str


@dataclass
class DownloadFailed(Message):
    task_id: str
    reason: str
