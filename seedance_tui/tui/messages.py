"""Messages the dashboard's workers and engine listener post; `@on` handlers act on them."""

from __future__ import annotations

from textual.message import Message

from ..models import Task, TaskStatus


class DashboardReady(Message):
    """The dashboard takes keys from now on; keys read before this were dropped."""


class TaskUpdated(Message):
    """The engine changed a task (a newer update of the same task replaces a queued one)."""

    def __init__(self, task: Task, previous: TaskStatus | None, *, external: bool = False) -> None:
        super().__init__()
        self.task = task
        self.previous = previous
        # A row that did not exist before: the list must re-count, not repaint a line.
        # Another machine's change (`external`) may be of a task not listed yet.
        self.is_new = external or (previous is None and task.status is TaskStatus.SUBMITTING)

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


class EngineNotice(Message):
    """A notice of the engine; `persistent` ones stay until dismissed."""

    def __init__(self, level: str, text: str, *, persistent: bool = False) -> None:
        super().__init__()
        self.level = level
        self.text = text
        self.persistent = persistent


class SubmitFinished(Message):
    """A submission got its answer (processing, rejected or orphaned)."""

    def __init__(self, task: Task) -> None:
        super().__init__()
        self.task = task


class SubmitFailed(Message):
    """A submission was refused before anything was sent (validation, missing key)."""

    def __init__(self, reason: str, field: str | None = None) -> None:
        super().__init__()
        self.reason = reason
        self.field = field


class CreditsComputed(Message):
    def __init__(self, summary: dict) -> None:
        super().__init__()
        self.summary = summary


class DownloadProgress(Message):
    """Bytes saved so far of a task's video (throttled by the sender; newer replaces older)."""

    def __init__(self, task_id: str, done: int, total: int | None, *, auto: bool) -> None:
        super().__init__()
        self.task_id = task_id
        self.done = done
        self.total = total
        self.auto = auto  # started by the engine's auto-download, not by a key

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, DownloadProgress) and message.task_id == self.task_id


class DownloadFinished(Message):
    def __init__(self, task_id: str, path: str) -> None:
        super().__init__()
        self.task_id = task_id
        self.path = path


class DownloadFailed(Message):
    def __init__(self, task_id: str, reason: str) -> None:
        super().__init__()
        self.task_id = task_id
        self.reason = reason
