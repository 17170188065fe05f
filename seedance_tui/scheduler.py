"""When to poll what: per-task next poll, per-key request budget, backoff.

Pure logic over an injected clock: no sleeps, no I/O, no imports of the client or
the store. The engine feeds it facts (requests made, answers seen, 429s) and asks it
what to do next.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

HOUR = 3600.0


@dataclass(frozen=True, slots=True)
class PollTarget:
    """A pending task as the scheduler sees it."""

    task_id: str  # ours
    budget_key: str  # "provider:key-fingerprint": one request budget per API key
    profile: tuple  # (provider, resolution, duration, audio): what its render time depends on
    submitted_at: float
    last_polled_at: float | None = None


@dataclass(frozen=True, slots=True)
class BudgetState:
    limit: int | None  # requests per hour; None: no limit known
    used: int  # requests in the last hour
    remaining: int | None
    paused_until: float | None  # a 429 stopped this key until then
    resets_at: float | None  # when the oldest request in the window leaves it


@dataclass(slots=True)
class _Tracked:
    target: PollTarget
    next_poll_at: float
    failures: int = 0


@dataclass(slots=True)
class _Budget:
    limit: int | None
    window: deque[float] = field(default_factory=deque)
    paused_until: float = 0.0
    waiting_submissions: int = 0


class Scheduler:
    """A plain scheduler: a fixed poll interval within each key's hourly budget."""

    def __init__(
        self,
        clock: Callable[[], float],
        limits: dict[str, int | None] | None = None,
        *,
        poll_interval: float = 10.0,
        rng: random.Random | None = None,
    ) -> None:
        self.clock = clock
        # Per-provider limits; a budget key "provider:fp" takes its provider's limit.
        self.limits = dict(limits or {})
        self.poll_interval = poll_interval
        self.rng = rng or random.Random()
        self._tasks: dict[str, _Tracked] = {}
        self._budgets: dict[str, _Budget] = {}

    # -- the request ledger ------------------------------------------------------------

    def _budget(self, key: str) -> _Budget:
        budget = self._budgets.get(key)
        if budget is None:
            provider = key.split(":", 1)[0]
            budget = self._budgets[key] = _Budget(limit=self.limits.get(provider))
        return budget

    def _trim(self, budget: _Budget, now: float) -> None:
        while budget.window and budget.window[0] <= now - HOUR:
            budget.window.popleft()

    def load_ledger(self, key: str, timestamps: Iterable[float]) -> None:
        """Replace what is known of a key's requests with the persisted ledger's."""
        budget = self._budget(key)
        budget.window = deque(sorted(timestamps))
        self._trim(budget, self.clock())

    def record_request(self, key: str, at: float | None = None) -> None:
        budget = self._budget(key)
        budget.window.append(self.clock() if at is None else at)

    def on_rate_limited(self, key: str, retry_after: float | None) -> None:
        budget = self._budget(key)
        budget.paused_until = max(budget.paused_until, self.clock() + (retry_after or 60.0))

    def budget(self, key: str) -> BudgetState:
        now = self.clock()
        budget = self._budget(key)
        self._trim(budget, now)
        used = len(budget.window)
        return BudgetState(
            limit=budget.limit,
            used=used,
            remaining=None if budget.limit is None else max(0, budget.limit - used),
            paused_until=budget.paused_until if budget.paused_until > now else None,
            resets_at=budget.window[0] + HOUR if budget.window else None,
        )

    def _available(self, key: str, now: float) -> int | None:
        budget = self._budget(key)
        if budget.paused_until > now:
            return 0
        self._trim(budget, now)
        if budget.limit is None:
            return None
        return budget.limit - len(budget.window)

    # -- submissions -------------------------------------------------------------------

    def set_waiting_submissions(self, key: str, count: int) -> None:
        """Submissions queued for this key: polling leaves their share of the budget."""
        self._budget(key).waiting_submissions = count

    def submit_delay(self, key: str) -> float:
        """0 if a submission may be sent now, else seconds until it may."""
        now = self.clock()
        budget = self._budget(key)
        if budget.paused_until > now:
            return budget.paused_until - now
        available = self._available(key, now)
        if available is None or available > 0:
            return 0.0
        return max(0.0, budget.window[0] + HOUR - now)

    # -- polls -------------------------------------------------------------------------

    def track(self, target: PollTarget) -> None:
        now = self.clock()
        start = target.last_polled_at or target.submitted_at
        self._tasks[target.task_id] = _Tracked(target, max(now, start + self.poll_interval))

    def forget(self, task_id: str) -> None:
        self._tasks.pop(task_id, None)

    def tracked(self) -> list[str]:
        return list(self._tasks)

    def learn(self, profile: tuple, generation_time: float) -> None:
        """A task of this profile took this long to render (the plain scheduler ignores it)."""

    def on_poll_result(self, task_id: str, *, pending: bool, error: bool = False) -> None:
        tracked = self._tasks.get(task_id)
        if tracked is None:
            return
        if not pending and not error:
            self.forget(task_id)
            return
        now = self.clock()
        if error:
            tracked.failures += 1
            backoff = min(300.0, self.poll_interval * 2 ** min(tracked.failures, 8))
            tracked.next_poll_at = now + backoff * (0.5 + self.rng.random() / 2)
        else:
            tracked.failures = 0
            tracked.next_poll_at = now + self.poll_interval

    def poll_now(self, task_id: str) -> bool:
        """The user asked to check this task now: True if the budget allows it."""
        tracked = self._tasks.get(task_id)
        if tracked is None:
            return False
        available = self._available(tracked.target.budget_key, self.clock())
        if available is not None and available <= 0:
            return False
        tracked.next_poll_at = self.clock()
        return True

    def due_polls(self) -> list[str]:
        """Task ids to poll now. Each is rescheduled as if polled; report results after."""
        now = self.clock()
        due: list[str] = []
        spent: dict[str, int] = {}
        for task_id, tracked in sorted(self._tasks.items(), key=lambda kv: kv[1].next_poll_at):
            if tracked.next_poll_at > now:
                break
            key = tracked.target.budget_key
            available = self._available(key, now)
            if available is not None:
                reserve = self._budget(key).waiting_submissions
                if available - spent.get(key, 0) - reserve <= 0:
                    continue
            spent[key] = spent.get(key, 0) + 1
            tracked.next_poll_at = now + self.poll_interval
            due.append(task_id)
        return due

    def next_check(self, task_id: str) -> float | None:
        tracked = self._tasks.get(task_id)
        return tracked.next_poll_at if tracked else None

    def next_wakeup(self) -> float | None:
        """When something may next be due (a poll, or the end of a pause)."""
        if not self._tasks:
            return None
        now = self.clock()
        times = []
        for tracked in self._tasks.values():
            at = tracked.next_poll_at
            budget = self._budget(tracked.target.budget_key)
            if budget.paused_until > at:
                at = budget.paused_until
            available = self._available(tracked.target.budget_key, now)
            if available is not None and available <= budget.waiting_submissions and budget.window:
                at = max(at, budget.window[0] + HOUR)
            times.append(at)
        return min(times)
