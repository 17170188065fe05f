"""Spending caps: the rule of what counts against a provider's daily and monthly cap.

Pure: no I/O, no store. The store applies the rule inside the transaction that writes
the intent row (`StoreBackend.create_intents`), so that two submissions sharing one
history can never both pass the last credits; the faces show what it decided.

What counts, per provider, in a calendar day or month of the user's local time zone:

- credits charged, net of refunds (completed and failed tasks, and an orphan the user
  settled with `seedance-tui settle ID --charged N|--none`);
- credits held by pending work (`submitting`, `processing`): the charge the server
  reported, else the estimate;
- an orphan (sent, no trustworthy answer) counts at its estimate until it is settled or
  a server reports its charge: it may have been charged;
- a completed task the server never reported a charge for counts at its estimate;
- `queued`, `cancelled` and `rejected` count nothing: nothing was sent, or nothing was
  charged;
- plus the estimate of the job at hand.

A task counts in the day and month in which its money was committed: when its intent
was written (for a batch job, when it left the queue), not when it finished.

A cap of 0 or None is no cap. A job is let through when everything counted plus its own
estimate is at most the cap: reaching the cap exactly is allowed, passing it is not.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from .models import Provider, TaskStatus

DAILY, MONTHLY = "daily", "monthly"
PERIODS = (DAILY, MONTHLY)
# The share of a day's cap past which the credits panel warns.
WARN_SHARE = 0.8
# The command-line flag that lets one job (or one batch, or one pair) past the caps.
OVERRIDE_FLAG = "--over-cap"

PENDING = (TaskStatus.SUBMITTING.value, TaskStatus.PROCESSING.value)
NOTHING_SPENT = (TaskStatus.QUEUED.value, TaskStatus.CANCELLED.value, TaskStatus.REJECTED.value)


@dataclass(frozen=True, slots=True)
class Caps:
    """A provider's caps in credits (None: no cap; 0 in the config means None)."""

    daily: int | None = None
    monthly: int | None = None

    @classmethod
    def of(cls, daily: int | None, monthly: int | None) -> Caps:
        return cls(daily or None, monthly or None)

    def of_period(self, period: str) -> int | None:
        return self.daily if period == DAILY else self.monthly

    def __bool__(self) -> bool:
        return bool(self.daily or self.monthly)


@dataclass(frozen=True, slots=True)
class Window:
    """One cap over one period: the credits allowed between `start` and `end` (epoch
    seconds, the period's local calendar bounds, end excluded)."""

    provider: Provider
    period: str  # DAILY or MONTHLY
    cap: int
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class Usage:
    """What counts against a cap in one period (see the module's docstring)."""

    spent: int = 0  # charged, net of refunds
    held: int = 0  # pending work: reported charge, else the estimate
    at_risk: int = 0  # orphans not settled: their estimate

    @property
    def total(self) -> int:
        return self.spent + self.held + self.at_risk

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.spent + other.spent, self.held + other.held, self.at_risk + other.at_risk)


# -- what counts -----------------------------------------------------------------------


def counted(status: str, charged_net: int, estimated_uncharged: int) -> Usage:
    """What tasks of one status count, given the sum of their net charges (those with a
    reported charge) and the sum of the estimates of those without one."""
    if status in NOTHING_SPENT:
        return Usage()
    if status in PENDING:
        return Usage(held=charged_net + estimated_uncharged)
    if status == TaskStatus.ORPHANED.value:
        return Usage(spent=charged_net, at_risk=estimated_uncharged)
    if status == TaskStatus.FAILED.value:
        return Usage(spent=charged_net)  # refunded: net 0 unless the server kept some
    # completed: a charge never reported was most likely the estimate
    return Usage(spent=charged_net + estimated_uncharged)


def usage_of(rows: Iterable[tuple[str, int | None, int | None]]) -> Usage:
    """The usage of (status, sum of net reported charges, sum of estimates of tasks with
    no reported charge) rows, one or more per status (as the store sums them)."""
    total = Usage()
    for status, charged_net, estimated in rows:
        total = total + counted(status, int(charged_net or 0), int(estimated or 0))
    return total


# -- calendar periods in local time ----------------------------------------------------


def _local_midnight(year: int, month: int, day: int, tz: dt.tzinfo | None) -> float:
    if tz is None:
        # The process's own zone (TZ, else the system's), DST decided by the C library.
        return time.mktime((year, month, day, 0, 0, 0, 0, 0, -1))
    return dt.datetime(year, month, day, tzinfo=tz).timestamp()


def _local_date(now: float, tz: dt.tzinfo | None) -> dt.date:
    if tz is None:
        parts = time.localtime(now)
        return dt.date(parts.tm_year, parts.tm_mon, parts.tm_mday)
    return dt.datetime.fromtimestamp(now, tz=tz).date()


def period_bounds(period: str, now: float, tz: dt.tzinfo | None = None) -> tuple[float, float]:
    """The local calendar day or month holding `now`: (start, end) in epoch seconds,
    end excluded. `tz` None: the user's local time zone (the process's)."""
    today = _local_date(now, tz)
    if period == DAILY:
        tomorrow = today + dt.timedelta(days=1)
        return (
            _local_midnight(today.year, today.month, today.day, tz),
            _local_midnight(tomorrow.year, tomorrow.month, tomorrow.day, tz),
        )
    if period == MONTHLY:
        next_year, next_month = (
            (today.year + 1, 1) if today.month == 12 else (today.year, today.month + 1)
        )
        return (
            _local_midnight(today.year, today.month, 1, tz),
            _local_midnight(next_year, next_month, 1, tz),
        )
    raise ValueError(f"a period is {DAILY} or {MONTHLY}, not {period!r}")


