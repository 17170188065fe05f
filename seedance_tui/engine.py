"""Submit and poll loops: ties the ledger, the store and the scheduler together; emits
updates.

Knows nothing about Textual. Listeners are plain callables that receive the events of
`events.py` (through the engine's `Bus`); the TUI forwards them as messages, the CLI
prints them. What the faces show of the scheduler (a task's next check, its expected
finish, each key's budget) they ask the engine for, in wall-clock times.

The engine is built by `session.py` (the composition root), which also attaches the
work that runs beside the loops — the auto-downloader, the batch queue — as `Background`
workers: the loop kicks each at every turn and `run(until_idle=True)` waits for them.

Its parts: the ledger (`ledger.py`) claims each request's budget slot in the history
file, sends it and records how it went; the poller (`polling.py`) tracks the pending
tasks and polls each due one in a task of its own, so one slow answer delays only its
own task; the key gate (`key_gate.py`) says which key polls a task and which tasks wait
for want of one; `outcomes.py` records what a submission ended with, or keeps it while a
full disk refuses it. Between polls the loop sleeps until the scheduler's next moment
(waiting costs no CPU).

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
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from . import providers
from .bus import Bus
from .caps import Window
from .client import Client, OutcomeUnknown
from .config import MissingKeyError, Settings
from .events import EngineEvent, Listener, Notice, TaskChanged
from .key_gate import AUTH_PAUSE, KeyGate, budget_key
from .ledger import Ledger, NotSent, clock_text
from .models import BudgetKey, JobSpec, PreparedJob, Provider, Task, TaskStatus
from .outcomes import Outcomes
from .polling import CLAIM_RETRY, MIN_POLL_SPACING, Poller
from .providers import ApiError, AuthError
from .scheduler import BudgetState, Scheduler
from .store import Store, StoreError, is_transient, new_task_id

# How often the loop re-reads the history for work other instances added or finished.
RESYNC_EVERY = 20.0
COALESCE_STEPS = 3  # event-loop turns a woken loop lets pass before it looks again
# A turn of the loop (the scheduler's look over every pending task: ~1.5 ms at 200 tasks
# here) is followed by a rest long enough that turns take at most this share of a core,
# so polls that end one after another (10 a second while many renders end) are looked at
# together, not one turn each (at 3 %, a turn after nearly every answer cost the engine
# ~1.5 % of a core); the rest never exceeds MAX_TURN_GAP (a due poll is sent at most
# that late: ~0.15 s at 200 tasks) and a poll the user asked for ends it at once. With
# few tasks a turn costs well under a millisecond and the rest is negligible.
TURN_SHARE = 0.01
MAX_TURN_GAP = 1.0
MIN_REST = 0.02  # a shorter rest is not taken (a turn of a few tasks rests not at all)


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


def new_group_id(now: float) -> str:
    """The id of a group of tasks submitted together (time-ordered, as task ids)."""
    return "g" + new_task_id(now)


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
        turn_cost: Callable[[], float] = time.thread_time,
    ) -> None:
        """`clock` is the wall clock of the history's times; `monotonic` drives the
        scheduler and every wait (a benchmark running both on one accelerated clock
        passes it as both); `sleep` waits that long on `monotonic`; `turn_cost` is the
        CPU clock a turn of the loop is measured on (see TURN_SHARE)."""
        self.settings = settings
        self.store = store
        self.clock = clock
        self.monotonic = monotonic or time.monotonic
        self._sleep = sleep
        self._turn_cost = turn_cost
        self.bus = Bus(self.monotonic)
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
            notify=self.bus.say,
        )
        self.gate = KeyGate(
            settings, store, self.scheduler, self.ledger, self.bus, monotonic=self.monotonic
        )
        self._wake = asyncio.Event()
        self._urgent = asyncio.Event()  # a wake that does not wait out the turn's rest
        self.poller = Poller(
            store, self.scheduler, self.ledger, self.gate, self.bus, clock=clock, wake=self.wake
        )
        self.outcomes = Outcomes(
            store, self.ledger.writes, self.bus, clock=clock, sleep=sleep,
            on_accepted=self._accepted,
        )  # fmt: skip
        self._submitting: dict[BudgetKey, int] = {}  # budget key → submissions waiting or in flight
        self._last_resync = -math.inf
        self._started = False
        self._background: list[Background] = []

    # -- events ------------------------------------------------------------------------

    @property
    def listeners(self) -> list[Listener]:
        return self.bus.listeners

    def subscribe(self, listener: Listener) -> None:
        self.bus.subscribe(listener)

    def attach(self, worker: Background) -> None:
        """Run `worker` beside the loops (see `Background`); the session attaches them."""
        self._background.append(worker)

    def emit(self, event: EngineEvent) -> None:
        """Tell every listener (the auto-downloader and the batch queue are given this)."""
        self.bus.emit(event)

    # -- what the faces show -----------------------------------------------------------

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

    def waiting_reason(self, task_id: str) -> str | None:
        """Why a pending task is not being checked (None: it is)."""
        return self.gate.waiting_reason(task_id)

    def held(self) -> dict[str, str]:
        """Pending tasks this engine cannot check, and why."""
        return self.gate.held()

    def key_trouble(self, key: BudgetKey) -> str | None:
        """Why this key's requests wait now, in a few words (None: they don't)."""
        return self.gate.trouble(key)

    def unsaved(self) -> list[Task]:
        """Outcomes the history could not record yet (kept in memory, tried again)."""
        return self.outcomes.unsaved()

    # -- start-up ----------------------------------------------------------------------

    def start(self) -> None:
        """Recover from the last run: end dead intents, learn ETAs, track pending tasks."""
        if self._started:
            return
        self._started = True
        now = self.clock()
        try:
            for task in self.store.orphan_stale_intents(now):
                self.bus.changed(task, TaskStatus.SUBMITTING)
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
        self.bus.emit(TaskChanged(task, None, external=True))
        self._wake.set()

    def resync(self) -> None:
        """Track pending tasks (also those another instance submitted); drop finished ones."""
        self._last_resync = self.monotonic()
        self.poller.track_pending()

    # -- submit ------------------------------------------------------------------------

    async def submit(
        self, job: PreparedJob | JobSpec, *, intent: Task | None = None, over_cap: bool = False
    ) -> Task:
        """Record the intent durably, send, record the answer durably.

        `job`: prepared once by `jobs.prepare` (a plain spec is prepared here). Raises
        JobValidationError or MissingKeyError before anything is written or sent, a
        StoreError when even the intent cannot be written (nothing is sent then), and
        caps.CapExceeded when the job would pass one of its provider's spending caps
        (checked with the intent row, in its transaction: nothing written or sent;
        `over_cap` lets this one job past them). Returns the task (processing, rejected,
        cancelled or orphaned); never raises for a refusal. `intent`: a queued task
        already claimed as this submission's intent row (its caps checked by the claim).
        """
        if not isinstance(job, PreparedJob):
            job = providers.get(job.provider).prepare(job)
        if intent is not None:
            return await self._send(intent, job, TaskStatus.QUEUED)
        [task] = self._write_intents([job], over_cap=over_cap, group=None)
        return await self._send(task, job, None)

    async def submit_group(
        self, jobs: Sequence[PreparedJob], *, over_cap: bool = False
    ) -> list[Task]:
        """Submit jobs as one group (a compare: the same prompt on each provider): their
        intents written together, in one new `group`, only when every provider's caps
        allow its job and the pair (all or none: CapExceeded, nothing written or sent);
        then sent side by side. Returns the tasks in the jobs' order."""
        prepared = [
            job if isinstance(job, PreparedJob) else providers.get(job.provider).prepare(job)
            for job in jobs
        ]
        tasks = self._write_intents(prepared, over_cap=over_cap, group=new_group_id(self.clock()))
        return list(
            await asyncio.gather(
                *(self._send(t, j, None) for t, j in zip(tasks, prepared, strict=True))
            )
        )

    def cap_windows(self, providers_: Iterable[Provider]) -> tuple[Window, ...]:
        """The spending caps of these providers that apply now (caps.py)."""
        return self.settings.cap_windows(providers_, self.clock())

    def _write_intents(
        self, jobs: Sequence[PreparedJob], *, over_cap: bool, group: str | None
    ) -> list[Task]:
        for job in jobs:
            self.settings.require_key(job.provider)
        rows = [(j.spec, j.quote.credits, self.settings.key_fingerprint(j.provider)) for j in jobs]
        windows = () if over_cap else self.cap_windows(j.provider for j in jobs)
        return self.store.create_intents(rows, now=self.clock(), windows=windows, group=group)

    async def _send(self, task: Task, job: PreparedJob, previous: TaskStatus | None) -> Task:
        """Send a submission whose intent row is written, record the outcome."""
        spec = job.spec
        secret = self.settings.require_key(spec.provider)
        key = budget_key(spec.provider, self.settings.key_fingerprint(spec.provider))
        self.bus.changed(task, previous)
        self._submitting[key] = self._submitting.get(key, 0) + 1
        self.scheduler.set_waiting_submissions(key, self._submitting[key])
        try:
            answer = await self.ledger.generate(task, job, key, secret)
        except NotSent as exc:
            return self.outcomes.ended(
                task,
                TaskStatus.CANCELLED,
                f"not sent: {exc}. Nothing was sent and nothing charged; submit it again",
            )
        except OutcomeUnknown as exc:
            return self.outcomes.ended(
                task,
                TaskStatus.ORPHANED,
                f"{exc.message}. The provider may have accepted and charged it; neither API can "
                "list tasks, so check the provider's dashboard before re-running.",
            )
        except ApiError as exc:
            if isinstance(exc, AuthError):
                self.gate.refuse(key, exc)
            message = str(exc) + (f" — {exc.hint}" if exc.hint else "")
            return self.outcomes.ended(task, TaskStatus.REJECTED, message)
        except BaseException:
            self.outcomes.interrupted(task)
            raise
        finally:
            self._submitting[key] -= 1
            self.scheduler.set_waiting_submissions(key, self._submitting[key])
        return self.outcomes.accepted(task, answer)

    def _accepted(self, saved: Task) -> None:
        """An accepted task is recorded: tell, and poll it when it is due."""
        self.bus.changed(saved, TaskStatus.SUBMITTING)
        if saved.status is TaskStatus.PROCESSING:
            self.scheduler.track(self.poller.target(saved))
        self._wake.set()

    async def flush_unsaved(self) -> None:
        """Until every outcome kept in memory is recorded (the disk has space again)."""
        await self.outcomes.flush_all()

    # -- polling -----------------------------------------------------------------------

    async def poll(self, id: str) -> Task:
        """Send one status request for a task (with its own key) and apply the answer."""
        return await self.poller.poll(id)

    def poll_now(self, id: str) -> bool:
        """The user asked to check a task now; False when the budget does not allow it."""
        allowed = self.scheduler.poll_now(id)
        if allowed:
            self._urgent.set()
            self._wake.set()
        return allowed

    def wake(self) -> None:
        self._wake.set()

    def has_pending(self) -> bool:
        """Work is left that this engine can do: tasks to poll, submissions in flight,
        outcomes to record, or renders being saved. Held tasks (no key for them) are not."""
        return (
            bool(self.scheduler.tracked())
            or self.poller.in_flight
            or any(self._submitting.values())
            or bool(self.outcomes.unsaved())
            or any(worker.busy() for worker in self._background)
        )

    async def run(self, *, until_idle: bool = False, max_wait: float = RESYNC_EVERY) -> None:
        """The poll loop. With `until_idle`, returns once nothing it can do is left."""
        self.start()
        try:
            while True:
                self._wake.clear()
                self._urgent.clear()
                turn_cpu = self._turn_cost()
                blocked = self.ledger.writes.blocked_for()
                if blocked > 0:
                    await self._nap(min(blocked, max_wait))  # a full disk: wait for space
                    continue
                try:
                    if self.outcomes.unsaved():
                        self.outcomes.flush()
                    if self.monotonic() - self._last_resync >= RESYNC_EVERY:
                        self.resync()
                    for worker in self._background:
                        worker.kick()
                    for task_id in self.scheduler.due_polls():
                        self.poller.spawn(task_id)
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
                rest = min((self._turn_cost() - turn_cpu) / TURN_SHARE, MAX_TURN_GAP)
                await self._nap(delay, rest=rest)
        finally:
            await self.poller.stop()
            self.ledger.close()

    async def _nap(self, delay: float, *, rest: float = 0.0) -> None:
        """Sleep `delay` (on the engine's clock) or until woken, whichever comes first;
        but rest `rest` seconds first, which only an urgent wake (`poll_now`) ends: what
        falls due meanwhile is handed out together at the next turn, at most `rest` late."""
        if rest >= MIN_REST:
            await self._wait_for(self._urgent, rest)
            delay -= rest
        elif self._wake.is_set():
            return  # woken while the turn ran: look again at once
        if delay > 0 and not self._wake.is_set():
            await self._wait_for(self._wake, delay)
        # Polls that end together (a probe's failure releases the requests waiting for
        # it) wake the loop once, not once each: let them all land first.
        for _ in range(COALESCE_STEPS):
            await asyncio.sleep(0)

    async def _wait_for(self, event: asyncio.Event, delay: float) -> None:
        """Until `event` is set or `delay` has passed on the engine's clock."""
        if event.is_set():
            return
        woken = asyncio.ensure_future(event.wait())
        slept = asyncio.ensure_future(self._sleep(delay))
        try:
            await asyncio.wait({woken, slept}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in (woken, slept):
                waiter.cancel()
            await asyncio.gather(woken, slept, return_exceptions=True)

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
    "AUTH_PAUSE",
    "CLAIM_RETRY",
    "MIN_POLL_SPACING",
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
