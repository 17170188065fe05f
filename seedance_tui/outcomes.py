"""A submission's outcome, recorded — or kept until it can be.

The outcome is the provider's task id (the job was accepted) or why the job ended
without one (rejected, cancelled, orphaned). It is written to the history before it is
shown. When the history refuses the write for a while (a full disk), the outcome is kept
in memory, shown as it will be recorded, and written again until the write succeeds; an
accepted task id is announced meanwhile (a persistent notice: until it is recorded it is
the only record of a job that may be charged). Nothing the provider accepted is dropped.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from .bus import Bus
from .models import Task, TaskStatus
from .providers import SubmitAnswer
from .store import Store, StoreConflictError, StoreError, is_transient
from .write_backoff import WriteBackoff


@dataclass(slots=True)
class Unsaved:
    """A write the history refused (a full disk), kept to be tried again."""

    task: Task  # as it should be shown meanwhile
    write: Callable[[], Task]
    previous: TaskStatus


class Outcomes:
    """Records submissions' outcomes for the engine. `on_accepted(task)` is called once
    an accepted task is recorded (the engine starts tracking it)."""

    def __init__(
        self,
        store: Store,
        writes: WriteBackoff,
        bus: Bus,
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
        on_accepted: Callable[[Task], None],
    ) -> None:
        self.store = store
        self.writes = writes
        self.bus = bus
        self.clock = clock
        self.sleep = sleep
        self.on_accepted = on_accepted
        self._unsaved: dict[str, Unsaved] = {}  # task → a write to try again

    def interrupted(self, task: Task) -> None:
        """Cancelled or crashed mid-submission: the ledger knows whether it was sent."""
        try:
            left = self.store.generate_left(task.id)
        except Exception:
            left = True
        if left:
            status = TaskStatus.ORPHANED
            error = "interrupted while submitting: the provider may have accepted it"
        else:
            status = TaskStatus.CANCELLED
            error = "stopped before its request was sent: nothing was sent and nothing charged"
        with contextlib.suppress(Exception):
            ended = self.store.record_refusal(task.id, status, error, self.clock())
            self.bus.changed(ended, TaskStatus.SUBMITTING)

    def ended(self, task: Task, status: TaskStatus, error: str) -> Task:
        """The submission ended without a task id (`status`, because of `error`)."""
        now = self.clock()
        try:
            ended = self.store.record_refusal(task.id, status, error, now)
        except StoreError as exc:
            if not is_transient(exc):
                raise
            self.writes.failed(exc)
            shown = dataclasses.replace(task, status=status, error=error, updated_at=now)
            self._unsaved[task.id] = Unsaved(
                shown,
                lambda: self.store.record_refusal(task.id, status, error, self.clock()),
                TaskStatus.SUBMITTING,
            )
            self.bus.changed(shown, TaskStatus.SUBMITTING)
            return shown
        self.bus.changed(ended, TaskStatus.SUBMITTING)
        return ended

    def accepted(self, task: Task, answer: SubmitAnswer) -> Task:
        """The provider named a task id: record it, or keep it (and say so) until the
        history can be written."""
        try:
            saved = self.store.record_submitted(
                task.id, answer.task_id, answer.update, self.clock()
            )
        except StoreConflictError:
            # The provider named a task id that another row already has: this job's own
            # id is unknown. Kept in the error, never dropped.
            other = self.store.find(answer.task_id)
            return self.ended(
                task,
                TaskStatus.ORPHANED,
                f"the provider answered with task id {answer.task_id}, which "
                f"{'task ' + other.short_id if other else 'another task'} of the history "
                "already has: this job may have been accepted and charged under an id we do "
                "not know; check the provider's dashboard before re-running.",
            )
        except StoreError as exc:
            if not is_transient(exc):
                raise
            self.writes.failed(exc)
            now = self.clock()
            shown = dataclasses.replace(
                task, status=TaskStatus.PROCESSING, task_id=answer.task_id, submitted_at=now
            )
            self._unsaved[task.id] = Unsaved(
                shown,
                lambda: self.store.record_submitted(task.id, answer.task_id, answer.update, now),
                TaskStatus.SUBMITTING,
            )
            self.bus.say(
                f"unsaved:{task.id}",
                "error",
                f"{task.provider.value} accepted job {task.short_id} as task id "
                f"{answer.task_id}, but the history could not record it ({exc}). Keep this "
                "task id: until the history can be written it is the only record of the job "
                "(it may be charged). It is recorded as soon as space is freed.",
                persistent=True,
            )
            self.bus.changed(shown, TaskStatus.SUBMITTING)
            return shown
        self.writes.succeeded()
        self.on_accepted(saved)
        return saved

    def unsaved(self) -> list[Task]:
        """Outcomes the history could not record yet (kept in memory, tried again)."""
        return [u.task for u in self._unsaved.values()]

    def flush(self) -> None:
        """Try again to record what a full disk refused; raises StoreError if it still does."""
        for task_id, unsaved in list(self._unsaved.items()):
            saved = unsaved.write()
            del self._unsaved[task_id]
            self.writes.succeeded()
            if saved.task_id:
                self.bus.say(
                    f"unsaved:{task_id}",
                    "information",
                    f"recorded task id {saved.task_id} of job {saved.short_id} in the history",
                )
                self.on_accepted(saved)
            else:
                self.bus.changed(saved, unsaved.previous)

    async def flush_all(self) -> None:
        """Until every outcome kept in memory is recorded (the disk has space again)."""
        while self._unsaved:
            try:
                self.flush()
            except StoreError as exc:
                if not is_transient(exc):
                    raise
                await self.sleep(self.writes.failed(exc))


__all__ = ["Outcomes", "Unsaved"]