def windows(
    provider: Provider, caps: Caps, now: float, tz: dt.tzinfo | None = None
) -> tuple[Window, ...]:
    """The caps of a provider that apply at `now`, with their periods' bounds."""
    out = []
    for period in PERIODS:
        cap = caps.of_period(period)
        if cap:
            start, end = period_bounds(period, now, tz)
            out.append(Window(provider, period, cap, start, end))
    return tuple(out)


# -- the decision ----------------------------------------------------------------------


class CapExceeded(Exception):
    """A job (or a batch, or a compare pair) would pass a spending cap: nothing was
    written and nothing sent. Carries what the faces show: the cap, what is spent, held
    and at risk in its period, and what this job would cost."""

    def __init__(self, window: Window, usage: Usage, cost: int, *, jobs: int = 1) -> None:
        self.window = window
        self.usage = usage
        self.cost = cost
        self.jobs = jobs
        super().__init__(self.describe())

    @property
    def provider(self) -> Provider:
        return self.window.provider

    @property
    def period(self) -> str:
        return self.window.period

    @property
    def cap(self) -> int:
        return self.window.cap

    @property
    def left(self) -> int:
        return max(0, self.cap - self.usage.total)

    def describe(self) -> str:
        """One paragraph: which cap, what counts, what this would cost, how to override."""
        usage = self.usage
        what = "this job" if self.jobs == 1 else f"these {self.jobs} jobs"
        at_risk = f", {usage.at_risk} at risk in unsettled orphans" if usage.at_risk else ""
        day = "today" if self.period == DAILY else "this month"
        return (
            f"over the {self.period} cap of {self.provider.value}: cap {self.cap} credits; "
            f"{day} {usage.spent} spent, {usage.held} held by pending work{at_risk}; "
            f"{self.left} left, and {what} would cost ~{self.cost}. Nothing was sent. "
            f"Pass {OVERRIDE_FLAG} to let it through once, or raise the cap with "
            f"`seedance-tui config set providers.{self.provider.value}.{self.period}_cap N`"
        )


def check(window: Window, usage: Usage, cost: int, *, jobs: int = 1) -> None:
    """Raise CapExceeded when `usage` plus `cost` passes the window's cap."""
    if usage.total + cost > window.cap:
        raise CapExceeded(window, usage, cost, jobs=jobs)


def check_all(
    windows_: Sequence[Window],
    costs: Mapping[Provider, tuple[int, int]],
    spending: Callable[[Provider, float, float], Usage],
) -> None:
    """CapExceeded when a provider's (cost, jobs) would pass one of its windows' caps,
    given `spending(provider, start, end)`. A look before asking the user to confirm;
    the store checks again, atomically, when it writes the rows."""
    for window in windows_:
        cost, jobs = costs.get(window.provider, (0, 0))
        if jobs:
            check(window, spending(window.provider, window.start, window.end), cost, jobs=jobs)


@dataclass(frozen=True, slots=True)
class CapStatus:
    """One cap as the credits panel and `credits --json` show it."""

    period: str
    cap: int
    usage: Usage

    @property
    def left(self) -> int:
        return max(0, self.cap - self.usage.total)

    @property
    def share(self) -> float:
        """How much of the cap is used, 0..1 (more when over it)."""
        return self.usage.total / self.cap

    @property
    def warning(self) -> bool:
        """Past WARN_SHARE of the cap."""
        return self.usage.total > WARN_SHARE * self.cap

    def to_public(self) -> dict[str, object]:
        return {
            "cap": self.cap,
            "spent": self.usage.spent,
            "held": self.usage.held,
            "at_risk": self.usage.at_risk,
            "left": self.left,
            "used_share": round(self.share, 4),
            "warning": self.warning,
        }


def statuses(
    provider_windows: Sequence[Window], usages: Mapping[str, Usage]
) -> dict[str, CapStatus]:
    """period → CapStatus of the windows, given each period's usage."""
    return {
        w.period: CapStatus(w.period, w.cap, usages.get(w.period, Usage()))
        for w in provider_windows
    }


def report(
    providers: Iterable[Provider],
    cap_windows: Callable[[Iterable[Provider], float], Sequence[Window]],
    spending: Callable[[Provider, float, float], Usage],
    now: float,
) -> dict[str, dict[str, CapStatus]]:
    """provider → period → CapStatus of each cap in force at `now` (a provider without
    caps: {}), given the settings' `cap_windows` and the store's `spending`."""
    out: dict[str, dict[str, CapStatus]] = {}
    for provider in providers:
        provider_windows = cap_windows([provider], now)
        usages = {w.period: spending(provider, w.start, w.end) for w in provider_windows}
        out[provider.value] = statuses(provider_windows, usages)
    return out


def gauge(share: float, width: int = 10) -> str:
    """A text gauge of a share of a cap, e.g. "███████░░░" (full when over)."""
    filled = min(width, max(0, round(share * width)))
    return "█" * filled + "░" * (width - filled)


__all__ = [
    "DAILY",
    "MONTHLY",
    "OVERRIDE_FLAG",
    "PERIODS",
    "WARN_SHARE",
    "CapExceeded",
    "CapStatus",
    "Caps",
    "Usage",
    "Window",
    "check",
    "check_all",
    "counted",
    "gauge",
    "period_bounds",
    "report",
    "statuses",
    "usage_of",
    "windows",
]
