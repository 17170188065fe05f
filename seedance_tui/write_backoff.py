"""One backoff for every writer of the history: a full disk (or a lock held too long)
refuses a write; the writers wait before trying again, longer while it keeps failing,
and the user hears of it once per step and once when writes succeed again.

The engine, the ledger and the batch queue share one `WriteBackoff`: nothing is sent
that cannot be recorded, and work resumes by itself once the history can be written.
"""

from __future__ import annotations

from collections.abc import Callable

from .store import StoreError, StoreFullError

Notify = Callable[[str, str, str], None]  # (topic, level, message)

STORE_BACKOFF_CAP = 60.0  # the longest wait before trying a full disk again


class WriteBackoff:
    """A full disk under the history: how long to wait before trying to write again,
    growing while writes keep failing, and saying so once per step."""

    def __init__(self, mono: Callable[[], float], notify: Notify) -> None:
        self.mono = mono
        self.notify = notify
        self.failures = 0
        self.retry_at = 0.0

    @property
    def troubled(self) -> bool:
        return self.failures > 0

    def blocked_for(self) -> float:
        """Seconds until the next write may be tried (0: now)."""
        return max(0.0, self.retry_at - self.mono()) if self.failures else 0.0

    def failed(self, exc: StoreError) -> float:
        """A transient write error (a full disk, a lock held too long): wait, say so."""
        self.failures += 1
        delay = min(STORE_BACKOFF_CAP, 2.0 ** (self.failures - 1))
        self.retry_at = self.mono() + delay
        if isinstance(exc, StoreFullError):
            what, fix = "the disk holding the history is full", "free some space"
        else:
            what, fix = f"the history cannot be written ({exc})", "close what holds it"
        self.notify(
            "store",
            "error",
            f"{what}: nothing is sent that cannot be recorded; trying again in {delay:.0f} s "
            f"({fix}: work resumes by itself)",
        )
        return delay

    def succeeded(self) -> None:
        if self.failures:
            self.failures = 0
            self.notify("store", "information", "the history can be written again: resuming")


__all__ = ["STORE_BACKOFF_CAP", "Notify", "WriteBackoff"]
