"""The request ledger: one object owns each request's life.

  claim a budget slot → send → record the outcome → tell the scheduler.

The claim is one transaction in the history file (`Store.claim_request`): it counts the
key's requests over the provider's `rate_window`, honours a 429's pause that any
instance sharing the file persisted, and writes the request's row (with the task it is
for) before a byte leaves. The same object then sends, writes that row's outcome, and
tells the scheduler — so a claim is never finished by another request, never leaked by
an error, and counted under exactly one budget key. Nothing else writes `requests`.

What a failure does to the key (`BudgetKey`: provider + key fingerprint):
  * 429: every request of the key stops until Retry-After — both endpoints, every
    instance (the pause is persisted), the retry loop of a submission included;
  * connection never made: the key backs off exponentially with jitter (capped at
    `backoff_cap`); meanwhile one request at a time probes whether the host is back,
    the others wait for its answer instead of trying too.
A submission is resent only when it certainly did not reach the server (a connection
never made, a 429): see `client/api.py`. It gives up after `patience` seconds of such
failures: `NotSent`, which the engine records as `cancelled` (nothing sent, nothing
charged).

Clocks. Waits and the in-process budget window run on a monotonic clock (`mono`), so a
wall clock set back or forward changes no timer. The ledger's rows carry wall-clock
times (`wall`), shared with other instances: this process remembers the monotonic time
of its own requests, and another's row is believed only within bounds (a time in the
future counts as now).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from .client import Client, Exchange, OutcomeUnknown
from .models import BudgetKey, PreparedJob, Task
from .providers import ApiError, RateLimitError, SubmitAnswer, TransportError
from .scheduler import RATE_LIMIT_DEFAULT, Scheduler
from .store import Store, StoreError, is_transient
from .write_backoff import Notify, WriteBackoff

if TYPE_CHECKING:
    from .models import TaskUpdate

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]

BACKOFF_BASE = 1.0  # seconds before the first retry of an unreachable host
BACKOFF_CAP = 180.0  # the longest wait between two tries of an unreachable host
SUBMIT_PATIENCE = 900.0  # seconds of "certainly not sent" failures before a job is cancelled
WAIT_SLICE = 15.0  # a waiting submission looks again at least this often
# A request reaches the provider's limiter a little after the ledger counts it, and the
# limiter's clock is not ours: a request stays counted this share of the window longer
# (at most MARGIN_CAP seconds), so that a slot is never used the instant it frees.
WINDOW_MARGIN = 0.01
MARGIN_CAP = 30.0


class BudgetWait(Exception):
    """Nothing was sent: the key may not send before `until` (monotonic seconds)."""

    def __init__(self, key: BudgetKey, until: float, reason: str) -> None:
        super().__init__(reason)
        self.key = key
        self.until = until
        self.reason = reason


class NotSent(Exception):
    """A submission never reached the server within the ledger's patience."""


def clock_text(wall: float) -> str:
    """A moment of today as the user's clock shows it: 14:03:21."""
    return time.strftime("%H:%M:%S", time.localtime(wall))


@dataclass(slots=True)
class _KeyState:
    own: dict[int, float] = field(default_factory=dict)  # row → monotonic time (ours)
    failures: int = 0  # consecutive connections never made
    retry_at: float = 0.0  # monotonic: no request before this while unreachable
    probe: asyncio.Future[None] | None = None  # the one request trying an unreachable host
    paused_until: float = 0.0  # monotonic: a 429's pause as this process knows it
    spent_until: float = 0.0  # monotonic: the shared ledger refused a claim (budget spent)
    wait_said: str | None = None  # the last wait announced for this key (no repeats)


