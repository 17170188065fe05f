"""Polling the pending tasks: which the scheduler tracks, and one status request each.

`Poller.track_pending` keeps the scheduler's set equal to the history's processing tasks
(those another instance sharing the file submitted too; a poll another instance made
moves the schedule on from that poll). The engine's loop hands each due poll to
`Poller.spawn`: a task of its own, so one slow answer delays only its own task. A poll
first claims the task in the history (`Store.claim_poll`): two instances never poll one
task less than `MIN_POLL_SPACING` apart. It is sent with the key the task was submitted
with (`KeyGate`), and its answer is written before it is told.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable

from .bus import Bus
from .events import Notice
from .key_gate import KeyGate, budget_key
from .ledger import BudgetWait, Ledger
from .models import BudgetKey, Task, TaskStatus
from .providers import ApiError, AuthError, NotFoundError, RateLimitError, TransportError
from .scheduler import PollTarget, Scheduler
from .store import Store, StoreError, is_transient, profile_of

log = logging.getLogger(__name__)

# Two instances sharing a history file never poll one task more often than this.
MIN_POLL_SPACING = 4.0
# A poll another poller holds (its lease) is tried again no sooner than this.
CLAIM_RETRY = 1.0
NOT_FOUND_LIMIT = 3  # "not found" answers in a row before a task is taken as lost
# The same trouble with polls of one key is reported at most this often.
POLL_ERROR_EVERY = 60.0


class Poller:
    def __init__(
        self,
        store: Store,
        scheduler: Scheduler,
        ledger: Ledger,
        gate: KeyGate,
        bus: Bus,
        *,
        clock: Callable[[], float],
        wake: Callable[[], None],
    ) -> None:
        """`clock`: the wall clock of the history's times; `wake`: rouse the engine's
        loop (a poll ended)."""
        self.store = store
        self.scheduler = scheduler
        self.ledger = ledger
        self.gate = gate
        self.bus = bus
        self.clock = clock
        self.wake = wake
        self._polls: dict[str, asyncio.Task[None]] = {}  # polls in flight, by task
        self._not_found: dict[str, int] = {}
        self._own_poll: dict[str, float] = {}  # task → last poll time this process wrote
        self._seen_poll: dict[str, float] = {}  # task → last poll time taken into account

    @property
    def in_flight(self) -> bool:
        return bool(self._polls)

    # -- what is tracked ---------------------------------------------------------------

    def track_pending(self) -> None:
        """Track pending tasks (also those another instance submitted); drop finished ones."""
        pending = {t.id: t for t in self.store.pending() if t.status is TaskStatus.PROCESSING}
        for task_id in self.scheduler.tracked():
            if task_id not in pending:
                self.scheduler.forget(task_id)
        self.gate.keep_only(pending)
        tracked = set(self.scheduler.tracked())
        keys: set[BudgetKey] = set()
        for task in pending.values():
            key = budget_key(task.provider, task.key_fingerprint)
            _secret, reason = self.gate.secret_for(task)
            if reason is not None:
                self.gate.hold(task, reason)
                continue
            self.gate.release(task.id)
            keys.add(key)
            if task.id not in tracked:
                self.scheduler.track(self.target(task))
            elif (
                task.last_polled_at
                and task.last_polled_at > self._seen_poll.get(task.id, -math.inf) + 0.002
            ):
                # Another instance polled it since: follow the schedule from that poll.
                self._seen_poll[task.id] = task.last_polled_at
                self.scheduler.note_external_poll(task.id, self.ledger.to_mono(task.last_polled_at))
        for key in keys:
            self.ledger.load(key)

    def target(self, task: Task) -> PollTarget:
        """What the scheduler needs to know of a task to poll it."""
        submitted = task.submitted_at or task.created_at
        polled = task.last_polled_at
        if polled is not None:
            self._seen_poll[task.id] = max(self._seen_poll.get(task.id, -math.inf), polled)
        return PollTarget(
            task_id=task.id,
            budget_key=budget_key(task.provider, task.key_fingerprint),
            profile=profile_of(task.provider.value, task.params),
            submitted_at=self.ledger.to_mono(submitted),
            last_polled_at=None if polled is None else self.ledger.to_mono(polled),
        )

    # -- one poll ----------------------------------------------------------------------

    async def poll(self, id: str) -> Task:
        """Send one status request for a task (with its own key) and apply the answer."""
        task = self.store.get(id)
        if task.status is not TaskStatus.PROCESSING or not task.task_id:
            return task
        key = budget_key(task.provider, task.key_fingerprint)
        secret, reason = self.gate.secret_for(task)
        if secret is None:
            assert reason is not None
            self.gate.hold(task, reason)
            return task
        try:
            update = await self.ledger.status(task, key, secret)
        except (BudgetWait, RateLimitError):
            self.scheduler.poll_skipped(id)  # nothing learned; the key waits (ledger)
            return task
        except TransportError as exc:
            if not exc.sent:
                self.scheduler.poll_skipped(id)  # the key backs off (ledger), not the task
                return task
            return self._failed(task, exc)
        except AuthError as exc:
            self.scheduler.poll_skipped(id)
            self.gate.refuse(key, exc)
            return task
        except NotFoundError as exc:
            count = self._not_found[id] = self._not_found.get(id, 0) + 1
            if count < NOT_FOUND_LIMIT:
                return self._failed(task, exc)
            return self._lost(task, str(exc))
        except ApiError as exc:
            return self._failed(task, exc)
        self._not_found.pop(id, None)
        previous = task.status
        now = self.clock()
        task, changed = self.store.apply_update(id, update, now)
        self._own_poll[id] = self._seen_poll[id] = now
        self.ledger.writes.succeeded()
        pending = task.status.is_pending
        # A finish is learned by the scheduler itself (from the server's figure if any).
        self.scheduler.on_poll_result(id, pending=pending, generation_time=update.generation_time)
        if not pending:
            self.scheduler.forget(id)
        if changed or not pending:
            # Only the instance whose answer changed the row reports the transition
            # (listeners such as auto-download act on it); another just shows the row.
            self.bus.changed(task, previous if changed else task.status)
        return task

    def _failed(self, task: Task, exc: ApiError) -> Task:
        """A status request got no usable answer: the task backs off; the user hears of
        it (once a minute per key and kind of trouble)."""
        self.scheduler.on_poll_result(task.id, pending=True, error=True)
        self.store.add_event(task.id, "error", str(exc), self.clock())
        next_at = self.scheduler.next_check(task.id)
        when = ""
        if next_at is not None and math.isfinite(next_at):
            wait = max(0.0, self.ledger.to_wall(next_at) - self.clock())
            when = f"; next check in {wait:.0f} s"
        self.bus.say(
            f"poll-error:{task.provider.value}:{exc.kind}",
            "warning",
            f"checking {task.short_id} failed: {exc}{when}",
            every=POLL_ERROR_EVERY,
        )
        return task

    def _lost(self, task: Task, reason: str) -> Task:
        """The provider answered "not found" to the key the task was submitted with, again
        and again: the outcome is unknown. Never booked as failed and refunded: it may
        have rendered and been charged."""
        self.scheduler.forget(task.id)
        updated = self.store.record_lost(
            task.id,
            f"the provider no longer knows this task, asked with the key it was submitted "
            f"with ({reason}). It may have rendered and been charged: check the provider's "
            "dashboard before re-running.",
            self.clock(),
        )
        self.bus.changed(updated, task.status)
        return updated

    # -- polls in flight ---------------------------------------------------------------

    def spawn(self, task_id: str) -> None:
        """Poll a due task in a task of its own: a slow answer holds only this one."""
        if task_id in self._polls:
            return  # still in flight (the scheduler holds it as handed out)
        poll = asyncio.get_running_loop().create_task(self._claimed(task_id))
        self._polls[task_id] = poll

        def done(_: asyncio.Task[None]) -> None:
            self._polls.pop(task_id, None)
            self.wake()

        poll.add_done_callback(done)

    async def stop(self) -> None:
        """Cancel the polls in flight and wait for them to end."""
        polls = list(self._polls.values())
        for poll in polls:
            poll.cancel()
        await asyncio.gather(*polls, return_exceptions=True)

    async def _claimed(self, id: str) -> None:
        """Poll a due task unless another instance is polling it or polled it a moment ago."""
        claimed = False
        try:
            now = self.clock()
            own = self._own_poll.get(id)
            if not self.store.claim_poll(id, now, MIN_POLL_SPACING, own=own):
                task = self.store.get(id)
                if task.status.is_terminal:
                    self.scheduler.forget(id)
                    self.bus.changed(task)
                    return
                # Another instance polled it a moment ago (or is polling it): not before
                # the spacing allows, following the schedule from that poll — and never at
                # once, or the loop would hand the same poll out again until the other
                # poll ends.
                polled = task.last_polled_at or now
                self.scheduler.poll_skipped(
                    id,
                    not_before=max(
                        self.ledger.to_mono(now) + CLAIM_RETRY,
                        self.ledger.to_mono(polled) + MIN_POLL_SPACING,
                    ),
                )
                if task.last_polled_at:
                    self._seen_poll[id] = task.last_polled_at
                    self.scheduler.note_external_poll(id, self.ledger.to_mono(task.last_polled_at))
                return
            claimed = True
            self._own_poll[id] = self._seen_poll[id] = now
            await self.poll(id)
        except Exception as exc:  # one task's trouble never stops the loop
            if isinstance(exc, StoreError) and is_transient(exc):
                self.ledger.writes.failed(exc)  # the loop waits for space, then polls again
                self.scheduler.poll_skipped(id)
                return
            log.exception("poll of %s failed", id)
            self.bus.emit(Notice("error", f"polling {id[-8:]} failed: {type(exc).__name__}"))
            self.scheduler.on_poll_result(id, pending=True, error=True)
        finally:
            # An applied answer released the lease already; an error or a 429 did not.
            if claimed:
                with contextlib.suppress(Exception):
                    now = self.clock()
                    self.store.release_poll(id, now)
                    self._own_poll[id] = self._seen_poll[id] = now


__all__ = ["CLAIM_RETRY", "MIN_POLL_SPACING", "NOT_FOUND_LIMIT", "Poller"]
