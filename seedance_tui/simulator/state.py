"""Everything the simulator remembers: tasks, credits, request windows, fault counters.

Renders have no background work: a task's outcome is fixed when it is created
(`will_fail`, `gen_time`) and it is *settled* lazily, the first time anything looks at
the simulator after `created_at + gen_time / time_scale`. A failed task is refunded then.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import random
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from .config import FAULT_KINDS, SimConfig
from .pricing import NANOPHOTO, PROVIDERS

FAILURE_MESSAGES = {
    NANOPHOTO: "Video generation failed",
    "seedance15pro": "Provider error: video generation failed",
}


def key_hash(key: str) -> str:
    """What the simulator stores instead of a key: its SHA-256."""
    return hashlib.sha256(key.encode()).hexdigest()


def fingerprint(key_digest: str) -> str:
    """A short label of a key for introspection (never the key itself)."""
    return key_digest[:12]


def iso_seconds(ts: float) -> str:
    """Epoch seconds as seedance15pro prints them: 2025-06-14T05:21:11Z."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


@dataclass
class SimTask:
    provider: str
    task_id: str
    key_digest: str
    request: dict[str, Any]  # the sanitized request as the provider echoes it
    created_at: float
    gen_time: float  # seconds the render "takes", as reported
    due_at: float  # when it settles, on the simulator's clock
    will_fail: bool
    charged: int
    refunded: int = 0
    status: str = "processing"  # processing | completed | failed
    error: str | None = None
    finished_at: float | None = None
    # When each status request for it was answered (the simulator's clock): how often,
    # and by how many pollers at once, clients ask.
    checks: list[float] = field(default_factory=list)

    @property
    def net(self) -> int:
        return self.charged - self.refunded

    def public(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "task_id": self.task_id,
            "key": fingerprint(self.key_digest),
            "status": self.status,
            "charged": self.charged,
            "refunded": self.refunded,
            "net": self.net,
            "created_at": self.created_at,
            "due_at": self.due_at,
            "finished_at": self.finished_at,
            "will_fail": self.will_fail,
            "gen_time": self.gen_time,
            "error": self.error,
            "request": self.request,
            "checks": list(self.checks),
        }


@dataclass
class KeyCounters:
    requests: int = 0  # requests counted against the rate limit
    rate_limited: int = 0  # requests refused for exceeding it (not injected faults)


@dataclass
class RateWindow:
    """A sliding window of request times for one key."""

    times: deque[float] = field(default_factory=deque)

    def admit(self, now: float, limit: int | None, window: float) -> float | None:
        """Count a request; None if admitted, else seconds until a slot frees."""
        while self.times and self.times[0] <= now - window:
            self.times.popleft()
        if limit is not None and len(self.times) >= limit:
            # The oldest request still in the window is the next to leave it.
            return max(1.0, math.ceil(self.times[-limit] + window - now))
        self.times.append(now)
        return None