class Ledger:
    def __init__(
        self,
        store: Store,
        scheduler: Scheduler,
        client: Client,
        *,
        windows: dict[str, float] | None = None,
        wall: Callable[[], float] = time.time,
        mono: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        notify: Notify | None = None,
        rng: random.Random | None = None,
        backoff_base: float = BACKOFF_BASE,
        backoff_cap: float = BACKOFF_CAP,
        patience: float = SUBMIT_PATIENCE,
        writes: WriteBackoff | None = None,
    ) -> None:
        self.store = store
        self.scheduler = scheduler
        self.client = client
        self.windows = dict(windows or {})
        self.wall = wall
        self.mono = mono
        self.sleep = sleep
        self.notify: Notify = notify or (lambda topic, level, message: None)
        self.rng = rng or random.Random()
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.patience = patience
        self.writes = writes or WriteBackoff(mono, self.notify)
        self._keys: dict[BudgetKey, _KeyState] = {}
        self._claim_locks: dict[BudgetKey, asyncio.Lock] = {}

    # -- clocks ------------------------------------------------------------------------

    def to_mono(self, wall_time: float) -> float:
        """A persisted wall-clock time on the monotonic clock; the future counts as now."""
        return self.mono() - max(0.0, self.wall() - wall_time)

    def to_wall(self, mono_time: float) -> float:
        return self.wall() + (mono_time - self.mono())

    # -- what the ledger holds ---------------------------------------------------------

    def window(self, key: BudgetKey) -> float:
        """Seconds the key's limit counts over (the provider's `rate_window`)."""
        return self.windows.get(key.provider.value, 3600.0)

    def counted_for(self, key: BudgetKey) -> float:
        """How long a request counts against the key: the window and a margin."""
        window = self.window(key)
        return window + min(MARGIN_CAP, window * WINDOW_MARGIN)

    def limit(self, key: BudgetKey) -> int | None:
        return self.scheduler.limits.get(key.provider.value)

    def _state(self, key: BudgetKey) -> _KeyState:
        state = self._keys.get(key)
        if state is None:
            state = self._keys[key] = _KeyState()
        return state

    def load(self, key: BudgetKey) -> None:
        """Tell the scheduler what the shared ledger holds of this key: every instance's
        requests over the window, and a pause a 429 left."""
        if not key.fingerprint:
            return
        state = self._state(key)
        mono_now, wall_now = self.mono(), self.wall()
        window = self.window(key)
        for row in [r for r, at in state.own.items() if at <= mono_now - window]:
            del state.own[row]
        rows = self.store.request_rows(key.provider, key.fingerprint, wall_now - window)
        times = list(state.own.values())
        times += [self.to_mono(at) for row, at in rows if row not in state.own]
        self.scheduler.load_ledger(key, times)
        until = self.store.key_pause(key.provider, key.fingerprint, wall_now)
        if until is not None:
            self._restore_pause(key, until - wall_now)

    def _pause(self, key: BudgetKey, seconds: float) -> None:
        """A 429 this instance drew: the scheduler stops the key and spaces what follows."""
        state = self._state(key)
        state.paused_until = max(state.paused_until, self.mono() + seconds)
        self.scheduler.on_rate_limited(key, seconds)

    def _restore_pause(self, key: BudgetKey, seconds: float) -> None:
        """A 429 pause found in the history (another instance's, or an earlier run's):
        the same stop, told as often as it is read without compounding."""
        state = self._state(key)
        state.paused_until = max(state.paused_until, self.mono() + seconds)
        self.scheduler.restore_pause(key, self.mono() + seconds)

    def trouble(self, key: BudgetKey) -> str | None:
        """Why this key's requests wait now, in a few words (None: they don't)."""
        state = self._keys.get(key)
        if state is None:
            return None
        now = self.mono()
        if state.failures and state.retry_at > now:
            return (
                f"cannot reach {self.client.host(key.provider)}, retrying in "
                f"{state.retry_at - now:.0f} s"
            )
        if state.failures:
            return f"cannot reach {self.client.host(key.provider)}, trying again"
        if state.paused_until > now:
            return (
                f"paused by the server (429) until {clock_text(self.to_wall(state.paused_until))}"
            )
        if state.spent_until > now:
            return f"rate budget spent until {clock_text(self.to_wall(state.spent_until))}"
        return None

    # -- one request's life ------------------------------------------------------------

    def claim(self, key: BudgetKey, endpoint: str, task_id: str | None) -> int:
        """Count a request before it is sent (its row), or raise BudgetWait."""
        wall_now = self.wall()
        claim = self.store.claim_request(
            provider=key.provider,
            key_fingerprint=key.fingerprint or "-",
            endpoint=endpoint,
            now=wall_now,
            limit=self.limit(key),
            window=self.counted_for(key),
            task=task_id,
        )
        if claim.row is None:
            retry_at = claim.retry_at if claim.retry_at is not None else wall_now + 1.0
            wait = max(retry_at - wall_now, 0.5)
            self.load(key)  # what the other instances spent
            # The scheduler holds the key until then either way, so that a poll refused
            # here is not handed out again at once.
            if claim.paused:
                self._restore_pause(key, wait)
            else:
                state = self._state(key)
                state.spent_until = max(state.spent_until, self.mono() + wait)
                self.scheduler.hold(key, self.mono() + wait)
            reason = "paused by the server (429)" if claim.paused else "rate budget spent"
            raise BudgetWait(key, self.mono() + wait, reason)
        self._state(key).own[claim.row] = self.mono()
        return claim.row

    async def _await_probe(self, key: BudgetKey) -> None:
        """While the host is unreachable, one request at a time tries it; the others wait
        for its outcome, and do not send while the backoff lasts."""
        state = self._state(key)
        if state.failures and state.probe is not None and not state.probe.done():
            await asyncio.shield(state.probe)
        if state.failures and self.mono() < state.retry_at:
            raise BudgetWait(key, state.retry_at, f"cannot reach {self.client.host(key.provider)}")

    async def _send(
        self,
        key: BudgetKey,
        row: int,
        call: Callable[[Exchange], Awaitable[T]],
    ) -> T:
        """Send a claimed request and record what happened, whatever happens."""
        state = self._state(key)
        claimed_at = state.own.get(row, self.mono())
        probe: asyncio.Future[None] | None = None
        if state.failures:
            probe = state.probe = asyncio.get_running_loop().create_future()
        note = Exchange()
        started = self.mono()
        sent, error = True, None
        try:
            result = await call(note)
        except TransportError as exc:
            sent, error = exc.sent, exc.message[:200]
            if not exc.sent:
                self._unreachable(key, exc)
            raise
        except RateLimitError as exc:
            error = exc.kind
            self._rate_limited(key, exc)
            raise
        except ApiError as exc:
            error = exc.kind if not isinstance(exc, OutcomeUnknown) else exc.message[:200]
            note.http_status = note.http_status or exc.http_status
            sent = note.started  # refused before it left (no key, plain http): not counted
            raise
        except BaseException:
            error = "cancelled"
            sent = note.started
            raise
        finally:
            # A sent request counts from the end of its exchange: the server counted it
            # somewhere between the claim and now, so its slot frees no earlier than the
            # server's does, however long the request took to reach it.
            ended = self.mono()
            self._finish(key, row, note.http_status, sent, ended - started, error)
            if sent:
                if row in state.own:
                    state.own[row] = ended
                self.scheduler.record_request(key, max(claimed_at, ended))
            else:
                state.own.pop(row, None)
            if sent and note.http_status is not None:
                self._reached(key)
            if probe is not None:
                if not probe.done():
                    probe.set_result(None)
                state.probe = None
        return result

    def _finish(
        self,
        key: BudgetKey,
        row: int,
        http_status: int | None,
        sent: bool,
        elapsed: float,
        error: str | None,
    ) -> None:
        try:
            self.store.finish_request(
                row,
                http_status=http_status,
                sent=sent,
                elapsed=elapsed,
                error=error,
                answered_at=self.wall(),
            )
        except StoreError as exc:
            # The row stays "in flight", counted as sent: never fewer requests than made.
            if is_transient(exc):
                self.writes.failed(exc)
            else:
                self.notify("store", "error", f"a request's outcome was not recorded: {exc}")

    def _unreachable(self, key: BudgetKey, exc: TransportError) -> None:
        state = self._state(key)
        state.failures += 1
        ceiling = min(self.backoff_cap, self.backoff_base * 2 ** (state.failures - 1))
        delay = ceiling / 2 + self.rng.uniform(0, ceiling / 2)  # "equal jitter"
        state.retry_at = self.mono() + delay
        self.scheduler.hold(key, state.retry_at)
        host = self.client.host(key.provider)
        self.notify(
            f"reach:{key}",
            "warning",
            f"{key.provider.value}: cannot reach {host} ({exc.message}); retrying in "
            f"{delay:.0f} s (at {clock_text(self.to_wall(state.retry_at))})",
        )

    def _reached(self, key: BudgetKey) -> None:
        state = self._state(key)
        if state.failures:
            state.failures = 0
            state.retry_at = 0.0
            self.notify(
                f"reach:{key}",
                "information",
                f"{key.provider.value}: {self.client.host(key.provider)} answers again",
            )

    def _rate_limited(self, key: BudgetKey, exc: RateLimitError) -> None:
        seconds = RATE_LIMIT_DEFAULT if exc.retry_after is None else max(exc.retry_after, 0.0)
        wall_now = self.wall()
        try:
            self.store.pause_key(key.provider, key.fingerprint or "-", wall_now + seconds, wall_now)
        except StoreError as err:  # this instance pauses anyway; the others learn at their 429
            if is_transient(err):
                self.writes.failed(err)
        self._pause(key, seconds)
        self.notify(
            f"pause:{key}",
            "warning",
            f"{key.provider.value}: the server asked to slow down (429): no request with this "
            f"key until {clock_text(wall_now + seconds)}",
        )

    # -- the two endpoints -------------------------------------------------------------

    async def status(self, task: Task, key: BudgetKey, secret: str) -> TaskUpdate:
        """One status request for a task, with the key it was submitted with. Raises
        BudgetWait when nothing was sent, else what the client raises."""
        assert task.task_id
        await self._await_probe(key)
        row = self.claim(key, "status", task.id)
        provider, task_id = task.provider, task.task_id
        return await self._send(
            key, row, lambda note: self.client.status(provider, task_id, key=secret, note=note)
        )

    async def generate(
        self, task: Task, job: PreparedJob, key: BudgetKey, secret: str
    ) -> SubmitAnswer:
        """Send a submission, again only while it certainly did not reach the server.

        Waits (saying so) for the key's budget, a 429's pause or an unreachable host;
        raises NotSent after `patience` seconds of failures that sent nothing, OutcomeUnknown
        when it may have been accepted, another ApiError when it was refused."""
        failing_since: float | None = None
        while True:
            row = await self._wait_for_slot(key, task.id)
            try:
                return await self._send(
                    key, row, lambda note: self.client.generate(job, key=secret, note=note)
                )
            except (TransportError, RateLimitError) as exc:
                # Certainly not created: the client turns a transport error after sending
                # into OutcomeUnknown, and a 429 comes before any work.
                now = self.mono()
                failing_since = now if failing_since is None else failing_since
                if now - failing_since >= self.patience:
                    raise NotSent(
                        f"{exc.message} — still failing after {now - failing_since:.0f} s"
                    ) from exc

    async def _wait_for_slot(self, key: BudgetKey, task_id: str) -> int:
        """Claim a generate's row once the key's budget, pause and host allow it."""
        lock = self._claim_locks.get(key)
        if lock is None:
            lock = self._claim_locks[key] = asyncio.Lock()
        async with lock:  # submissions of a key claim in the order they came
            state = self._state(key)
            loaded = False
            while True:
                wait_reason, delay = None, 0.0
                if self.writes.troubled and self.writes.blocked_for() > 0:
                    delay = self.writes.blocked_for()
                    wait_reason = "the history can be written"
                else:
                    try:
                        if not loaded:
                            self.load(key)
                            loaded = True
                        delay = self.scheduler.submit_delay(key)
                        if delay <= 0:
                            await self._await_probe(key)
                            row = self.claim(key, "generate", task_id)
                            self.writes.succeeded()
                            state.wait_said = None
                            return row
                        wait_reason = self.trouble(key) or "rate budget"
                    except BudgetWait as wait:
                        delay = max(wait.until - self.mono(), 0.5)
                        wait_reason = self.trouble(key) or wait.reason
                        loaded = False
                    except StoreError as exc:
                        if not is_transient(exc):
                            raise
                        delay = self.writes.failed(exc)
                        wait_reason = "the history can be written"
                self._announce(key, wait_reason, delay)
                await self.sleep(min(delay, WAIT_SLICE))

    def _announce(self, key: BudgetKey, reason: str, delay: float) -> None:
        """Say what a submission waits for and until when — once per kind of wait."""
        state = self._state(key)
        if reason == state.wait_said:
            return
        state.wait_said = reason
        until = clock_text(self.wall() + delay)
        if reason.startswith("rate budget"):
            text = f"waiting for rate budget until {until} (in {delay:.0f} s)"
        else:
            text = f"waiting: {reason} (until about {until})"
        self.notify(f"wait:{key}", "warning", f"{key.provider.value}: submission {text}")

    def close(self) -> None:
        """Release requests waiting for a probe that will not finish (the loop stopped)."""
        for state in self._keys.values():
            if state.probe is not None and not state.probe.done():
                state.probe.set_result(None)
