"""The request budget of one key: a sliding window of request times, the share kept for
submissions, the pause after a 429 (or a hold), the spacing that follows it, and the
burst limit.

Each budget key (`BudgetKey`: provider and key fingerprint) has a window (an hour unless
the provider's `rate_window` says otherwise) of request times, loaded from the shared
ledger and extended by every request recorded. Polls handed out and not answered yet
count against it too, for up to `IN_FLIGHT_TTL`: the scheduler passes their times in
(`handed_out`), since it is the tasks that know them.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from .tasks import IN_FLIGHT_TTL

HOUR = 3600.0

DEFAULT_RESERVE_FRACTION = 0.01  # of a key's hourly limit, kept back for new submissions
DEFAULT_SUBMIT_SLACK = 60.0  # ...unless that many leave the window within these seconds
DEFAULT_BURST = 10  # requests of one key in any BURST_SPAN seconds, at most
BURST_SPAN = 1.0
RATE_LIMIT_DEFAULT = 60.0  # pause after a 429 that names no Retry-After
RECOVERY_MIN = 60.0  # after a 429's pause, requests are spaced for at least this long
RECOVERY_SPACING = 2.0  # ...this far apart when the key has no known limit
OWN_KEEP = 60.0  # requests recorded here stay known this long, whatever a ledger load says


@dataclass(frozen=True, slots=True)
class BudgetState:
    limit: int | None  # requests per hour; None: no limit known
    used: int  # requests in the last hour
    remaining: int | None
    paused_until: float | None  # a 429 stopped this key until then
    resets_at: float | None  # when the oldest request in the window leaves it
    reserved: int = 0  # of `remaining`, kept for submissions (waiting ones + a reserve)
    tight: bool = False  # polls go at the fewest that still see each finish in time
    deferred: int = 0  # tasks checked rarely so that the others stay on time
    spaced_until: float | None = None  # after a 429's pause: one request at a time until then
    spacing: float = 0.0  # ...this many seconds apart


@dataclass(slots=True)
class KeyBudget:
    """One key's requests and what they allow.

    `standing` is how many requests polls leave free for new submissions (None: 1% of
    the limit), less those leaving the window within `submit_slack` seconds; `burst`
    caps the requests in any `BURST_SPAN`."""

    limit: int | None
    span: float = HOUR  # seconds the limit counts over (a sliding window)
    standing: int | None = None
    submit_slack: float = DEFAULT_SUBMIT_SLACK
    burst: int = DEFAULT_BURST
    window: list[float] = field(default_factory=list)  # sorted request times
    own: list[float] = field(default_factory=list)  # recorded here since the last ledger load
    paused_until: float = 0.0
    spaced_until: float = 0.0  # after a 429's pause, requests are spaced until then
    strikes: int = 0  # 429s in a row (each before the last one's spacing had ended)
    waiting_submissions: int = 0
    # (submitted_at, profile) of tasks submitted in the last hour: the arrival rate
    recent_jobs: deque[tuple[float, tuple]] = field(default_factory=deque)

    # -- the window --------------------------------------------------------------------

    def trim(self, now: float) -> None:
        # A request made at t counts until t + span (compared that way round so that a
        # wake-up at exactly t + span, as `slot_time` computes it, sees it gone).
        del self.window[: expired(self.window, now, self.span)]
        del self.own[: expired(self.own, now, self.span)]

    def load(self, timestamps: Iterable[float], now: float) -> None:
        """Replace what is known of the requests with the persisted ledger's, keeping
        those recorded here in the last minute that it does not show yet."""
        loaded = sorted(timestamps)
        for at in self.own:
            if at > now - OWN_KEEP and not contains_near(loaded, at):
                bisect.insort(loaded, at)
        self.window = loaded
        self.own = [at for at in self.own if at > now - OWN_KEEP]
        self.trim(now)

    def record(self, at: float) -> None:
        bisect.insort(self.window, at)
        bisect.insort(self.own, at)

    def in_flight(self, handed_out: list[float], now: float) -> list[float]:
        """Of the polls handed out (sorted times), those that still count."""
        return [at for at in handed_out if at > now - IN_FLIGHT_TTL]

    def counted(self, handed_out: list[float], now: float) -> list[float]:
        """Every request counting against the window now, sorted."""
        return sorted(self.window + self.in_flight(handed_out, now))

    # -- pauses ------------------------------------------------------------------------

    def rate_limited(self, now: float, retry_after: float | None) -> None:
        """A 429: no request until Retry-After, then spaced for a while (see
        `Scheduler.on_rate_limited`)."""
        wait = RATE_LIMIT_DEFAULT if retry_after is None else max(0.0, retry_after)
        if now >= self.spaced_until:
            self.strikes = 0
        self.strikes += 1
        self.paused_until = max(self.paused_until, now + wait)
        spell = max(wait, RECOVERY_MIN) * 2 ** min(self.strikes - 1, 10)
        self.spaced_until = max(self.spaced_until, self.paused_until + min(self.span, spell))

    def restore_pause(self, now: float, until: float) -> None:
        if until + RECOVERY_MIN <= now:
            return
        self.paused_until = max(self.paused_until, until)
        self.spaced_until = max(self.spaced_until, until + RECOVERY_MIN)

    def hold(self, until: float) -> None:
        self.paused_until = max(self.paused_until, until)

    def spacing(self) -> float:
        """Seconds between two requests of a key recovering from a 429."""
        if self.limit is None:
            return RECOVERY_SPACING
        return self.span / self.limit

    def spaced_slot(self, now: float, handed_out: list[float]) -> float:
        """While the key recovers from a 429, the earliest its next request may go."""
        if now >= self.spaced_until:
            return now
        latest = max(self.window[-1:] + self.in_flight(handed_out, now), default=-math.inf)
        return max(now, latest + self.spacing())

    # -- what may be spent -------------------------------------------------------------

    def reserved(self, now: float) -> int:
        """Requests polls must leave for submissions: the waiting ones, plus a standing
        reserve less the requests leaving the window within `submit_slack` (a fresh
        submission may wait that long for one of those)."""
        if self.limit is None:
            return 0
        return self.waiting_submissions + max(0, self._standing() - self._leaving_soon(now))

    def _standing(self) -> int:
        """The standing reserve before any request nears its end in the window."""
        if self.limit is None:
            return 0
        standing = self.standing
        if standing is None:
            standing = max(1, round(self.limit * DEFAULT_RESERVE_FRACTION))
        return min(standing, self.limit // 2)

    def _leaving_soon(self, now: float) -> int:
        """Requests leaving the window within `submit_slack` of `now` (each releases one
        request of the standing reserve). A request made at t counts here from
        t + span - submit_slack on: the same sum `slot_time` wakes up at."""
        if self.submit_slack <= 0:
            return 0
        return expired(self.window, now, self.span - self.submit_slack)

    def free(self, now: float, keep: int, handed_out: list[float]) -> float:
        """Requests that may be sent now leaving `keep` unspent (inf: no limit; 0: paused)."""
        if self.paused_until > now:
            return 0.0
        self.trim(now)
        if now < self.spaced_until and (
            self.waiting_submissions > 0 or self.spaced_slot(now, handed_out) > now
        ):
            return 0.0  # one request at a time, and a waiting submission goes first
        recent = self.recent(now, handed_out)
        burst = float(max(0, self.burst - len(recent)))
        if now < self.spaced_until:
            burst = min(burst, 1.0)
        if self.limit is None:
            return burst
        used = len(self.window) + len(self.in_flight(handed_out, now))
        return min(burst, float(max(0, self.limit - keep - used)))

    def recent(self, now: float, handed_out: list[float]) -> list[float]:
        """The requests in the last `BURST_SPAN`, oldest first (see `burst`)."""
        start = bisect.bisect_right(self.window, now - BURST_SPAN)
        late = [at for at in self.in_flight(handed_out, now) if at > now - BURST_SPAN]
        return sorted(self.window[start:] + late)

    def slot_time(
        self, now: float, keep: int, handed_out: list[float], *, standing: int = 0
    ) -> float:
        """Earliest time one request may be sent leaving `keep` unspent (inf: not by expiry).

        `standing` of `keep` is what is left of the standing reserve now (see `reserved`):
        it shrinks by one as each further request comes within `submit_slack` of leaving
        the window, so the request may go at such a moment too, before any slot frees."""
        self.trim(now)
        start = max(now, self.paused_until)
        start = max(start, self.spaced_slot(start, handed_out))
        recent = self.recent(now, handed_out)
        if len(recent) >= self.burst:
            start = max(start, recent[len(recent) - self.burst] + BURST_SPAN)
        if self.limit is None:
            return start
        in_flight = self.in_flight(handed_out, now)
        counted = len(self.window) + len(in_flight)
        # Every request counting now, sorted: worked out only when some must expire
        # first (an hour of a generous budget holds thousands of requests).
        times: list[float] | None = None
        leaving = self._leaving_soon(now) if self.submit_slack > 0 else 0
        best = math.inf
        for released in range(0, max(0, min(standing, keep)) + 1):
            at = start
            if released:
                i = leaving + released - 1
                if i >= len(self.window):
                    break
                # The same sum `_leaving_soon` compares against: no wake-up a hair early.
                at = max(at, self.window[i] + (self.span - self.submit_slack))
            must_expire = counted + keep - released + 1 - self.limit
            if must_expire > counted:
                continue
            if must_expire > 0:
                if times is None:
                    times = sorted(self.window + in_flight)
                at = max(at, times[must_expire - 1] + self.span)
            best = min(best, at)
        return best

    def state(self, now: float, *, tight: bool, deferred: int) -> BudgetState:
        """What is left now, for display; `tight` and `deferred` are the key's plan."""
        self.trim(now)
        used = len(self.window)
        remaining = None if self.limit is None else max(0, self.limit - used)
        spaced = self.spaced_until > now
        return BudgetState(
            limit=self.limit,
            used=used,
            remaining=remaining,
            paused_until=self.paused_until if self.paused_until > now else None,
            resets_at=self.window[0] + self.span if self.window else None,
            reserved=min(remaining, self.reserved(now)) if remaining is not None else 0,
            tight=tight,
            deferred=deferred,
            spaced_until=self.spaced_until if spaced else None,
            spacing=self.spacing() if spaced else 0.0,
        )


def contains_near(sorted_times: list[float], at: float, tolerance: float = 1e-3) -> bool:
    i = bisect.bisect_left(sorted_times, at - tolerance)
    return i < len(sorted_times) and sorted_times[i] <= at + tolerance


def expired(sorted_times: list[float], now: float, span: float) -> int:
    """How many of these request times no longer count in the `span` before `now`."""
    return bisect.bisect_right(sorted_times, now, key=lambda at: at + span)
