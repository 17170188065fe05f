"""Submitting the form's job: checked, confirmed with its cost, sent in a worker.

ctrl+s (or the form's button) → the form checks and prices the job once
(`jobs.prepare`) → `ConfirmSubmit` shows what will be sent and what it costs → on yes, a
worker of the dashboard (group "submit") sends that prepared job through the engine → `SubmitFinished` (the server answered: accepted,
rejected, orphaned) or `SubmitFailed` (refused before anything was sent).
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from textual.widgets import Input, TextArea

from ..config import MissingKeyError
from ..models import JobValidationError, PreparedJob, Task, TaskStatus
from ..text import one_line
from .messages import SubmitFailed, SubmitFinished
from .screens import ConfirmSubmit

if TYPE_CHECKING:
    from .dashboard import DashboardScreen


class SubmitFlow:
    def __init__(self, screen: DashboardScreen) -> None:
        self.screen = screen
        self.confirming = False  # the confirm dialog is open

    def can_submit(self) -> bool | None:
        """False while the dialog is open; None (shown, greyed) while a job is sent."""
        if self.confirming:
            return False
        if self.screen.form.submitting:
            return None
        return True

    def request(self) -> None:
        """Check the form's job; if it is valid, ask to confirm it with its cost."""
        form = self.screen.form
        if form.submitting or self.confirming:
            return
        job = form.revalidate(show_empty_prompt=True)
        if job is None:
            error = form.error
            if error is not None:
                form.focus_field(error.field)
                self.screen.notify(
                    f"{error.field}: {error.message}",
                    title="Not submitted",
                    severity="warning",
                    markup=False,
                )
            return
        self.confirming = True
        dialog = ConfirmSubmit(job.spec, job.quote)
        self.screen.app.push_screen(dialog, partial(self._confirmed, job))

    def _confirmed(self, job: PreparedJob, confirmed: bool | None) -> None:
        self.confirming = False
        form = self.screen.form
        if not confirmed or form.submitting:
            return
        form.submitting = True
        self.screen.refresh_bindings()
        self.screen.run_worker(self._send(job), name="submit", group="submit",
                               exit_on_error=False)  # fmt: skip

    async def _send(self, job: PreparedJob) -> None:
        self.screen.start_engine()  # a job confirmed before the first frame was painted
        engine = self.screen.engine
        assert engine is not None
        try:
            task = await engine.submit(job)
        except JobValidationError as exc:
            self.screen.post_message(SubmitFailed(f"{exc.field}: {exc.message}", exc.field))
        except MissingKeyError as exc:
            self.screen.post_message(SubmitFailed(str(exc)))
        else:
            self.screen.post_message(SubmitFinished(task))

    def finished(self, task: Task) -> None:
        """The server answered: say how, and put the list's cursor on the task."""
        screen = self.screen
        screen.form.submitting = False
        screen.refresh_bindings()
        if task.status is TaskStatus.PROCESSING:
            credits = task.credits_charged or task.credits_estimated
            screen.notify(
                f"{task.short_id} accepted, rendering ({credits} credits)",
                title="Submitted",
                markup=False,
            )
        else:
            screen.notify(
                f"{task.short_id} {task.status.value}: {one_line(task.error, 200)}",
                title="Not accepted",
                severity="error",
                markup=False,
                timeout=10,
            )
        screen.task_list.select(task.id)
        # The answer arrives whenever it arrives: never pull focus out of a field the user
        # is typing in (the next prompt, say), or their keys would become list shortcuts.
        if not isinstance(screen.app.focused, Input | TextArea):
            screen.task_list.focus()

    def failed(self, reason: str, field: str | None) -> None:
        """Refused before sending: say why (and mark the field, if one is named)."""
        form = self.screen.form
        form.submitting = False
        self.screen.refresh_bindings()
        if field:
            form.revalidate(show_empty_prompt=True)
        self.screen.notify(reason, title="Not submitted", severity="error", markup=False)
