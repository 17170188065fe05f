"""Submit and poll loops: ties client, store and scheduler together; emits updates.

Knows nothing about Textual. Listeners are plain callables that receive `EngineEvent`s;
the TUI forwards them as messages, the CLI prints them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import providers
from .client import Client, OutcomeUnknown, RequestRecord
from .config import MissingKeyError, Settings
from .models import BudgetKey, JobSpec, JobValidationError, Provider, Task, TaskStatus
from .providers import ApiError, AuthError, NotFoundError, RateLimitError
from .scheduler import HOUR, PollTarget, Scheduler
from .store import Store, profile_of

if TYPE_CHECKING:
    from .library import AutoDownloader

log = logging.getLogger(__name__)

# Two instances sharing a history file never poll one task more often than this.
MIN_POLL_SPACING = 4.0
# A poll another poller holds (its lease) is tried again no sooner than this.
CLAIM_RETRY = 1.0
# How often the loop re-reads the history for work other instances added or finished.
RESYNC_EVERY = 20.0
NOT_FOUND_LIMIT = 3
AUTH_PAUSE = 300.0


@dataclass(frozen=True, slots=True)
class TaskChanged:
    task: Task
    previous: TaskStatus | None = None


@dataclass(frozen=True, slots=True)
class Notice:
    """Something the user should hear about that is not one task's change."""

    level: str  # "information" | "warning" | "error"
    message: str


EngineEvent = TaskChanged | Notice
Listener = Callable[[EngineEvent], None]


def make_scheduler(settings: Settings, clock: Callable[[], float]) -> Scheduler:
    """The scheduler with the user's `[polling]` settings."""
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


