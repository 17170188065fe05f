"""Submitting the form's job: checked, confirmed with its cost, sent in a worker.

ctrl+s (or the form's button) → the form checks and prices the job once
(`jobs.prepare`) → no key for its provider: the key dialog instead (`key_dialog.py`), and
once a key is stored this flow again → the spending caps are looked at
(`caps.check_all`) and the history for the same job sent recently (`store.same_jobs`,
within `DUPLICATE_WINDOW`: the dialog says so and starts on Cancel) → `ConfirmSubmit`
shows what will be sent and what it costs (over a cap: the cap, spent, held, at risk,
left, and only the override key o submits) → on yes, a worker of the dashboard (group
"submit") sends that prepared job through the engine → `SubmitFinished` (the server
answered: accepted, rejected, orphaned) or `SubmitFailed` (refused before anything was
sent, a cap passed in the meantime included).

Once the job is accepted the form starts the next one (`finished`).

ctrl+b (compare), or submitting with the form's compare switch on, does the same with
the job and its counterpart on the other provider (`jobs.compare_with`):
`ConfirmCompare` shows both side by side with each price and the total, and the engine
sends them as one group (`submit_group`, all or none).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from textual.widgets import Input, TextArea

from ..caps import CapExceeded, check_all
from ..config import MissingKeyError
from ..hosts import key_set_command
from ..jobs import JobFields, compare_with
from ..models import JobValidationError, PreparedJob, Provider, Task, TaskStatus
from ..store import StoreError
from .key_dialog import has_key
from .messages import SubmitFailed, SubmitFinished
from .screens import DUPLICATE_STATUSES, DUPLICATE_WINDOW, ConfirmCompare, ConfirmSubmit

if TYPE_CHECKING:
    from .dashboard import DashboardScreen


@dataclass(slots=True)
class SentForm:
    """The form as it was when its job(s) were sent, and the answers still to come."""

    state: tuple[JobFields, bool]
    answers_left: int
    all_accepted: bool = True


class SubmitFlow:
    def __init__(self, screen: DashboardScreen) -> None:
        self.screen = screen
        self.confirming = False  # the confirm dialog is open
        self._sent: SentForm | None = None  # the form as it was sent, until answered

    def can_submit(self) -> bool | None:
        """False while a dialog of it is open (the confirm, the key dialog); None (shown,
        greyed) while a job is sent."""
        if self.confirming or self.screen.key_flow.open_now:
            return False
        if self.screen.form.submitting:
            return None
        return True

    def _checked_job(self) -> PreparedJob | None:
        """The form's job, checked and priced; None (the field marked and named) if not."""
        form = self.screen.form
        if form.submitting or self.confirming:
            return None
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
        return job

    def request(self) -> None:
        """Check the form's job; if it is valid, ask to confirm it with its cost (and the
        cap it would pass, if any)."""
        if self.screen.form.compare_on:
            self.compare()  # the form's compare switch: the job goes to both providers
            return
        job = self._checked_job()
        if job is None or self._wants_key([job], self.request):
            return
        over = self.over_cap([job])
        self.confirming = True
        now = self.screen.clock()
        dialog = ConfirmSubmit(job.spec, job.quote, over, duplicate=self.sent_recently([job], now),
                               now=now)  # fmt: skip
        self.screen.app.push_screen(dialog, partial(self._confirmed, [job], over is not None))

    def compare(self) -> None:
        """The form's job on both providers (fields mapped to each one's nearest): shown
        side by side with each price and the total, then sent as one group."""
        job = self._checked_job()
        if job is None:
            return
        try:
            jobs = compare_with(job, self.screen.settings)
        except JobValidationError as exc:
            self.screen.notify(f"{exc.field}: {exc.message}", title="Not compared",
                               severity="warning", markup=False)  # fmt: skip
            return
        if self._wants_key(jobs, self.compare):
            return
        over = self.over_cap(jobs)
        self.confirming = True
        now = self.screen.clock()
        dialog = ConfirmCompare(jobs, over, duplicate=self.sent_recently(jobs, now), now=now)
        self.screen.app.push_screen(dialog, partial(self._confirmed, jobs, over is not None))

    def _wants_key(self, jobs: list[PreparedJob], again: Callable[[], None]) -> bool:
        """No key for a job's provider: the key dialog instead of a price for a job that
        cannot be sent; once a key is stored, `again` (this flow from the start)."""
        screen = self.screen
        missing = [job.provider for job in jobs if not has_key(screen.settings, job.provider)]
        if not missing:
            return False
        provider = missing[0]
        screen.key_flow.open(
            provider,
            reason=f"No API key for {provider.value}: this job cannot be sent without one. "
            f"Paste it here (or run `{key_set_command(provider)}` in a shell).",
            then=again,
        )
        return True

    def sent_recently(self, jobs: list[PreparedJob], now: float) -> list[Task]:
        """Tasks of these very jobs sent within DUPLICATE_WINDOW whose outcome is, or may
        be, a spend (newest first): what the confirm dialog warns of."""
        found: list[Task] = []
        for job in jobs:
            try:
                same = self.screen.store.same_jobs(job.spec, now - DUPLICATE_WINDOW)
            except StoreError:
                continue  # the history cannot say now; writing the intent will tell
            found.extend(task for task in same if task.status in DUPLICATE_STATUSES)
        return sorted(found, key=lambda task: (task.created_at, task.id), reverse=True)

    def over_cap(self, jobs: list[PreparedJob]) -> CapExceeded | None:
        """The cap these jobs would pass (what the confirm dialog shows), if any: a look
        before asking; the store checks again, atomically, when the intents are written."""
        screen = self.screen
        costs: dict[Provider, tuple[int, int]] = {}
        for job in jobs:
            cost, count = costs.get(job.provider, (0, 0))
            costs[job.provider] = (cost + job.quote.credits, count + 1)
        windows = screen.settings.cap_windows(costs, screen.clock())
        try:
            check_all(windows, costs, screen.store.spending)
        except CapExceeded as exc:
            return exc
        return None

    def _confirmed(self, jobs: list[PreparedJob], over_cap: bool, confirmed: bool | None) -> None:
        self.confirming = False
        form = self.screen.form
        if not confirmed or form.submitting:
            return
        form.submitting = True
        self._sent = SentForm(form.state(), len(jobs))
        self.screen.refresh_bindings()
        self.screen.run_worker(self._send(jobs, over_cap), name="submit", group="submit",
                               exit_on_error=False)  # fmt: skip

    async def _send(self, jobs: list[PreparedJob], over_cap: bool) -> None:
        """One job, or (a compare) several as one group; `over_cap`: the user pressed the
        override key in the confirm dialog, for these jobs only."""
        self.screen.start_engine()  # a job confirmed before the first frame was painted
        engine = self.screen.engine
        assert engine is not None
        try:
            if len(jobs) == 1 and over_cap:
                tasks = [await engine.submit(jobs[0], over_cap=True)]
            elif len(jobs) == 1:
                tasks = [await engine.submit(jobs[0])]  # the engine's defaults: the caps hold
            else:
                tasks = await engine.submit_group(jobs, over_cap=over_cap)
        except JobValidationError as exc:
            self.screen.post_message(SubmitFailed(f"{exc.field}: {exc.message}", exc.field))
        except (MissingKeyError, CapExceeded) as exc:
            self.screen.post_message(SubmitFailed(str(exc)))
        else:
            for task in tasks:
                self.screen.post_message(SubmitFinished(task))

    def finished(self, task: Task) -> None:
        """The server answered: say it was accepted, and put the list's cursor on the
        task. A submission that ended at once (rejected, cancelled, orphaned) is said by
        the dashboard's toast for every task that ends (`notices.announce_finished`),
        once. Once every job sent is answered and accepted, the form starts a new job
        (its fields at the config's defaults, the prompt empty, the last one a key away:
        `up`) and the focus goes to the list — unless the user changed the form in the
        meantime (the next prompt, say): what they typed stays, and so does the focus. A
        job refused keeps the form as it was sent, to correct it."""
        screen = self.screen
        sent = self._sent
        if sent is not None:
            sent.answers_left -= 1
            sent.all_accepted &= task.status is TaskStatus.PROCESSING
        if task.status is TaskStatus.PROCESSING:
            credits = task.credits_charged or task.credits_estimated
            screen.notify(
                f"{task.short_id} accepted, rendering ({credits} credits)",
                title="Submitted",
                markup=False,
            )
        screen.task_list.select(task.id)
        if sent is not None and sent.answers_left > 0:
            return  # the other job of a compare is still to be answered
        self._sent = None
        form = screen.form
        form.submitting = False
        screen.refresh_bindings()
        unchanged = sent is not None and form.state() == sent.state
        if unchanged and sent.all_accepted:
            form.reset()
        focused = screen.app.focused
        # The answer arrives whenever it arrives: never pull focus out of a field the user
        # is typing in (the next prompt, the search), or their keys would become list
        # shortcuts. The form as it was sent is not being typed in.
        in_form = focused is not None and form in focused.ancestors_with_self
        if not isinstance(focused, Input | TextArea) or (in_form and unchanged):
            screen.task_list.focus()

    def failed(self, reason: str, field: str | None) -> None:
        """Refused before sending: say why (and mark the field, if one is named)."""
        form = self.screen.form
        form.submitting = False
        self._sent = None
        self.screen.refresh_bindings()
        if field:
            form.revalidate(show_empty_prompt=True)
        self.screen.notify(reason, title="Not submitted", severity="error", markup=False)
