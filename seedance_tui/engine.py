"""Submit and poll loops: ties the ledger, the store and the scheduler together; emits
updates.

Knows nothing about Textual. Listeners are plain callables that receive the events of
`events.py`; the TUI forwards them as messages, the CLI prints them. What the faces show
of the scheduler (a task's next check, its expected finish, each key's budget) they ask
the engine for, in wall-clock times.

The engine is built by `session.py` (the composition root), which also attaches the
work that runs beside the loops — the auto-downloader, the batch queue — as `Background`
workers: the loop kicks each at every turn and `run(until_idle=True)` waits for them.

Requests go through the ledger (`ledger.py`), which claims each one's budget slot in
the history file, sends it and records how it went. The poll loop hands each due poll
to a task of its own, so one slow answer delays only its own task; between polls it
sleeps until the scheduler's next moment (waiting costs no CPU).

Time: the scheduler and every wait run on a monotonic clock, so a wall clock set back
or forward changes no timer; the history's times are wall-clock times, converted at
this boundary (and believed within bounds, see `Ledger.to_mono`).

What cannot be done is said, never looped on: a task is polled only with the key it
was submitted with (without it, it waits, and says so); a key the provider refused
(401) stops its tasks; a full disk under the history stops what cannot be recorded
until space returns, and an accepted task id that could not be stored is announced
with what to do, and recorded as soon as it can be.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from . import providers
from .client import Client, OutcomeUnknown
from .config import MissingKeyError, Settings
from .events import EngineEvent, Listener, Notice, TaskChanged
from .ledger import BudgetWait, Ledger, NotSent, clock_text
from .models import BudgetKey, JobSpec, PreparedJob, Provider, Task, TaskStatus
from .providers import (
    ApiError,
    AuthError,
    NotFoundError,
    RateLimitError,
    SubmitAnswer,
    TransportError,
)
from .scheduler import BudgetState, PollTarget, Scheduler
from .store import Store, StoreConflictError, StoreError, is_transient, profile_of

log = logging.getLogger(__name__)

# Two instances sharing a history file never poll one task more often than this.
MIN_POLL_SPACING = 4.0
# A poll another poller holds (its lease) is tried again no sooner than this.
CLAIM_RETRY = 1.0
# How often the loop re-reads the history for work other instances added or finished.
RESYNC_EVERY = 20.0
NOT_FOUND_LIMIT = 3
# A key the provider refused (401/403) is tried again after this long (the dashboard;
# `watch` ends instead, saying why).
AUTH_PAUSE = 300.0
# The same trouble with polls of one key is reported at most this often.
POLL_ERROR_EVERY = 60.0
COALESCE_STEPS = 3  # event-loop turns a woken loop lets pass before it looks again


Sleep = Callable[[float], Awaitable[None]]


class Background(Protocol):
    """Work attached to the engine that runs beside its loops (the auto-downloader, the
    batch queue): kicked at every turn of the poll loop, and waited for by
    `run(until_idle=True)` while busy."""

    def kick(self) -> None:
        """Start what is due (on the engine's event loop); return at once."""

    def busy(self) -> bool:
        """Work is in progress or due that the loop should stay for."""


@dataclass(frozen=True, slots=True)
class KeyBudget:
    """A provider's key in use, as the credits panel shows it: its rate budget (times in
    wall-clock seconds) and, when its requests wait, why in a few words."""

    key: BudgetKey
    state: BudgetState
    trouble: str | None


def make_scheduler(settings: Settings, clock: Callable[[], float]) -> Scheduler:
    """The scheduler with the user's `[polling]` settings, on `clock` (monotonic)."""
    knobs = dict(settings.polling)
    options: dict = {}
    if "min_interval" in knobs:
        options["poll_interval"] = knobs["min_interval"]
    for name in ("target_latency", "max_interval", "prior"):
        if name in knobs:
            options[name] = knobs[name]
    return Scheduler(clock, settings.limits(), windows=settings.rate_windows(), **options)


def budget_key(provider: Provider, key_fingerprint: str | None) -> BudgetKey:
    return BudgetKey(provider, key_fingerprint)


@dataclass(slots=True)
class _Unsaved:
    """A write the history refused (a full disk), kept to be tried again."""

    task: Task  # as it should be shown meanwhile
    write: Callable[[], Task]
    previous: TaskStatus


class Engine:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        client: Client | None = None,
        scheduler: Scheduler | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        """`clock` is the wall clock of the history's times; `monotonic` drives the
        scheduler and every wait (a benchmark running both on one accelerated clock
        passes it as both); `sleep` waits that long on `monotonic`."""
        self.settings = settings
        self.store = store
        self.clock = clock
        self.monotonic = monotonic or time.monotonic
        self._sleep = sleep
        self.client = client or Client(
            {p: s.base_url for p, s in settings.providers.items()},
            {p: settings.key(p) for p in settings.providers},
        )
        self.scheduler = scheduler or make_scheduler(settings, self.monotonic)
        self.ledger = Ledger(
            store,
            self.scheduler,
            self.client,
            windows=settings.rate_windows(),
            wall=clock,
            mono=self.monotonic,
            sleep=sleep,
            notify=self._say,
        )
        self.listeners: list[Listener] = []
        self._wake = asyncio.Event()
        self._submitting: dict[BudgetKey, int] = {}  # budget key → submissions waiting or in flight
        self._not_found: dict[str, int] = {}
        self._polls: dict[str, asyncio.Task[None]] = {}  # polls in flight, by task
        self._held: dict[str, str] = {}  # task → why it is not polled
        self._refused: dict[BudgetKey, tuple[float, str]] = {}  # key → (until, why)
        self._unsaved: dict[str, _Unsaved] = {}  # task → a write to try again
        self._own_poll: dict[str, float] = {}  # task → last poll time this process wrote
        self._seen_poll: dict[str, float] = {}  # task → last poll time taken into account
        self._said: dict[str, str] = {}  # topic → the last notice of it
        self._said_at: dict[str, float] = {}
        self._last_resync = -math.inf
        self._started = False
        self._background: list[Background] = []

    # -- events ------------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> None:
        self.listeners.append(listener)

    def attach(self, worker: Background) -> None:
        """Run `worker` beside the loops (see `Background`); the session attaches them."""
        self._background.append(worker)

    def _emit(self, event: EngineEvent) -> None:
        for listener in list(self.listeners):
            try:
                listener(event)
            except Exception:  # a broken listener must not stop the engine
                log.exception("listener failed")

    def emit(self, event: EngineEvent) -> None:
        """Tell every listener (the auto-downloader and the batch queue are given this)."""
        self._emit(event)

    def _changed(self, task: Task, previous: TaskStatus | None = None) -> None:
        self._emit(TaskChanged(task, previous))

    def _say(
        self,
        topic: str,
        level: str,
        message: str,
        *,
        persistent: bool = False,
        every: float = 0.0,
    ) -> None:
        """A notice, unless it repeats the last one of its topic (or, with `every`, comes
        sooner than that after it)."""
        now = self.monotonic()
        if self._said.get(topic) == message:
            return
        if every and now - self._said_at.get(topic, -math.inf) < every:
            return
        self._said[topic], self._said_at[topic] = message, now
        self._emit(Notice(level, message, persistent=persistent, topic=topic))

    # -- clocks ------------------------------------------------------------------------

    def _wall(self, at: float | None) -> float | None:
        """A scheduler's (monotonic) moment as a wall-clock time; None stays None."""
        return None if at is None or not math.isfinite(at) else self.ledger.to_wall(at)

    def eta(self, task_id: str) -> float | None:
        """Expected finish of a task, as a wall-clock time."""
        return self._wall(self.scheduler.eta(task_id))

    def overdue(self, task_id: str) -> bool:
        """Is a pending task past its likely finish (shown as "overdue", not as an ETA)?"""
        return self.scheduler.overdue(task_id)

    def next_check(self, task_id: str) -> float | None:
        """When a task will next be checked, as a wall-clock time (None: not scheduled)."""
        return self._wall(self.scheduler.next_check(task_id))

    def budget(self, provider: Provider) -> KeyBudget:
        """The rate budget of the provider's key in use now, and why it waits if it does."""
        key = budget_key(provider, self.settings.key_fingerprint(provider))
        state = self.scheduler.budget(key)
        state = dataclasses.replace(
            state,
            paused_until=self._wall(state.paused_until),
            resets_at=self._wall(state.resets_at),
            spaced_until=self._wall(state.spaced_until),
        )
        return KeyBudget(key, state, self.key_trouble(key))

    def budgets(self) -> dict[Provider, KeyBudget]:
        """Every provider's `budget`, in the providers' order."""
        return {provider: self.budget(provider) for provider in Provider}

    # -- start-up ----------------------------------------------------------------------

    def start(self) -> None:
        """Recover from the last run: end dead intents, learn ETAs, track pending tasks."""
        if self._started:
            return
        self._started = True
        now = self.clock()
        try:
            for task in self.store.orphan_stale_intents(now):
                self._changed(task, TaskStatus.SUBMITTING)
        except StoreError as exc:
            if not is_transient(exc):
                raise
            self.ledger.writes.failed(exc)  # the next start decides them
        for profile, seconds in self.store.generation_history():
            self.scheduler.learn(profile, seconds)
        self.resync()

    def note_external(self, task_id: str) -> None:
        """Another process changed this task ("*": many tasks) — a shared history's
        change feed, on this loop: listeners are told at once (a dashboard shows a task
        another machine submitted within the second), and a pending task joins the
        poll schedule without waiting for the next resync."""
        if task_id == "*":
            self.resync()
            self._wake.set()
            return
        try:
            task = self.store.get(task_id)
        except StoreError:
            return  # gone, or the history is unreadable now: the next resync sees
        if task.status is TaskStatus.PROCESSING and task_id not in self.scheduler.tracked():
            self.resync()
        elif task.status.is_terminal and task_id in self.scheduler.tracked():
            self.scheduler.forget(task_id)
        self._emit(TaskChanged(task, None, external=True))
        self._wake.set()

    def resync(self) -> None:
        """Track pending tasks (also those another instance submitted); drop finished ones."""
        self._last_resync = self.monotonic()
        pending = {t.id: t for t in self.store.pending() if t.status is TaskStatus.PROCESSING}
        for task_id in self.scheduler.tracked():
            if task_id not in pending:
                self.scheduler.forget(task_id)
        for task_id in [i for i in self._held if i not in pending]:
            del self._held[task_id]
        tracked = set(self.scheduler.tracked())
        keys: set[BudgetKey] = set()
        for task in pending.values():
            key = budget_key(task.provider, task.key_fingerprint)
            _secret, reason = self._secret_for(task)
            if reason is not None:
                self._hold(task, reason)
                continue
            self._held.pop(task.id, None)
            keys.add(key)
            if task.id not in tracked:
                self.scheduler.track(self._target(task))
            elif (
                task.last_polled_at
                and task.last_polled_at > self._seen_poll.get(task.id, -math.inf) + 0.002
            ):
                # Another instance polled it since: follow the schedule from that poll.
                self._seen_poll[task.id] = task.last_polled_at
                self.scheduler.note_external_poll(task.id, self.ledger.to_mono(task.last_polled_at))
        for key in keys:
            self.ledger.load(key)

    def _target(self, task: Task) -> PollTarget:
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

    # -- keys ----------------------------------------------------------------------------

    def _secret_for(self, task: Task) -> tuple[str | None, str | None]:
        """The key a task is polled with — the one it was submitted with — or why there
        is none (the task then waits)."""
        provider = task.provider
        key = budget_key(provider, task.key_fingerprint)
        refused = self._refused.get(key)
        if refused is not None:
            until, why = refused
            if self.monotonic() < until:
                return None, why
            del self._refused[key]
        secret = self.settings.key(provider)
        env_key = providers.get(provider).env_key
        if not secret:
            return None, (
                f"no API key for {provider.value}: set {env_key} or run "
                f"`seedance-tui key set {provider.value}`"
            )
        if task.key_fingerprint and task.key_fingerprint != self.settings.key_fingerprint(provider):
            return None, (
                f"needs the key it was submitted with (key {task.key_fingerprint[:6]}…; "
                f"the {provider.value} key in use now is another): set that key to check it"
            )
        return secret, None

    def _hold(self, task: Task, reason: str) -> None:
        """This task cannot be polled now: say so once, keep it out of the schedule."""
        self.scheduler.forget(task.id)
        if self._held.get(task.id) != reason:
            self._held[task.id] = reason
            self._say(f"held:{reason}", "warning", f"{task.provider.value}: {reason}")

    def waiting_reason(self, task_id: str) -> str | None:
        """Why a pending task is not being checked (None: it is)."""
        return self._held.get(task_id)

    def held(self) -> dict[str, str]:
        """Pending tasks this engine cannot check, and why."""
        return dict(self._held)

    def key_trouble(self, key: BudgetKey) -> str | None:
        """Why this key's requests wait now, in a few words (None: they don't)."""
        refused = self._refused.get(key)
        if refused is not None and self.monotonic() < refused[0]:
            return "the key was refused: " + refused[1]
        if self.ledger.writes.troubled:
            return "the history's disk is full: waiting for space"
        return self.ledger.trouble(key)

    def _refuse_key(self, key: BudgetKey, exc: AuthError) -> None:
        why = f"{exc} — {exc.hint}"
        self._refused[key] = (self.monotonic() + AUTH_PAUSE, why)
        self._say(f"refused:{key}", "error", why)
        for task in self.store.pending():
            if budget_key(task.provider, task.key_fingerprint) == key and task.task_id:
                self._hold(task, f"the provider refused its key: {why}")

    # -- submit ------------------------------------------------------------------------

    async def submit(self, job: PreparedJob | JobSpec, *, intent: Task | None = None) -> Task:
        """Record the intent durably, send, record the answer durably.

        `job`: prepared once by `jobs.prepare` (a plain spec is prepared here). Raises
        JobValidationError or MissingKeyError before anything is written or sent, a
        StoreError when even the intent cannot be written (nothing is sent then).
        Returns the task (processing, rejected, cancelled or orphaned); never raises for
        a refusal. `intent`: a queued task already claimed as this submission's intent row.
        """
        if not isinstance(job, PreparedJob):
            job = providers.get(job.provider).prepare(job)
        spec = job.spec
        secret = self.settings.require_key(spec.provider)
        fingerprint = self.settings.key_fingerprint(spec.provider)
        key = budget_key(spec.provider, fingerprint)
        task = intent or self.store.create_intent(
            spec, estimate=job.quote.credits, key_fingerprint=fingerprint, now=self.clock()
        )
        self._changed(task, TaskStatus.QUEUED if intent else None)
        self._submitting[key] = self._submitting.get(key, 0) + 1
        self.scheduler.set_waiting_submissions(key, self._submitting[key])
        try:
            answer = await self.ledger.generate(task, job, key, secret)
        except NotSent as exc:
            return self._end_submission(
                task,
                TaskStatus.CANCELLED,
                f"not sent: {exc}. Nothing was sent and nothing charged; submit it again",
            )
        except OutcomeUnknown as exc:
            return self._end_submission(
                task,
                TaskStatus.ORPHANED,
                f"{exc.message}. The provider may have accepted and charged it; neither API can "
                "list tasks, so check the provider's dashboard before re-running.",
            )
        except ApiError as exc:
            if isinstance(exc, AuthError):
                self._refuse_key(key, exc)
            message = str(exc) + (f" — {exc.hint}" if exc.hint else "")
            return self._end_submission(task, TaskStatus.REJECTED, message)
        except BaseException:
            self._interrupted(task)
            raise
        finally:
            self._submitting[key] -= 1
            self.scheduler.set_waiting_submissions(key, self._submitting[key])
        return self._accepted(task, answer)

    def _interrupted(self, task: Task) -> None:
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
            self._changed(ended, TaskStatus.SUBMITTING)

    def _end_submission(self, task: Task, status: TaskStatus, error: str) -> Task:
        now = self.clock()
        try:
            ended = self.store.record_refusal(task.id, status, error, now)
        except StoreError as exc:
            if not is_transient(exc):
                raise
            self.ledger.writes.failed(exc)
            shown = dataclasses.replace(task, status=status, error=error, updated_at=now)
            self._unsaved[task.id] = _Unsaved(
                shown,
                lambda: self.store.record_refusal(task.id, status, error, self.clock()),
                TaskStatus.SUBMITTING,
            )
            self._changed(shown, TaskStatus.SUBMITTING)
            return shown
        self._changed(ended, TaskStatus.SUBMITTING)
        return ended

    def _accepted(self, task: Task, answer: SubmitAnswer) -> Task:
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
            return self._end_submission(
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
            self.ledger.writes.failed(exc)
            now = self.clock()
            shown = dataclasses.replace(
                task, status=TaskStatus.PROCESSING, task_id=answer.task_id, submitted_at=now
            )
            self._unsaved[task.id] = _Unsaved(
                shown,
                lambda: self.store.record_submitted(task.id, answer.task_id, answer.update, now),
                TaskStatus.SUBMITTING,
            )
            self._say(
                f"unsaved:{task.id}",
                "error",
                f"{task.provider.value} accepted job {task.short_id} as task id "
                f"{answer.task_id}, but the history could not record it ({exc}). Keep this "
                "task id: until the history can be written it is the only record of the job "
                "(it may be charged). It is recorded as soon as space is freed.",
                persistent=True,
            )
            self._changed(shown, TaskStatus.SUBMITTING)
            return shown
        self.ledger.writes.succeeded()
        self._after_accepted(saved)
        return saved

    def _after_accepted(self, saved: Task) -> None:
        self._changed(saved, TaskStatus.SUBMITTING)
        if saved.status is TaskStatus.PROCESSING:
            self.scheduler.track(self._target(saved))
        self._wake.set()

    def unsaved(self) -> list[Task]:
        """Outcomes the history could not record yet (kept in memory, tried again)."""
        return [u.task for u in self._unsaved.values()]

    def _flush_unsaved(self) -> None:
        """Try again to record what a full disk refused; raises StoreError if it still does."""
        for task_id, unsaved in list(self._unsaved.items()):
            saved = unsaved.write()
            del self._unsaved[task_id]
            self.ledger.writes.succeeded()
            if saved.task_id:
                self._say(
                    f"unsaved:{task_id}",
                    "information",
                    f"recorded task id {saved.task_id} of job {saved.short_id} in the history",
                )
                self._after_accepted(saved)
            else:
                self._changed(saved, unsaved.previous)

    async def flush_unsaved(self) -> None:
        """Until every outcome kept in memory is recorded (the disk has space again)."""
        while self._unsaved:
            try:
                self._flush_unsaved()
            except StoreError as exc:
                if not is_transient(exc):
                    raise
                await self._sleep(self.ledger.writes.failed(exc))

    # -- polling -----------------------------------------------------------------------

    async def poll(self, id: str) -> Task:
        """Send one status request for a task (with its own key) and apply the answer."""
        task = self.store.get(id)
        if task.status is not TaskStatus.PROCESSING or not task.task_id:
            return task
        key = budget_key(task.provider, task.key_fingerprint)
        secret, reason = self._secret_for(task)
        if secret is None:
            assert reason is not None
            self._hold(task, reason)
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
            return self._poll_failed(task, exc)
        except AuthError as exc:
            self.scheduler.poll_skipped(id)
            self._refuse_key(key, exc)
            return task
        except NotFoundError as exc:
            count = self._not_found[id] = self._not_found.get(id, 0) + 1
            if count < NOT_FOUND_LIMIT:
                return self._poll_failed(task, exc)
            return self._finish_lost(task, str(exc))
        except ApiError as exc:
            return self._poll_failed(task, exc)
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
            self._changed(task, previous if changed else task.status)
        return task

    def _poll_failed(self, task: Task, exc: ApiError) -> Task:
        """A status request got no usable answer: the task backs off; the user hears of
        it (once a minute per key and kind of trouble)."""
        self.scheduler.on_poll_result(task.id, pending=True, error=True)
        self.store.add_event(task.id, "error", str(exc), self.clock())
        next_at = self.next_check(task.id)
        when = f"; next check in {max(0.0, next_at - self.clock()):.0f} s" if next_at else ""
        self._say(
            f"poll-error:{task.provider.value}:{exc.kind}",
            "warning",
            f"checking {task.short_id} failed: {exc}{when}",
            every=POLL_ERROR_EVERY,
        )
        return task

    def _finish_lost(self, task: Task, reason: str) -> Task:
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
        self._changed(updated, task.status)
        return updated

    def poll_now(self, id: str) -> bool:
        """The user asked to check a task now; False when the budget does not allow it."""
        allowed = self.scheduler.poll_now(id)
        if allowed:
            self._wake.set()
        return allowed

    def wake(self) -> None:
        self._wake.set()

    def has_pending(self) -> bool:
        """Work is left that this engine can do: tasks to poll, submissions in flight,
        outcomes to record, or renders being saved. Held tasks (no key for them) are not."""
        return (
            bool(self.scheduler.tracked())
            or bool(self._polls)
            or any(self._submitting.values())
            or bool(self._unsaved)
            or any(worker.busy() for worker in self._background)
        )

    async def run(self, *, until_idle: bool = False, max_wait: float = RESYNC_EVERY) -> None:
        """The poll loop. With `until_idle`, returns once nothing it can do is left."""
        self.start()
        try:
            while True:
                self._wake.clear()
                blocked = self.ledger.writes.blocked_for()
                if blocked > 0:
                    await self._nap(min(blocked, max_wait))  # a full disk: wait for space
                    continue
                try:
                    if self._unsaved:
                        self._flush_unsaved()
                    if self.monotonic() - self._last_resync >= RESYNC_EVERY:
                        self.resync()
                    for worker in self._background:
                        worker.kick()
                    for task_id in self.scheduler.due_polls():
                        self._spawn_poll(task_id)
                    if until_idle and not self.has_pending():
                        self.resync()
                        if not self.has_pending():
                            return
                except StoreError as exc:
                    if not is_transient(exc):
                        raise
                    self.ledger.writes.failed(exc)
                    continue
                wakeup = self.scheduler.next_wakeup()
                now = self.monotonic()
                delay = max_wait if wakeup is None else min(max(wakeup - now, 0.05), max_wait)
                await self._nap(delay)
        finally:
            polls = list(self._polls.values())
            for poll in polls:
                poll.cancel()
            await asyncio.gather(*polls, return_exceptions=True)
            self.ledger.close()

    async def _nap(self, delay: float) -> None:
        """Sleep `delay` (on the engine's clock) or until woken, whichever comes first."""
        if self._wake.is_set():
            return
        woken = asyncio.ensure_future(self._wake.wait())
        slept = asyncio.ensure_future(self._sleep(delay))
        try:
            await asyncio.wait({woken, slept}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in (woken, slept):
                waiter.cancel()
            await asyncio.gather(woken, slept, return_exceptions=True)
        # Polls that end together (a probe's failure releases the requests waiting for
        # it) wake the loop once, not once each: let them all land first.
        for _ in range(COALESCE_STEPS):
            await asyncio.sleep(0)

    def _spawn_poll(self, task_id: str) -> None:
        """Poll a due task in a task of its own: a slow answer holds only this one."""
        if task_id in self._polls:
            return  # still in flight (the scheduler holds it as handed out)
        poll = asyncio.get_running_loop().create_task(self._poll_claimed(task_id))
        self._polls[task_id] = poll

        def done(_: asyncio.Task[None]) -> None:
            self._polls.pop(task_id, None)
            self._wake.set()

        poll.add_done_callback(done)

    async def _poll_claimed(self, id: str) -> None:
        """Poll a due task unless another instance is polling it or polled it a moment ago."""
        claimed = False
        try:
            now = self.clock()
            own = self._own_poll.get(id)
            if not self.store.claim_poll(id, now, MIN_POLL_SPACING, own=own):
                task = self.store.get(id)
                if task.status.is_terminal:
                    self.scheduler.forget(id)
                    self._changed(task)
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
            self._emit(Notice("error", f"polling {id[-8:]} failed: {type(exc).__name__}"))
            self.scheduler.on_poll_result(id, pending=True, error=True)
        finally:
            # An applied answer released the lease already; an error or a 429 did not.
            if claimed:
                with contextlib.suppress(Exception):
                    now = self.clock()
                    self.store.release_poll(id, now)
                    self._own_poll[id] = self._seen_poll[id] = now

    # -- for the batch queue -----------------------------------------------------------

    def submit_delay(self, key: BudgetKey) -> float:
        """Seconds before a submission with this key may be sent (its rate budget, a full
        disk under the history); 0: now."""
        self.ledger.load(key)
        return max(self.scheduler.submit_delay(key), self.ledger.writes.blocked_for())

    @contextlib.contextmanager
    def submission_waiting(self, key: BudgetKey) -> Iterator[None]:
        """A submission waits for this key's budget meanwhile: the scheduler keeps a slot
        of the hour for it."""
        self.scheduler.set_waiting_submissions(key, self._submitting.get(key, 0) + 1)
        try:
            yield
        finally:
            self.scheduler.set_waiting_submissions(key, self._submitting.get(key, 0))

    def write_failed(self, exc: StoreError) -> float:
        """A transient write error (a full disk): say so; seconds to wait before retrying."""
        return self.ledger.writes.failed(exc)

    async def sleep(self, delay: float) -> None:
        """Wait `delay` seconds on the engine's clock."""
        await self._sleep(delay)

    async def aclose(self) -> None:
        """Close the ledger and the client (the session stops the attached workers first)."""
        self.ledger.close()
        await self.client.aclose()


__all__ = [
    "Background",
    "Engine",
    "EngineEvent",
    "KeyBudget",
    "MissingKeyError",
    "Notice",
    "TaskChanged",
    "budget_key",
    "clock_text",
]