class SimState:
    """The simulator's memory, shared by both providers' endpoints."""

    def __init__(self, config: SimConfig | None = None) -> None:
        self.lock = threading.RLock()
        self._initial = (config or SimConfig()).copy()
        self._wake_events: dict[asyncio.AbstractEventLoop, asyncio.Event] = {}
        self.shutting_down = False
        self.reset()

    # ---- lifecycle -------------------------------------------------------------

    def reset(self) -> None:
        """Forget everything; back to the configuration the simulator was created with."""
        with self.lock:
            self.config = self._initial.copy()
            seed = self.config.seed
            if seed is None:
                seed = random.SystemRandom().randrange(2**63)
            self.seed = seed
            # Independent streams, so that faults don't shift task outcomes and vice versa.
            self._rng_ids = random.Random(f"{seed}:ids")
            self._rng_tasks = random.Random(f"{seed}:tasks")
            self._rng_faults = random.Random(f"{seed}:faults")
            self.clock_offset = 0.0
            self.tasks: dict[str, SimTask] = {}
            self._pending: set[str] = set()
            self._next: list[dict[str, Any]] = []
            self._windows: dict[tuple[str, str], RateWindow] = {}
            self._counters: dict[tuple[str, str], KeyCounters] = {}
            self.unauthorized: Counter[str] = Counter()
            self.faults: Counter[str] = Counter()
            self._balances = {key_hash(k): v for k, v in (self.config.balances or {}).items()}

    def reconfigure(self, changes: dict[str, Any]) -> SimConfig:
        """Apply runtime changes (validated; raises ValueError/TypeError)."""
        with self.lock:
            self.config = self.config.updated(changes)
            return self.config

    def now(self) -> float:
        return self.config.clock() + self.clock_offset

    def advance(self, seconds: float) -> None:
        """Move the simulator's clock forward (renders and rate windows alike)."""
        with self.lock:
            self.clock_offset += seconds

    # ---- keys, limits, faults ---------------------------------------------------

    def key_is_valid(self, key: str) -> bool:
        valid = self.config.valid_keys
        if valid is None:
            return bool(key) and not key.startswith("invalid")
        return key in valid

    def admit(self, provider: str, digest: str) -> float | None:
        """Count a request of a valid key; None if within the limit, else Retry-After."""
        limit = (
            self.config.nanophoto_rate_limit
            if provider == NANOPHOTO
            else self.config.seedance_rate_limit
        )
        with self.lock:
            window = self._windows.setdefault((provider, digest), RateWindow())
            counters = self._counters.setdefault((provider, digest), KeyCounters())
            retry_after = window.admit(self.now(), limit, self.config.rate_window)
            if retry_after is None:
                counters.requests += 1
            else:
                counters.rate_limited += 1
            return retry_after

    def draw_fault(self) -> str | None:
        """Decide whether this API answer is replaced by a fault, and which."""
        cfg = self.config
        with self.lock:
            if cfg.fault_rate <= 0 or self._rng_faults.random() >= cfg.fault_rate:
                return None
            kinds = [k for k in FAULT_KINDS if cfg.fault_kinds.get(k, 0) > 0]
            weights = [cfg.fault_kinds[k] for k in kinds]
            kind = self._rng_faults.choices(kinds, weights)[0]
            self.faults[kind] += 1
            return kind

    def draw_variant(self) -> int:
        """A random number choosing how a hostile answer is hostile."""
        with self.lock:
            return self._rng_faults.randrange(1 << 30)

    def draw_media_fault(self) -> bool:
        with self.lock:
            rate = self.config.media_fault_rate
            if rate <= 0 or self._rng_faults.random() >= rate:
                return False
            self.faults["media_reset"] += 1
            return True

    # ---- credits and tasks ------------------------------------------------------

    def balance(self, digest: str) -> int | None:
        """Credits left for a key (None: unlimited)."""
        with self.lock:
            self.settle()
            return self._balances.get(digest)

    def create_task(
        self, provider: str, digest: str, request: dict[str, Any], cost: int
    ) -> SimTask | None:
        """Charge `cost` and create a task; None when the balance cannot cover it."""
        with self.lock:
            self.settle()
            balance = self._balances.get(digest)
            if balance is not None and balance < cost:
                return None
            if balance is not None:
                self._balances[digest] = balance - cost
            override = self._pop_override(provider)
            cfg = self.config
            gen_time = override.get("gen_time")
            if gen_time is None:
                gen_time = self._rng_tasks.uniform(*cfg.generation_time)
            will_fail = override.get("will_fail")
            if will_fail is None:
                will_fail = self._rng_tasks.random() < cfg.failure_rate
            now = self.now()
            task = SimTask(
                provider=provider,
                task_id=self._new_task_id(provider),
                key_digest=digest,
                request=request,
                created_at=now,
                gen_time=float(gen_time),
                due_at=now + float(gen_time) / cfg.time_scale,
                will_fail=bool(will_fail),
                charged=cost,
                error=override.get("error"),
            )
            self.tasks[task.task_id] = task
            self._pending.add(task.task_id)
            return task

    def _new_task_id(self, provider: str) -> str:
        while True:
            if provider == NANOPHOTO:
                task_id = f"task_{self._rng_ids.getrandbits(48):012x}"
            else:
                task_id = f"sd15p_{self._rng_ids.getrandbits(60):015x}"
            if task_id not in self.tasks:
                return task_id

    def _pop_override(self, provider: str) -> dict[str, Any]:
        for i, override in enumerate(self._next):
            if override.get("provider") in (None, provider):
                return self._next.pop(i)
        return {}

    def queue_next(self, override: dict[str, Any]) -> None:
        """Fix the outcome of the next task created (of `provider`, if given)."""
        with self.lock:
            self._next.append(dict(override))

    def find_task(self, provider: str, task_id: str, digest: str) -> SimTask | None:
        """The caller's task, settled; None if unknown, another provider's or another key's."""
        with self.lock:
            self.settle()
            task = self.tasks.get(task_id)
            if task is None or task.provider != provider or task.key_digest != digest:
                return None
            task.checks.append(self.now())
            return task

    def settle(self) -> None:
        """Finish every render whose time has come; refund the failed ones."""
        with self.lock:
            if not self._pending:
                return
            now = self.now()
            for task_id in [t for t in self._pending if self.tasks[t].due_at <= now]:
                self._finish(self.tasks[task_id], fail=self.tasks[task_id].will_fail)

    def _finish(self, task: SimTask, *, fail: bool, error: str | None = None) -> None:
        task.finished_at = max(task.due_at, task.created_at)
        self._pending.discard(task.task_id)
        if fail:
            task.status = "failed"
            task.will_fail = True
            task.error = error or task.error or FAILURE_MESSAGES[task.provider]
            task.refunded = task.charged
            if task.key_digest in self._balances:
                self._balances[task.key_digest] += task.charged
        else:
            task.status = "completed"
            task.will_fail = False
            task.error = None

    def force(self, task_id: str, status: str, error: str | None = None) -> SimTask:
        """Finish a processing task now, as `completed` or `failed` (KeyError, ValueError)."""
        if status not in ("completed", "failed"):
            raise ValueError("status must be 'completed' or 'failed'")
        with self.lock:
            self.settle()
            task = self.tasks[task_id]
            if task.status != "processing":
                raise ValueError(f"task is already {task.status}")
            now = self.now()
            task.gen_time = max(0.0, (now - task.created_at) * self.config.time_scale)
            task.due_at = now
            self._finish(task, fail=status == "failed", error=error)
            return task

    # ---- introspection ----------------------------------------------------------

    def tasks_public(self) -> list[dict[str, Any]]:
        with self.lock:
            self.settle()
            return [t.public() for t in self.tasks.values()]

    def ledger(self) -> dict[str, Any]:
        """Net credits per provider and key, requests and refusals per key, faults per kind."""
        with self.lock:
            self.settle()
            providers = {p: _money() | {"requests": 0, "rate_limited": 0} for p in PROVIDERS}
            keys: dict[str, dict[str, dict[str, Any]]] = {p: {} for p in PROVIDERS}
            for (provider, digest), counters in self._counters.items():
                row = keys[provider].setdefault(fingerprint(digest), _money())
                row["requests"] = counters.requests
                row["rate_limited"] = counters.rate_limited
                providers[provider]["requests"] += counters.requests
                providers[provider]["rate_limited"] += counters.rate_limited
            for task in self.tasks.values():
                row = keys[task.provider].setdefault(fingerprint(task.key_digest), _money())
                for target in (row, providers[task.provider]):
                    target["tasks"] += 1
                    target["charged"] += task.charged
                    target["refunded"] += task.refunded
                    target["net"] += task.net
            for provider in PROVIDERS:
                providers[provider]["unauthorized"] = self.unauthorized[provider]
                for row in keys[provider].values():
                    row.setdefault("requests", 0)
                    row.setdefault("rate_limited", 0)
            balances = {fingerprint(d): b for d, b in self._balances.items()}
            return {
                "providers": providers,
                "keys": keys,
                "balances": balances,
                "faults": {k: self.faults[k] for k in (*FAULT_KINDS, "media_reset")},
                "totals": {
                    "net": sum(p["net"] for p in providers.values()),
                    "requests": sum(p["requests"] for p in providers.values()),
                    "rate_limited": sum(p["rate_limited"] for p in providers.values()),
                    "faults": sum(self.faults.values()),
                },
            }

    # ---- sleeping (slow and timeout faults) -------------------------------------

    async def sleep(self, seconds: float) -> None:
        """Sleep, but wake at once when the server shuts down."""
        if seconds <= 0 or self.shutting_down:
            return
        loop = asyncio.get_running_loop()
        with self.lock:
            for stale in [lp for lp in self._wake_events if lp.is_closed()]:
                del self._wake_events[stale]
            event = self._wake_events.setdefault(loop, asyncio.Event())
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
        # cancellation that lands as the wait ends.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await event.wait()

    def wake_all(self) -> None:
        """Cut every pending sleep short (thread-safe): used when a server stops."""
        with self.lock:
            self.shutting_down = True
            for loop, event in list(self._wake_events.items()):
                if not loop.is_closed():
                    loop.call_soon_threadsafe(event.set)


def _money() -> dict[str, Any]:
    return {"tasks": 0, "charged": 0, "refunded": 0, "net": 0}