class Engine:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        client: Client | None = None,
        scheduler: Scheduler | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.client = client or Client(
            {p: s.base_url for p, s in settings.providers.items()},
            {p: settings.key(p) for p in settings.providers},
            on_request=self._on_request,
        )
        if self.client.on_request is None:
            self.client.on_request = self._on_request
        self.scheduler = scheduler or make_scheduler(settings, clock)
        self.listeners: list[Listener] = []
        self._wake = asyncio.Event()
        self._submitting: dict[BudgetKey, int] = {}  # budget key → submissions waiting or in flight
        self._not_found: dict[str, int] = {}
        self._send_locks: dict[BudgetKey, asyncio.Lock] = {}
        # Ledger rows written before sending, by (provider, endpoint), oldest first.
        self._claims: dict[tuple[Provider, str], list[tuple[int, float]]] = {}
        self._last_resync = 0.0
        self._started = False
        self._queue_task: asyncio.Task[None] | None = None
        self._queue_stopping = False
        # Saves each render that completes into the library (the `auto_download` setting).
        self.downloads: AutoDownloader | None = None
        if settings.auto_download:
            from .library import AutoDownloader

            self.downloads = AutoDownloader(self)
            self.subscribe(self.downloads.on_event)

    # -- events ------------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> None:
        self.listeners.append(listener)

    def _emit(self, event: EngineEvent) -> None:
        for listener in list(self.listeners):
            try:
                listener(event)
            except Exception:  # a broken listener must not stop the engine
                log.exception("listener failed")

    def emit(self, event: EngineEvent) -> None:
        """Tell every listener (also used by the library and the batch queue)."""
        self._emit(event)

    def _changed(self, task: Task, previous: TaskStatus | None = None) -> None:
        self._emit(TaskChanged(task, previous))

    # -- start-up ----------------------------------------------------------------------

    def start(self) -> None:
        """Recover from the last run: orphan dead intents, learn ETAs, track pending tasks."""
        if self._started:
            return
        self._started = True
        now = self.clock()
        for task in self.store.orphan_stale_intents(now):
            self._changed(task, TaskStatus.SUBMITTING)
        for profile, seconds in self.store.generation_history():
            self.scheduler.learn(profile, seconds)
        self.resync()

    def resync(self) -> None:
        """Track pending tasks (also those another instance submitted); drop finished ones."""
        now = self.clock()
        self._last_resync = now
        pending = {t.id: t for t in self.store.pending() if t.status is TaskStatus.PROCESSING}
        for task_id in self.scheduler.tracked():
            if task_id not in pending:
                self.scheduler.forget(task_id)
        tracked = set(self.scheduler.tracked())
        keys = {(t.provider, t.key_fingerprint) for t in pending.values()}
        for provider, fingerprint in keys:
            self._load_ledger(provider, fingerprint)
        for task in pending.values():
            if task.id not in tracked:
                self.scheduler.track(self._target(task))
            elif task.last_polled_at:
                self.scheduler.note_external_poll(task.id, task.last_polled_at)

    def _target(self, task: Task) -> PollTarget:
        return PollTarget(
            task_id=task.id,
            budget_key=budget_key(task.provider, task.key_fingerprint),
            profile=profile_of(task.provider.value, task.params),
            submitted_at=task.submitted_at or task.created_at,
            last_polled_at=task.last_polled_at,
        )

    def _load_ledger(self, provider: Provider, fingerprint: str | None) -> None:
        if not fingerprint:
            return
        now = self.clock()
        times = self.store.request_times(provider, fingerprint, now - HOUR)
        self.scheduler.load_ledger(budget_key(provider, fingerprint), times)

    # -- the request ledger ------------------------------------------------------------

    def _on_request(self, record: RequestRecord) -> None:
        """Every HTTP request is written to the ledger and counted against the key's budget."""
        fingerprint = self.settings.key_fingerprint(record.provider) or "-"
        now = self.clock()
        claims = self._claims.get((record.provider, record.endpoint))
        if claims:
            # Counted before it was sent (`_claim`); say how it went.
            row, now = claims.pop(0)
            self.store.finish_request(
                row,
                http_status=record.http_status,
                sent=record.sent,
                elapsed=record.elapsed,
                error=record.error,
            )
        else:
            self.store.record_request(
                provider=record.provider,
                key_fingerprint=fingerprint,
                endpoint=record.endpoint,
                http_status=record.http_status,
                sent=record.sent,
                elapsed=record.elapsed,
                error=record.error,
                now=now,
            )
        if record.sent:
            self.scheduler.record_request(budget_key(record.provider, fingerprint), now)

    def _claim(self, provider: Provider, endpoint: str) -> bool:
        """Count a request in the shared ledger before sending it; False when the key's
        hourly limit is spent, by this instance or another sharing the history file.

        The scheduler decides from what it last read of the ledger; this check is atomic
        in the file, so two instances never both send the last request of the hour (the
        two-instance test saw them overrun the limit when each only recorded answers).
        """
        fingerprint = self.settings.key_fingerprint(provider)
        limit = self.scheduler.budget(budget_key(provider, fingerprint)).limit
        now = self.clock()
        row = self.store.claim_request(
            provider=provider,
            key_fingerprint=fingerprint or "-",
            endpoint=endpoint,
            now=now,
            limit=limit,
        )
        if row is None:
            self._load_ledger(provider, fingerprint)  # learn what the others spent
            return False
        self._claims.setdefault((provider, endpoint), []).append((row, now))
        return True

    # -- submit ------------------------------------------------------------------------

    def validate(self, spec: JobSpec) -> JobSpec:
        return providers.get(spec.provider).validate(spec)

    async def submit(self, spec: JobSpec, *, intent: Task | None = None) -> Task:
        """Validate, record the intent durably, send, record the answer durably.

        Raises JobValidationError or MissingKeyError before anything is written or sent.
        Returns the task (processing, rejected or orphaned); never raises for a refusal.
        `intent`: a queued task already claimed as this submission's intent row.
        """
        adapter = providers.get(spec.provider)
        spec = adapter.validate(spec)
        quote = adapter.quote(spec)
        key = self.settings.key(spec.provider)
        if not key:
            raise MissingKeyError(spec.provider, adapter.env_key)
        fingerprint = self.settings.key_fingerprint(spec.provider)
        bkey = budget_key(spec.provider, fingerprint)
        task = intent or self.store.create_intent(
            spec, estimate=quote.credits, key_fingerprint=fingerprint, now=self.clock()
        )
        self._changed(task, TaskStatus.QUEUED if intent else None)
        self._submitting[bkey] = self._submitting.get(bkey, 0) + 1
        self.scheduler.set_waiting_submissions(bkey, self._submitting[bkey])
        try:
            # One generate at a time per rate-limited key: the budget gate counts only
            # requests already answered, so concurrent submissions would all pass it at
            # once and overrun the limit (the fault soak's over-limit 429s).
            async with self._send_lock(bkey):
                answer = await self.client.generate(
                    spec, gate=lambda: self._wait_for_budget(spec.provider, fingerprint)
                )
        except OutcomeUnknown as exc:
            task = self.store.record_refusal(
                task.id,
                TaskStatus.ORPHANED,
                f"{exc.message}. The provider may have accepted and charged it; neither API can "
                "list tasks, so check the provider's dashboard before re-running.",
                self.clock(),
            )
            self._changed(task, TaskStatus.SUBMITTING)
            return task
        except ApiError as exc:
            if isinstance(exc, RateLimitError):
                self.scheduler.on_rate_limited(bkey, exc.retry_after)
            message = str(exc) + (f" — {exc.hint}" if exc.hint else "")
            task = self.store.record_refusal(task.id, TaskStatus.REJECTED, message, self.clock())
            self._changed(task, TaskStatus.SUBMITTING)
            return task
        except BaseException:
            # Cancelled or crashed mid-send: the outcome is unknown; say so durably.
            with contextlib.suppress(Exception):
                task = self.store.record_refusal(
                    task.id,
                    TaskStatus.ORPHANED,
                    "interrupted while submitting: the provider may have accepted it",
                    self.clock(),
                )
                self._changed(task, TaskStatus.SUBMITTING)
            raise
        finally:
            self._submitting[bkey] -= 1
            self.scheduler.set_waiting_submissions(bkey, self._submitting[bkey])
        task = self.store.record_submitted(task.id, answer.task_id, answer.update, self.clock())
        self._changed(task, TaskStatus.SUBMITTING)
        if task.status is TaskStatus.PROCESSING:
            self.scheduler.track(self._target(task))
        self._wake.set()
        return task

    def _send_lock(self, bkey: BudgetKey) -> contextlib.AbstractAsyncContextManager[object]:
        if self.scheduler.budget(bkey).limit is None:
            return contextlib.nullcontext()
        lock = self._send_locks.get(bkey)
        if lock is None:
            lock = self._send_locks[bkey] = asyncio.Lock()
        return lock

    async def _wait_for_budget(self, provider: Provider, fingerprint: str | None) -> None:
        """Block a submission until the key's budget (and any 429 pause) allows it."""
        bkey = budget_key(provider, fingerprint)
        while True:
            self._load_ledger(provider, fingerprint)
            delay = self.scheduler.submit_delay(bkey)
            if delay <= 0:
                if self._claim(provider, "generate"):
                    return
                delay = 1.0  # another instance took the last request of the hour
            self._emit(Notice("warning", f"{provider.value}: waiting {delay:.0f}s for rate budget"))
            await asyncio.sleep(min(delay, 5.0))

    # -- polling -----------------------------------------------------------------------

    async def poll(self, id: str) -> Task:
        """Send one status request for a task and apply the answer."""
        task = self.store.get(id)
        if task.status is not TaskStatus.PROCESSING or not task.task_id:
            return task
        bkey = budget_key(task.provider, task.key_fingerprint)
        if not self._claim(task.provider, "status"):
            self.scheduler.poll_skipped(id)  # the hour's budget is spent: try again later
            return task
        try:
            update = await self.client.status(task.provider, task.task_id)
        except RateLimitError as exc:
            self.scheduler.on_rate_limited(bkey, exc.retry_after)
            self.scheduler.poll_skipped(id)  # the answer told nothing about the task
            return task
        except AuthError as exc:
            self.scheduler.on_rate_limited(bkey, AUTH_PAUSE)
            self._emit(Notice("error", f"{exc} — {exc.hint}"))
            self.scheduler.on_poll_result(id, pending=True, error=True)
            return task
        except NotFoundError as exc:
            count = self._not_found[id] = self._not_found.get(id, 0) + 1
            if count < NOT_FOUND_LIMIT:
                self.scheduler.on_poll_result(id, pending=True, error=True)
                return task
            return self._finish_lost(task, str(exc))
        except ApiError as exc:
            self.store.add_event(id, "error", str(exc), self.clock())
            self.scheduler.on_poll_result(id, pending=True, error=True)
            return task
        self._not_found.pop(id, None)
        previous = task.status
        task, changed = self.store.apply_update(id, update, self.clock())
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

    def _finish_lost(self, task: Task, reason: str) -> Task:
        from .models import TaskUpdate

        update = TaskUpdate(
            task_id=task.task_id or "",
            status=TaskStatus.FAILED,
            error=f"the provider no longer knows this task ({reason})",
            summary="not found",
        )
        self.scheduler.forget(task.id)
        updated, _ = self.store.apply_update(task.id, update, self.clock())
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
        """Work is left: tasks to poll, submissions in flight, or renders being saved."""
        return (
            bool(self.scheduler.tracked())
            or any(self._submitting.values())
            or (self.downloads is not None and self.downloads.active)
            or self._queue_busy()
        )

    async def run(self, *, until_idle: bool = False, max_wait: float = RESYNC_EVERY) -> None:
        """The poll loop. With `until_idle`, returns once no task is pending."""
        self.start()
        while True:
            now = self.clock()
            if now - self._last_resync >= RESYNC_EVERY:
                self.resync()
            self._kick_queue()
            due = self.scheduler.due_polls()
            if due:
                await asyncio.gather(*(self._poll_claimed(i) for i in due))
                continue
            if until_idle and not self.has_pending():
                self.resync()
                if not self.has_pending():
                    return
            wakeup = self.scheduler.next_wakeup()
            delay = max_wait if wakeup is None else min(max(wakeup - self.clock(), 0.05), max_wait)
            self._wake.clear()
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
            # cancellation that lands as the wait ends, and the loop would never stop.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()

    async def _poll_claimed(self, id: str) -> None:
        """Poll a due task unless another instance is polling it or polled it a moment ago."""
        now = self.clock()
        if not self.store.claim_poll(id, now, MIN_POLL_SPACING):
            task = self.store.get(id)
            if task.status.is_terminal:
                self.scheduler.forget(id)
                self._changed(task)
            else:
                # Not before the claim can succeed: without this the loop would hand the
                # same poll out again at once, and spin until the other poll ends.
                last = task.last_polled_at or now
                retry_at = max(now + CLAIM_RETRY, last + MIN_POLL_SPACING)
                self.scheduler.poll_skipped(id, retry_at=retry_at)
                if task.last_polled_at:
                    self.scheduler.note_external_poll(id, task.last_polled_at)
            return
        try:
            await self.poll(id)
        except Exception as exc:  # one task's trouble never stops the loop
            log.exception("poll of %s failed", id)
            self._emit(Notice("error", f"polling {id[-8:]} failed: {type(exc).__name__}"))
            self.scheduler.on_poll_result(id, pending=True, error=True)
        finally:
            # An applied answer released the lease already; an error or a 429 did not.
            with contextlib.suppress(Exception):
                self.store.release_poll(id, self.clock())

    # -- the batch queue ---------------------------------------------------------------
    #
    # Queued tasks (status `queued`, see `batch.py`) are submitted one at a time, oldest
    # first, each only once the key's rate budget allows it. The queue lives in the
    # history, so it survives a restart; its pause flag is persisted there too.

    def queue_paused(self) -> bool:
        return self.store.get_state("queue_paused") == "1"

    def pause_queue(self) -> None:
        """Stop submitting queued jobs (a submission in flight finishes); persisted."""
        self.store.set_state("queue_paused", "1")
        self._emit(Notice("information", "queue paused"))

    def resume_queue(self) -> None:
        self.store.set_state("queue_paused", "0")
        self._emit(Notice("information", "queue resumed"))
        self._wake.set()

    def queue_counts(self) -> dict[str, int]:
        """Queued jobs per provider."""
        return self.store.count_queued()

    def _keyed_providers(self) -> list[str]:
        return [p.value for p in self.settings.providers if self.settings.key(p)]

    def _queue_busy(self) -> bool:
        if self._queue_task is not None and not self._queue_task.done():
            return True
        if self._queue_stopping or self.queue_paused():
            return False
        return self.store.next_queued(self._keyed_providers()) is not None

    def _kick_queue(self) -> None:
        """Start the queue's submitter when there is queued work it may send."""
        if self._queue_task is not None and not self._queue_task.done():
            return
        if self._queue_busy():
            self._queue_task = asyncio.get_running_loop().create_task(self._drain_queue())

    async def _drain_queue(self) -> None:
        try:
            while not self._queue_stopping and not self.queue_paused():
                task = self.store.next_queued(self._keyed_providers())
                if task is None:
                    return
                fingerprint = self.settings.key_fingerprint(task.provider)
                bkey = budget_key(task.provider, fingerprint)
                # Wait for the budget before claiming: a stop while waiting leaves it queued.
                self._load_ledger(task.provider, fingerprint)
                delay = self.scheduler.submit_delay(bkey)
                if delay > 0:
                    self.scheduler.set_waiting_submissions(bkey, self._submitting.get(bkey, 0) + 1)
                    try:
                        await asyncio.sleep(min(delay, 5.0))
                    finally:
                        self.scheduler.set_waiting_submissions(bkey, self._submitting.get(bkey, 0))
                    continue
                claimed = self.store.claim_queued(task.id, self.clock())
                if claimed is None:
                    continue  # another instance sharing the history took it
                try:
                    await self.submit(claimed.spec, intent=claimed)
                except JobValidationError as exc:
                    refused = self.store.record_refusal(
                        claimed.id, TaskStatus.REJECTED, f"{exc.field}: {exc.message}", self.clock()
                    )
                    self._changed(refused, TaskStatus.SUBMITTING)
                await asyncio.sleep(0)  # let a stop or pause requested meanwhile take effect
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the queue's trouble never stops the poll loop
            log.exception("queue submitter failed")
            self._emit(Notice("error", f"the queue stopped: {type(exc).__name__}"))
        finally:
            self._wake.set()

    async def stop_queue(self) -> None:
        """Submit no further queued job; wait for the one being sent (quit gracefully)."""
        self._queue_stopping = True
        if self._queue_task is not None:
            await asyncio.gather(self._queue_task, return_exceptions=True)

    async def aclose(self) -> None:
        self._queue_stopping = True
        if self._queue_task is not None and not self._queue_task.done():
            self._queue_task.cancel()
            await asyncio.gather(self._queue_task, return_exceptions=True)
        if self.downloads is not None:
            await self.downloads.aclose()
        await self.client.aclose()


__all__ = [
    "Engine",
    "EngineEvent",
    "JobValidationError",
    "MissingKeyError",
    "Notice",
    "TaskChanged",
    "budget_key",
]
