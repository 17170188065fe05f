"""A pending task as the scheduler sees it, and what it remembers of the task's polls."""

from __future__ import annotations

from dataclasses import dataclass

from ..models import BudgetKey

IN_FLIGHT_TTL = 30.0  # a poll handed out but never answered stops counting after this
IN_FLIGHT_HOLD = 300.0  # ...and is handed out again after this (an answer comes well before)


@dataclass(frozen=True, slots=True)
class PollTarget:
    """A pending task as the scheduler sees it."""

    task_id: str  # ours
    budget_key: BudgetKey  # one request budget per API key
    profile: tuple  # (provider, resolution, duration, audio): what its render time depends on
    submitted_at: float
    last_polled_at: float | None = None


@dataclass(slots=True)
class Tracked:
    """A tracked task's polls so far, as its next poll is scheduled from them."""

    target: PollTarget
    last_e: float | None  # seconds after submission of the latest poll (ours or another's)
    prev_e: float | None = None  # last_e before the poll in flight (restored on error)
    not_before: float = 0.0  # error backoff: no poll before this
    failures: int = 0
    forced: bool = False  # the user asked for a check now
    in_flight_at: float | None = None  # handed out by due_polls, no answer yet
    deferred: bool = False  # checked rarely while the budget is short (see `pacing`)
    # Its profile's renders taken as this much faster than believed: a probe of a
    # belief that first checks keep finding finished (see `RenderTimes.probe`).
    scale: float = 1.0

    def hand_out(self, now: float) -> None:
        """A poll of it goes now: the schedule continues from this poll."""
        self.prev_e = self.last_e
        self.last_e = now - self.target.submitted_at
        self.forced = False
        self.in_flight_at = now

    def seen_pending(self, e: float | None) -> None:
        """A poll `e` seconds after submission (None: none) found it pending: the
        schedule continues from the latest poll known."""
        if e is not None and (self.last_e is None or e > self.last_e):
            self.last_e = e

    def take_back(self) -> None:
        """The poll handed out told nothing: the schedule resumes from the one before."""
        self.last_e = self.prev_e
        self.prev_e = None
