"""Which key polls a task — the one it was submitted with — and which tasks wait for
want of it.

A task waits (is "held": out of the schedule, with its reason shown once) when no key
for its provider is set, when the key in use is not the one it was submitted with, or
when the provider refused its key (401/403; the key is tried again after `AUTH_PAUSE`).
Waiting is said, never looped on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from .bus import Bus
from .config import MissingKeyError, Settings
from .hosts import HOSTS
from .ledger import Ledger
from .models import BudgetKey, Provider, Task
from .providers import AuthError
from .scheduler import Scheduler
from .store import Store

# A key the provider refused (401/403) is tried again after this long (the dashboard;
# `watch` ends instead, saying why).
AUTH_PAUSE = 300.0


def budget_key(provider: Provider, key_fingerprint: str | None) -> BudgetKey:
    return BudgetKey(provider, key_fingerprint)


class KeyGate:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        scheduler: Scheduler,
        ledger: Ledger,
        bus: Bus,
        *,
        monotonic: Callable[[], float],
    ) -> None:
        self.settings = settings
        self.store = store
        self.scheduler = scheduler
        self.ledger = ledger
        self.bus = bus
        self.monotonic = monotonic
        self._held: dict[str, str] = {}  # task → why it is not polled
        self._refused: dict[BudgetKey, tuple[float, str]] = {}  # key → (until, why)

    def secret_for(self, task: Task) -> tuple[str | None, str | None]:
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
        if not secret:
            return None, str(MissingKeyError(provider, HOSTS[provider].env_key))
        if task.key_fingerprint and task.key_fingerprint != self.settings.key_fingerprint(provider):
            return None, (
                f"needs the key it was submitted with (key {task.key_fingerprint[:6]}…; "
                f"the {provider.value} key in use now is another): set that key to check it"
            )
        return secret, None

    def hold(self, task: Task, reason: str) -> None:
        """This task cannot be polled now: say so once, keep it out of the schedule."""
        self.scheduler.forget(task.id)
        if self._held.get(task.id) != reason:
            self._held[task.id] = reason
            self.bus.say(f"held:{reason}", "warning", f"{task.provider.value}: {reason}")

    def release(self, task_id: str) -> None:
        """The task can be polled (again)."""
        self._held.pop(task_id, None)

    def keep_only(self, pending: Iterable[str]) -> None:
        """Forget held tasks that are no longer pending."""
        keep = set(pending)
        for task_id in [i for i in self._held if i not in keep]:
            del self._held[task_id]

    def waiting_reason(self, task_id: str) -> str | None:
        """Why a pending task is not being checked (None: it is)."""
        return self._held.get(task_id)

    def held(self) -> dict[str, str]:
        """Pending tasks this engine cannot check, and why."""
        return dict(self._held)

    def trouble(self, key: BudgetKey) -> str | None:
        """Why this key's requests wait now, in a few words (None: they don't)."""
        refused = self._refused.get(key)
        if refused is not None and self.monotonic() < refused[0]:
            return "the key was refused: " + refused[1]
        if self.ledger.writes.troubled:
            return "the history's disk is full: waiting for space"
        return self.ledger.trouble(key)

    def refuse(self, key: BudgetKey, exc: AuthError) -> None:
        """The provider refused this key: its tasks wait (and say why) for `AUTH_PAUSE`."""
        why = f"{exc} — {exc.hint}"
        self._refused[key] = (self.monotonic() + AUTH_PAUSE, why)
        self.bus.say(f"refused:{key}", "error", why)
        for task in self.store.pending():
            if budget_key(task.provider, task.key_fingerprint) == key and task.task_id:
                self.hold(task, f"the provider refused its key: {why}")


__all__ = ["AUTH_PAUSE", "KeyGate", "budget_key"]
