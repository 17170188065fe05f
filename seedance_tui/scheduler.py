"""When to poll what: per-task next poll, per-key request budget, backoff.

Pure logic over an injected clock: no sleeps, no I/O, no imports of the client or
the store. The engine feeds it facts (requests made, answers seen, 429s, render times
of finished tasks) and asks it what to do next.

Policy in brief:

* **Budget.** Each budget key (`BudgetKey`: provider and key fingerprint) has a sliding
  window (an hour unless the provider's `rate_window` says otherwise) of request times,
  loaded from the shared ledger and extended by every request recorded. Submissions
  come first: polls never spend the share waiting submissions need, nor a small
  standing reserve, unless as many requests leave the window within `submit_slack`
  (a fresh submission may wait that long for one). No key gets more than `burst`
  requests in one second.
* **When to poll.** Render times are learned per profile (provider, resolution,
  duration, audio) as a bounded window of recent observations blended with a prior from
  the docs ("typically 1-3 minutes", longer for high resolution and long clips). The
  prior's range bounds the likely range until the observations refute an end of it;
  a prior whose scale their median refutes is rescaled at once, and without render
  times from the server, first checks that keep finding tasks finished probe earlier.
  A task is first checked one gap after its earliest likely finish, then every gap
  until its latest likely finish, then ever more rarely while overdue.
* **Pacing.** While the window's count stays well under the limit over the coming
  window, the gap is a quarter of the likely range (capped by the target latency).
  Otherwise it is the target latency itself: the fewest polls that still see every
  finish in time. When some of those would have to wait for a slot in the coming
  minutes (simulated: due polls in order, the budget freeing as old requests age),
  whole tasks are deferred, newest first, as many as leave the fewest finishes
  expected to be seen late, rather than every gap stretched: nearly every finish seen
  in time beats all tasks a little late. Polls due that cannot all be afforded go
  first to the on-time tasks most likely to have finished.
* **Trouble.** A 429 stops the key, both endpoints, until Retry-After; then its
  requests are released one at a time at the limit's average pace for a while. A 5xx
  or transport error backs that one task off exponentially, with jitter.
"""

from __future__ import annotations

import bisect
import contextlib
import heapq
import math
import random
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from .models import BudgetKey

HOUR = 3600.0

# Render-time learning.
SAMPLE_WINDOW = 50  # recent observations kept per profile (tracks drift, bounds memory)
PRIOR_WEIGHT = 5.0  # the prior counts as this many observations...
PRIOR_FADE = 20  # ...fading linearly to nothing once a profile has this many
ANCHOR_TOLERANCE = 6.0  # see `RenderTimes._build`
PRIOR_POINTS = 20  # the prior is a uniform distribution, drawn as this many points
LOW_Q, HIGH_Q = 0.05, 0.95  # the "likely window" of a render: between these quantiles
_P_MAX = 1.0 - 1e-12  # quantiles above this are this one's (the tail never ends)
FIRST_POLL_IMPUTE = 0.25  # see `_learn_finish`
SPEED_RANGE = 10.0  # a profile runs at most this many times faster or slower than the prior

# Polling cadence.
CHECKS_PER_WINDOW = 4.0  # aim for about this many checks across the likely window
DEFAULT_MIN_INTERVAL = 5.0  # never poll one task more often (the docs' own advice)
DEFAULT_TARGET_LATENCY = 30.0  # cap on the in-window gap: how late a finish may be seen
DEFAULT_MAX_INTERVAL = 300.0  # an overdue task is still checked at least this often
DEFAULT_RESERVE_FRACTION = 0.01  # of a key's hourly limit, kept back for new submissions
DEFAULT_SUBMIT_SLACK = 60.0  # ...unless that many leave the window within these seconds
DEFAULT_BURST = 10  # requests of one key in any BURST_SPAN seconds, at most
BURST_SPAN = 1.0

# Pacing under a short budget.
PACING_HORIZON = 600.0  # look this far ahead for a moment the budget runs dry
LOAD_STEPS = 12  # the coming window's load is checked at this many moments
DEFER_STEPS = 12  # see `Scheduler._make_plan`
PLAN_REUSE = 1.0  # seconds a key's plan is reused while nothing changes
EASY_SHARE = 0.6  # easy pace only while the hour's load stays under this share of the limit
DEFERRED_GAPS = 4.0  # a deferred task is checked this many target latencies apart
_EASY, _TIGHT, _DEFERRED = 0, 1, 2  # paces: see `Scheduler._plan`

# Failures.
RATE_LIMIT_DEFAULT = 60.0  # pause after a 429 that names no Retry-After
RECOVERY_MIN = 60.0  # after a 429's pause, requests are spaced for at least this long
RECOVERY_SPACING = 2.0  # ...this far apart when the key has no known limit
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


@dataclass(frozen=True, slots=True)
class RenderEstimate:
    """What is believed about a profile's render time, in seconds after submission.

    A weighted sample: recent observations (weight 1 each) plus, while they are few,
    points of a prior. Quantiles and the CDF interpolate between the points' plotting
    positions, with an exponential tail past the last point. Every figure is finite
    for every finite input: a task far past its likely finish is "overdue", and its
    conditional median lies a little past its age.
    """

    points: tuple[float, ...]  # sorted
    positions: tuple[float, ...]  # cumulative probability at each point (midpoint rule)
    samples: int  # real observations behind it (0: the prior alone)
    # The likely range of a render: see `RenderTimes._build`.
    earliest: float = 0.0
    latest: float = 0.0

    def quantile(self, p: float) -> float:
        xs, cs = self.points, self.positions
        p = min(max(p, 0.0), _P_MAX) if p == p else 0.0  # NaN: the lowest
        if p <= cs[0]:
            return xs[0] * p / cs[0]
        if p >= cs[-1]:
            return xs[-1] + self._tail() * math.log((1.0 - cs[-1]) / (1.0 - p))
        i = bisect.bisect_left(cs, p)
        return _lerp(p, cs[i - 1], cs[i], xs[i - 1], xs[i])

    def cdf(self, x: float) -> float:
        xs, cs = self.points, self.positions
        if not x > xs[0]:  # NaN included
            return cs[0] * max(x, 0.0) / xs[0] if xs[0] > 0 and x == x else 0.0
        if x >= xs[-1]:
            return 1.0 - (1.0 - cs[-1]) * math.exp(-(x - xs[-1]) / self._tail())
        i = bisect.bisect_left(xs, x)
        return _lerp(x, xs[i - 1], xs[i], cs[i - 1], cs[i])

    def survival(self, x: float) -> float:
        """1 - cdf(x), without the rounding of 1 - cdf far in the tail."""
        xs, cs = self.points, self.positions
        if x >= xs[-1]:
            return (1.0 - cs[-1]) * math.exp(-(x - xs[-1]) / self._tail())
        return 1.0 - self.cdf(x)

    @property
    def low(self) -> float:
        return self.quantile(LOW_Q)

    @property
    def median(self) -> float:
        return self.quantile(0.5)

    @property
    def high(self) -> float:
        return self.quantile(HIGH_Q)

    def _tail(self) -> float:
        return max(10.0, (self.points[-1] - self.points[0]) / 4.0)

    def scaled(self, factor: float) -> RenderEstimate:
        """The same belief for renders `factor` times as long."""
        return RenderEstimate(
            tuple(x * factor for x in self.points),
            self.positions,
            self.samples,
            self.earliest * factor,
            self.latest * factor,
        )

    def conditional_median(self, survived: float) -> float:
        """Median render time given the render was still going at `survived` seconds.

        Past the last point the tail is exponential, so the answer is `survived` plus
        the tail's half-life (memoryless), however late: never an infinity from a CDF
        that rounds to 1.0."""
        if not math.isfinite(survived):
            return survived if survived > 0 else self.median
        survived = max(0.0, survived)
        if survived >= self.points[-1]:
            return survived + self._tail() * math.log(2.0)
        f = self.cdf(survived)
        return max(survived, self.quantile(f + (1.0 - f) / 2.0))


def _lerp(x: float, x0: float, x1: float, y0: float, y1: float) -> float:
    if x1 == x0:
        return y1
    return y0 + (y1 - y0) * (x - x0) / (x1 - x0)


def prior_range(profile: tuple) -> tuple[float, float]:
    """Earliest and latest likely render time before anything is learned.

    The docs say 1-3 minutes; scale that for resolution, clip length and audio so that
    a 1080p/12 s clip with audio expects roughly twice as long as 720p/8 s.
    """
    _provider, resolution, duration, audio = (tuple(profile) + (None,) * 4)[:4]
    factor = {"480p": 0.8, "720p": 1.0, "1080p": 1.4}.get(str(resolution), 1.0)
    with contextlib.suppress(TypeError, ValueError):
        factor *= 0.6 + 0.05 * float(duration)  # 8 s: 1.0, 12 s: 1.2, 5 s: 0.85
    if audio:
        factor *= 1.1
    return 60.0 * factor, 180.0 * factor


class RenderTimes:
    """Learned render times per profile, with a prior for profiles not seen yet."""

    def __init__(
        self, window: int = SAMPLE_WINDOW, prior: tuple[float, float] | None = None
    ) -> None:
        self.window = window
        # A fixed prior range (render seconds) overrides the docs' 1-3 minutes, e.g. for
        # a simulator or a provider known to be faster.
        self.prior = prior
        # (seconds, task id, censored: only known to be at most that, see `probe`)
        self._samples: dict[tuple, deque[tuple[float, str | None, bool]]] = {}
        self._by_task: dict[str, tuple] = {}  # task id -> profile it was learned under
        self._cache: dict[tuple, RenderEstimate] = {}
        self.version = 0  # counts changes to what is believed
        # Per profile: the scale new tasks are probed at, and the first checks under it
        # with no render time from the server: (found finished, the belief's odds of it).
        self._faster: dict[tuple, float] = {}
        self._first_checks: dict[tuple, list[tuple[bool, float]]] = {}

    def learn(
        self,
        profile: tuple,
        seconds: float,
        task_id: str | None = None,
        *,
        censored: bool = False,
    ) -> None:
        """Add an observation; a task id already learned has its value replaced.

        `censored`: the value is a guess below an upper bound (a finish found at its
        task's first check), dropped should the prior it was guessed under fall."""
        if not math.isfinite(seconds) or seconds <= 0:
            return
        profile = tuple(profile)
        if task_id is not None and task_id in self._by_task:
            old = self._samples.get(self._by_task[task_id], deque())
            for i, (_value, tid, _censored) in enumerate(old):
                if tid == task_id:
                    del old[i]
                    break
        samples = self._samples.setdefault(profile, deque(maxlen=self.window))
        samples.append((float(seconds), task_id, censored))
        if task_id is not None:
            self._by_task[task_id] = profile
        self._invalidate(profile)

    def note_first_check(
        self, profile: tuple, *, found: bool, seen: float, scale: float = 1.0
    ) -> None:
        """The first check of a task of this profile, `seen` seconds after submission,
        found it finished (`found`) or not, with no render time from the server; `scale`
        is the probe the task was scheduled as (see `probe`)."""
        profile = tuple(profile)
        level = self._faster.get(profile, 1.0)
        if scale != level:
            return  # scheduled under an older probe: says nothing about this one
        chance = self._build(profile, guesses=False).scaled(level).cdf(seen)
        self._first_checks.setdefault(profile, []).append((found, chance))

    def probe(self, profile: tuple) -> float:
        """How a new task of this profile is scheduled: as if renders took this share of
        what is believed (1.0: as believed).

        A finish found at the first check says only that the render took at most that
        long, and a belief that renders are slower than they are never learns otherwise:
        its first checks keep finding them done. So while no finish of the profile has
        been bracketed between two checks, and every first check under the current probe
        found its task finished against the belief's odds (together less than even), the
        probe halves and the guesses made so far are dropped: the next task is first
        checked about twice as early, which either brackets its render (what is learned
        from that bracket rescales the prior, see `_speed`) or halves the probe again.
        """
        profile = tuple(profile)
        samples = self._samples.get(profile, deque())
        if any(not censored for _v, _tid, censored in samples):
            return 1.0
        level = self._faster.get(profile, 1.0)
        checks = self._first_checks.get(profile, [])
        if checks and all(found for found, _c in checks):
            odds = math.prod(chance for _f, chance in checks)
            if odds < 0.5 and level > 1.0 / SPEED_RANGE:
                level = self._faster[profile] = max(1.0 / SPEED_RANGE, level / 2.0)
                checks.clear()
                samples.clear()
                self._invalidate(profile)
        return level

    def count(self, profile: tuple) -> int:
        return len(self._samples.get(tuple(profile), ()))

    def estimate(self, profile: tuple) -> RenderEstimate:
        profile = tuple(profile)
        cached = self._cache.get(profile)
        if cached is None:
            cached = self._cache[profile] = self._build(profile)
        return cached

    def _invalidate(self, profile: tuple) -> None:
        # The provider-wide speed feeds the prior of every profile of that provider.
        self.version += 1
        provider = profile[0] if profile else None
        for key in [k for k in self._cache if (k[0] if k else None) == provider]:
            del self._cache[key]

    def _build(self, profile: tuple, *, guesses: bool = True) -> RenderEstimate:
        values = [
            v for v, _tid, censored in self._samples.get(profile, ()) if guesses or not censored
        ]
        weighted = [(v, 1.0) for v in values]
        prior_weight = PRIOR_WEIGHT * max(0.0, 1.0 - len(values) / PRIOR_FADE)
        lo, hi = self.prior or prior_range(profile)
        speed = self._speed(profile, values, lo, hi)
        lo, hi = lo * speed, hi * speed
        if prior_weight > 0:
            each = prior_weight / PRIOR_POINTS
            for i in range(PRIOR_POINTS):
                weighted.append((lo + (i + 0.5) / PRIOR_POINTS * (hi - lo), each))
        weighted.sort()
        total = sum(w for _, w in weighted)
        points, positions, before = [], [], 0.0
        for value, weight in weighted:
            points.append(value)
            positions.append((before + weight / 2.0) / total)
            before += weight
        # The likely range. Each end is the prior's while the observations agree with
        # it: none beyond it, and the nearest within the distance a sample that size
        # typically leaves to the true end (times ANCHOR_TOLERANCE). Otherwise it is
        # the observed extreme widened by the observations' typical spacing (a sample's
        # minimum overestimates the true one by about that much).
        earliest, latest = lo, hi
        if values:
            n = len(values)
            spacing = (max(values) - min(values)) / (n + 1)
            slack = ANCHOR_TOLERANCE * (hi - lo) / (n + 1)
            if not lo <= min(values) <= lo + slack:
                earliest = min(values) - spacing
            if not hi - slack <= max(values) <= hi:
                latest = max(values) + spacing
        return RenderEstimate(
            tuple(points), tuple(positions), len(values), max(0.0, earliest), latest
        )

    def _speed(self, profile: tuple, values: list[float], lo: float, hi: float) -> float:
        """How much faster or slower than the prior this profile runs (1.0: as the docs).

        Without observations of its own, the provider's other profiles say (see
        `_provider_speed`). With some, the prior stands while their median lies within
        its range; once it does not, the prior is wrong about the scale (a server that
        renders in 20-40 s against the docs' 1-3 minutes): it is rescaled to centre on
        that median at once, so the next task is checked at the right time rather than
        after enough observations have outweighed the prior.
        """
        borrowed = 1.0 if self.prior else self._provider_speed(profile)
        if not values:
            return borrowed
        median = sorted(values)[len(values) // 2]
        if lo * borrowed <= median <= hi * borrowed:
            return borrowed
        return min(SPEED_RANGE, max(1.0 / SPEED_RANGE, median / ((lo + hi) / 2.0)))

    def _provider_speed(self, profile: tuple) -> float:
        """How this provider runs against the priors lately (1.0: as the docs say).

        Lets a profile never seen borrow from its siblings: if every 720p job took twice
        the prior, a first 1080p job probably will too.
        """
        provider = profile[0] if profile else None
        ratios = []
        for other, samples in self._samples.items():
            if other == profile or (other[0] if other else None) != provider:
                continue
            lo, hi = prior_range(other)
            ratios.extend(v / ((lo + hi) / 2.0) for v, _tid, _censored in samples)
        if not ratios:
            return 1.0
        ratios.sort()
        return min(3.0, max(1.0 / 3.0, ratios[len(ratios) // 2]))


@dataclass(slots=True)
class _Tracked:
    target: PollTarget
    last_e: float | None  # seconds after submission of the latest poll (ours or another's)
    prev_e: float | None = None  # last_e before the poll in flight (restored on error)
    not_before: float = 0.0  # error backoff: no poll before this
    failures: int = 0
    forced: bool = False  # the user asked for a check now
    in_flight_at: float | None = None  # handed out by due_polls, no answer yet
    deferred: bool = False  # checked rarely while the budget is short (see `_plan`)
    # Its profile's renders taken as this much faster than believed: a probe of a
    # belief that first checks keep finding finished (see `RenderTimes.probe`).
    scale: float = 1.0


@dataclass(frozen=True, slots=True)
class _Plan:
    """A key's pacing for now: tight or easy, and which tasks are deferred."""

    tight: bool
    deferred: frozenset[str]


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What `Scheduler._simulate` expects of a plan."""

    late: float  # finishes seen later than the target latency
    delayed: float  # seconds polls wait past their due time for a slot, summed


@dataclass(slots=True)
class _Budget:
    limit: int | None
    span: float = HOUR  # seconds the limit counts over (a sliding window)
    window: list[float] = field(default_factory=list)  # sorted request times
    own: list[float] = field(default_factory=list)  # recorded here since the last ledger load
    paused_until: float = 0.0
    spaced_until: float = 0.0  # after a 429's pause, requests are spaced until then
    strikes: int = 0  # 429s in a row (each before the last one's spacing had ended)
    waiting_submissions: int = 0
    # (submitted_at, profile) of tasks submitted in the last hour: the arrival rate
    recent_jobs: deque[tuple[float, tuple]] = field(default_factory=deque)


class Scheduler:
    """Polls each task around its learned ETA, within each key's hourly budget."""

    def __init__(
        self,
        clock: Callable[[], float],
        limits: dict[str, int | None] | None = None,
        *,
        poll_interval: float = DEFAULT_MIN_INTERVAL,
        rng: random.Random | None = None,
        target_latency: float = DEFAULT_TARGET_LATENCY,
        max_interval: float = DEFAULT_MAX_INTERVAL,
        reserve: int | None = None,
        prior: tuple[float, float] | None = None,
        windows: dict[str, float] | None = None,
        submit_slack: float = DEFAULT_SUBMIT_SLACK,
        burst: int = DEFAULT_BURST,
    ) -> None:
        """`poll_interval` is the shortest spacing between two polls of one task;
        `target_latency` caps the gap between polls while a finish is likely;
        `max_interval` caps it when overdue; `reserve` is how many requests of each
        limited key polls leave free for new submissions (default: 1% of the limit),
        less those leaving the window within `submit_slack` seconds (a fresh submission
        may wait that long); `prior` replaces the docs' render-time range before
        anything is learned; `windows` gives, per provider name, the seconds its limit
        counts over (default: an hour); `burst` caps the requests of one key in any
        second, whatever its budget (a server is not sent 200 polls at once)."""
        self.clock = clock
        # Per-provider limits (by provider name) and the seconds each counts over (an
        # hour unless said otherwise); a budget key takes its provider's.
        self.limits = dict(limits or {})
        self.windows = {name: float(w) for name, w in (windows or {}).items() if w and w > 0}
        self.submit_slack = max(0.0, submit_slack)
        self.burst = max(1, burst)
        self.poll_interval = poll_interval
        self.target_latency = max(target_latency, poll_interval)
        self.max_interval = max(max_interval, self.target_latency)
        self.reserve = reserve
        self.rng = rng or random.Random()
        self.render_times = RenderTimes(prior=prior)
        self._tasks: dict[str, _Tracked] = {}
        self._budgets: dict[BudgetKey, _Budget] = {}
        self._lifetime_cache: dict[tuple, tuple[RenderEstimate, float]] = {}
        self._scaled: dict[tuple, tuple[RenderEstimate, RenderEstimate]] = {}
        # Plans per key (see `_plan`), and a count of changes that invalidate them.
        self._plans: dict[BudgetKey, tuple[tuple[int, int], float, _Plan]] = {}
        self._version = 0

    # -- the request ledger ------------------------------------------------------------

    def _budget(self, key: BudgetKey) -> _Budget:
        budget = self._budgets.get(key)
        if budget is None:
            name = key.provider.value
            budget = self._budgets[key] = _Budget(
                limit=self.limits.get(name), span=self.windows.get(name, HOUR)
            )
        return budget

    def _trim(self, budget: _Budget, now: float) -> None:
        # A request made at t counts until t + span (compared that way round so that a
        # wake-up at exactly t + span, as `_slot_time` computes it, sees it gone).
        del budget.window[: _expired(budget.window, now, budget.span)]
        del budget.own[: _expired(budget.own, now, budget.span)]

    def load_ledger(self, key: BudgetKey, timestamps: Iterable[float]) -> None:
        """Replace what is known of a key's requests with the persisted ledger's.

        Requests recorded here in the last minute that the ledger does not show yet
        (not persisted so far) are kept, so a reload never forgets a request.
        """
        self._version += 1
        now = self.clock()
        budget = self._budget(key)
        loaded = sorted(timestamps)
        for at in budget.own:
            if at > now - 60.0 and not _contains_near(loaded, at):
                bisect.insort(loaded, at)
        budget.window = loaded
        budget.own = [at for at in budget.own if at > now - 60.0]
        self._trim(budget, now)

    def record_request(self, key: BudgetKey, at: float | None = None) -> None:
        """A request (submission or poll) was sent with this key."""
        self._version += 1
        budget = self._budget(key)
        at = self.clock() if at is None else at
        bisect.insort(budget.window, at)
        bisect.insort(budget.own, at)

    def on_rate_limited(self, key: BudgetKey, retry_after: float | None) -> None:
        """The provider answered 429: no request with this key (submission or poll)
        until Retry-After; after it, the key's requests are spaced for a while.

        The 429 says the server counts more requests than the ledger does (another
        client on the key, a shorter window than configured): the requests held back
        are released one at a time, at the limit's average pace (a stream that never
        has more than the limit in any window), for the pause's length again, doubling
        with each 429 that comes before such a spell has passed without one.
        """
        self._version += 1
        budget = self._budget(key)
        now = self.clock()
        wait = RATE_LIMIT_DEFAULT if retry_after is None else max(0.0, retry_after)
        if now >= budget.spaced_until:
            budget.strikes = 0
        budget.strikes += 1
        budget.paused_until = max(budget.paused_until, now + wait)
        spell = max(wait, RECOVERY_MIN) * 2 ** min(budget.strikes - 1, 10)
        budget.spaced_until = max(
            budget.spaced_until, budget.paused_until + min(budget.span, spell)
        )

    def restore_pause(self, key: BudgetKey, until: float) -> None:
        """A 429 pause of this key ends at `until` (clock time), as persisted by another
        instance or an earlier run: no request before it, and spaced for a while after,
        as if this instance had drawn the 429 itself. A pause long over changes nothing."""
        self._version += 1
        budget = self._budget(key)
        if until + RECOVERY_MIN <= self.clock():
            return
        budget.paused_until = max(budget.paused_until, until)
        budget.spaced_until = max(budget.spaced_until, until + RECOVERY_MIN)

    def hold(self, key: BudgetKey, until: float) -> None:
        """No request with this key before `until` (clock time): the shared ledger is
        spent until then, or the key's host cannot be reached. Unlike a 429, nothing says
        the server counts more than the ledger, so what follows is not spaced."""
        self._version += 1
        budget = self._budget(key)
        budget.paused_until = max(budget.paused_until, until)

    def _spacing(self, budget: _Budget) -> float:
        """Seconds between two requests of a key recovering from a 429."""
        if budget.limit is None:
            return RECOVERY_SPACING
        return budget.span / budget.limit

    def _spaced_slot(self, key: BudgetKey, budget: _Budget, now: float) -> float:
        """While a key recovers from a 429, the earliest its next request may go."""
        if now >= budget.spaced_until:
            return now
        latest = max(budget.window[-1:] + self._in_flight(key, now), default=-math.inf)
        return max(now, latest + self._spacing(budget))

    def budget(self, key: BudgetKey) -> BudgetState:
        now = self.clock()
        budget = self._budget(key)
        self._trim(budget, now)
        used = len(budget.window)
        remaining = None if budget.limit is None else max(0, budget.limit - used)
        plan = self._plan(key, now)
        return BudgetState(
            limit=budget.limit,
            used=used,
            remaining=remaining,
            paused_until=budget.paused_until if budget.paused_until > now else None,
            resets_at=budget.window[0] + budget.span if budget.window else None,
            reserved=min(remaining, self._reserve(budget, now)) if remaining is not None else 0,
            tight=plan.tight,
            deferred=len(plan.deferred),
            spaced_until=budget.spaced_until if budget.spaced_until > now else None,
            spacing=self._spacing(budget) if budget.spaced_until > now else 0.0,
        )

    def _reserve(self, budget: _Budget, now: float) -> int:
        """Requests polls must leave for submissions: the waiting ones, plus a standing
        reserve less the requests leaving the window within `submit_slack` (a fresh
        submission may wait that long for one of those)."""
        if budget.limit is None:
            return 0
        standing = self.reserve
        if standing is None:
            standing = max(1, round(budget.limit * DEFAULT_RESERVE_FRACTION))
        standing = min(standing, budget.limit // 2)
        if standing and self.submit_slack > 0:
            leaving = _expired(budget.window, now + self.submit_slack, budget.span)
            standing = max(0, standing - leaving)
        return budget.waiting_submissions + standing

    def _in_flight(self, key: BudgetKey, now: float) -> list[float]:
        return sorted(
            tr.in_flight_at
            for tr in self._tasks.values()
            if tr.target.budget_key == key
            and tr.in_flight_at is not None
            and tr.in_flight_at > now - IN_FLIGHT_TTL
        )

    def _free(self, key: BudgetKey, now: float, keep: int) -> float:
        """Requests that may be sent now leaving `keep` unspent (inf: no limit; 0: paused)."""
        budget = self._budget(key)
        if budget.paused_until > now:
            return 0.0
        self._trim(budget, now)
        if now < budget.spaced_until and (
            budget.waiting_submissions > 0 or self._spaced_slot(key, budget, now) > now
        ):
            return 0.0  # one request at a time, and a waiting submission goes first
        recent = self._recent(key, budget, now)
        burst = float(max(0, self.burst - len(recent)))
        if now < budget.spaced_until:
            burst = min(burst, 1.0)
        if budget.limit is None:
            return burst
        used = len(budget.window) + len(self._in_flight(key, now))
        return min(burst, float(max(0, budget.limit - keep - used)))

    def _recent(self, key: BudgetKey, budget: _Budget, now: float) -> list[float]:
        """This key's requests in the last second, oldest first (see `burst`)."""
        start = bisect.bisect_right(budget.window, now - BURST_SPAN)
        late = [at for at in self._in_flight(key, now) if at > now - BURST_SPAN]
        return sorted(budget.window[start:] + late)

    def _slot_time(self, key: BudgetKey, now: float, keep: int) -> float:
        """Earliest time one request may be sent leaving `keep` unspent (inf: not by expiry)."""
        budget = self._budget(key)
        self._trim(budget, now)
        start = max(now, budget.paused_until)
        start = max(start, self._spaced_slot(key, budget, start))
        recent = self._recent(key, budget, now)
        if len(recent) >= self.burst:
            start = max(start, recent[len(recent) - self.burst] + BURST_SPAN)
        if budget.limit is None:
            return start
        times = sorted(budget.window + self._in_flight(key, now))
        must_expire = len(times) + keep + 1 - budget.limit
        if must_expire <= 0:
            return start
        if must_expire > len(times):
            return math.inf
        return max(start, times[must_expire - 1] + budget.span)

    # -- submissions -------------------------------------------------------------------

    def set_waiting_submissions(self, key: BudgetKey, count: int) -> None:
        """Submissions queued for this key: polling leaves their share of the budget."""
        self._version += 1
        self._budget(key).waiting_submissions = max(0, count)

    def submit_delay(self, key: BudgetKey) -> float:
        """0 if a submission may be sent now, else seconds until it may.

        Submissions may use the whole budget, the reserve included.
        """
        now = self.clock()
        return max(0.0, self._slot_time(key, now, keep=0) - now)

    # -- render times ------------------------------------------------------------------

    def learn(self, profile: tuple, generation_time: float, *, task_id: str | None = None) -> None:
        """A task of this profile took this long to render (seconds after submission).

        Call it for finished tasks from the history at start-up. Tasks finishing while
        tracked are learned by `on_poll_result` already (from the interval in which the
        finish was seen); pass `task_id` to replace that guess with the server's figure
        instead of adding a second observation.
        """
        self.render_times.learn(profile, generation_time, task_id)

    def estimate(self, profile: tuple) -> RenderEstimate:
        """The render-time belief for a profile (for display and tests)."""
        return self.render_times.estimate(profile)

    # -- tasks -------------------------------------------------------------------------

    def track(self, target: PollTarget) -> None:
        """Start (or keep) watching a pending task."""
        self._version += 1
        last_e = None
        if target.last_polled_at is not None:
            last_e = max(0.0, target.last_polled_at - target.submitted_at)
        existing = self._tasks.get(target.task_id)
        if existing is not None:
            existing.target = target
            existing.last_e = _max_opt(existing.last_e, last_e)
            return
        # One task at a time probes a belief its first checks keep contradicting.
        scale = self.render_times.probe(target.profile) if last_e is None else 1.0
        profile = tuple(target.profile)
        if any(
            tuple(t.target.profile) == profile and t.scale == scale for t in self._tasks.values()
        ):
            scale = 1.0
        self._tasks[target.task_id] = _Tracked(target, last_e, scale=scale)
        budget = self._budget(target.budget_key)
        if target.submitted_at > self.clock() - HOUR:
            budget.recent_jobs.append((target.submitted_at, tuple(target.profile)))

    def forget(self, task_id: str) -> None:
        self._version += 1
        self._tasks.pop(task_id, None)

    def tracked(self) -> list[str]:
        return list(self._tasks)

    def on_poll_result(
        self,
        task_id: str,
        *,
        pending: bool,
        error: bool = False,
        generation_time: float | None = None,
    ) -> None:
        """The answer to a poll: still pending, finished (pending=False), or an error.

        A finished task is forgotten and its render time learned: `generation_time` if
        the server reported it, else the middle of the interval the finish fell in.
        """
        self._version += 1
        tracked = self._tasks.get(task_id)
        if tracked is None:
            return
        now = self.clock()
        tracked.in_flight_at = None
        if error:
            self._back_off(tracked, now)
            return
        tracked.failures = 0
        if pending:
            if tracked.prev_e is None and tracked.last_e is not None:
                self.render_times.note_first_check(
                    tracked.target.profile,
                    found=False,
                    seen=now - tracked.target.submitted_at,
                    scale=tracked.scale,
                )
            tracked.prev_e = None
            tracked.last_e = _max_opt(tracked.last_e, now - tracked.target.submitted_at)
            return
        self._learn_finish(tracked, now, generation_time)
        self.forget(task_id)

    def _back_off(self, tracked: _Tracked, now: float) -> None:
        # The failed poll told us nothing: the schedule resumes from the previous one,
        # and this task waits an exponentially growing, jittered time.
        tracked.last_e = tracked.prev_e
        tracked.prev_e = None
        tracked.failures += 1
        backoff = min(self.max_interval, self.poll_interval * 2 ** min(tracked.failures, 10))
        tracked.not_before = now + backoff * (0.5 + self.rng.random() / 2.0)

    def _learn_finish(self, tracked: _Tracked, now: float, generation_time: float | None) -> None:
        target = tracked.target
        if generation_time is None:
            # The finish fell between the previous poll and this one: impute the median
            # of the current belief over that interval. A finish seen at the first poll
            # could have come any time before it, and the data can never say how early:
            # impute low in the interval, so the belief errs towards polling early
            # (which then measures the early tail) rather than drifting late.
            est = self._estimate_of(tracked)
            first = tracked.prev_e is None
            before = 0.0 if first else tracked.prev_e
            seen = now - target.submitted_at
            f_before, f_seen = est.cdf(before), est.cdf(seen)
            share = FIRST_POLL_IMPUTE if first else 0.5
            quantile = est.quantile(f_before + (f_seen - f_before) * share)
            self.render_times.learn(
                target.profile,
                min(seen, max(before, quantile)),
                target.task_id,
                censored=first,
            )
            if first:
                self.render_times.note_first_check(
                    target.profile, found=True, seen=seen, scale=tracked.scale
                )
            return
        self.render_times.learn(target.profile, generation_time, target.task_id)

    def poll_skipped(self, task_id: str, *, not_before: float | None = None) -> None:
        """A poll handed out by `due_polls` was not sent after all (e.g. a 429 on an
        earlier request of the same batch paused the key, or the poll could not be
        claimed: another poll of it is in flight or was just made): the task is due again
        as before — or, given `not_before`, not before then — and nothing is held for it."""
        self._version += 1
        tracked = self._tasks.get(task_id)
        if tracked is None or tracked.in_flight_at is None:
            return
        if not_before is not None:
            tracked.not_before = max(tracked.not_before, not_before)
        tracked.in_flight_at = None
        tracked.last_e = tracked.prev_e
        tracked.prev_e = None

    def note_external_poll(self, task_id: str, at: float) -> None:
        """Another instance polled this task at `at` (and it was still pending then).

        The next poll here follows the schedule from that poll, as if it had been ours.
        """
        self._version += 1
        tracked = self._tasks.get(task_id)
        if tracked is None:
            return
        e = at - tracked.target.submitted_at
        tracked.last_e = _max_opt(tracked.last_e, e)

    def poll_now(self, task_id: str) -> bool:
        """The user asked to check this task now: True if the budget allows it.

        It may use the standing reserve, never the share of waiting submissions.
        """
        self._version += 1
        tracked = self._tasks.get(task_id)
        if tracked is None:
            return False
        now = self.clock()
        key = tracked.target.budget_key
        if self._free(key, now, keep=self._budget(key).waiting_submissions) < 1:
            return False
        tracked.forced = True
        tracked.not_before = 0.0
        return True

    # -- the schedule ------------------------------------------------------------------

    def _estimate_of(self, tracked: _Tracked) -> RenderEstimate:
        """The render-time belief this task is scheduled by (its profile's, scaled for
        a probe)."""
        est = self.render_times.estimate(tracked.target.profile)
        if tracked.scale == 1.0:
            return est
        key = (tuple(tracked.target.profile), tracked.scale)
        cached = self._scaled.get(key)
        if cached is None or cached[0] is not est:
            cached = self._scaled[key] = (est, est.scaled(tracked.scale))
        return cached[1]

    def _gap(self, est: RenderEstimate, pace: int) -> float:
        """Spacing of polls while a finish is likely, at this pace."""
        if pace == _EASY:
            width = est.latest - est.earliest
            return min(self.target_latency, max(self.poll_interval, width / CHECKS_PER_WINDOW))
        if pace == _TIGHT:
            return self.target_latency
        return min(self.max_interval, self.target_latency * DEFERRED_GAPS)

    def _next_e(self, est: RenderEstimate, last_e: float | None, pace: int) -> float:
        """Seconds after submission of the next poll, given the latest one at `last_e`."""
        first, last = est.earliest, est.latest
        gap = self._gap(est, pace)
        e = 0.0 if last_e is None else last_e
        if e < first:
            # Nothing is likely before `first`: the first check catches a finish in
            # [first, first + gap] no later than one gap after it happens (and one at
            # `last` catches every finish of a window narrower than a gap).
            nxt = min(first + gap, last)
        elif e < last:
            nxt = min(e + gap, last)
        else:
            # Overdue: relax as the lateness grows relative to the likely window.
            overdue = (e - last) / max(last - first, gap)
            nxt = e + min(self.max_interval, gap * (1.0 + overdue))
        return max(nxt, e + self.poll_interval)

    def _due_at(self, task_id: str, tracked: _Tracked, plan: _Plan) -> float:
        # Handed out and not answered yet: not due again for a while (a slow answer must
        # not draw a second poll of the same task), unless the answer never comes.
        held = -math.inf if tracked.in_flight_at is None else tracked.in_flight_at + IN_FLIGHT_HOLD
        if tracked.forced:
            return held
        target = tracked.target
        est = self._estimate_of(tracked)
        pace = _DEFERRED if task_id in plan.deferred else _TIGHT if plan.tight else _EASY
        due = target.submitted_at + self._next_e(est, tracked.last_e, pace)
        return max(due, tracked.not_before, held)

    def _finish_chance(self, tracked: _Tracked, now: float) -> float:
        """Chance a poll now finds the task finished, given it was pending at the last."""
        est = self._estimate_of(tracked)
        seen = est.cdf(tracked.last_e or 0.0)
        return (est.cdf(now - tracked.target.submitted_at) - seen) / max(1e-9, 1.0 - seen)

    def _plan(self, key: BudgetKey, now: float) -> _Plan:
        """This key's pacing now: computed again after any change to what the scheduler
        knows, else reused for up to PLAN_REUSE seconds (the list asks for every row's
        next check in one repaint)."""
        cached = self._plans.get(key)
        if cached is not None:
            version, at, plan = cached
            if (
                version == (self._version, self.render_times.version)
                and at <= now < at + PLAN_REUSE
            ):
                return plan
        plan = self._make_plan(key, now)
        self._plans[key] = ((self._version, self.render_times.version), now, plan)
        return plan

    def _make_plan(self, key: BudgetKey, now: float) -> _Plan:
        """How this key's polls are paced so that its budget lasts.

        While the window's count stays well under the limit over the coming window,
        polls go at the easy pace. Otherwise at the tight pace: one per target latency,
        the fewest that still see every finish in time. If some of those would have to
        wait for a slot in the coming minutes (`_simulate`), whole tasks are deferred,
        newest first, as many as leave the fewest finishes expected to be seen late:
        deferring a few tasks keeps the others on time, where stretching every gap
        would make every task late.
        """
        budget = self._budget(key)
        tasks = [(i, tr) for i, tr in self._tasks.items() if tr.target.budget_key == key]
        if budget.limit is None or not tasks:
            return _Plan(False, frozenset())
        self._trim(budget, now)
        # Every request made now counts against the budget for a whole window: spend
        # beyond the tight pace only while the window's count stays well under the
        # limit at every moment of the coming window, with the requests made so far
        # leaving it as they age, the tracked tasks polled at the easy pace, and new
        # jobs arriving as fast as over the last hour (each polled at the easy pace).
        span = budget.span
        old = sorted(budget.window + self._in_flight(key, now))
        rate = self._forecast(budget, now, 1.0, _EASY)
        polls = sorted(p for _i, tr in tasks for p in self._poll_times(tr, now, now + span, _EASY))
        peak, spent, i = 0.0, 0.0, 0
        for step in range(LOAD_STEPS + 1):
            at = now + span * step / LOAD_STEPS
            while i < len(polls) and polls[i][0] <= at:
                spent += polls[i][1]
                i += 1
            remaining_old = len(old) - _expired(old, at, span)
            peak = max(peak, remaining_old + spent + rate * (at - now))
        tight = peak > EASY_SHARE * (budget.limit - self._reserve(budget, now))
        if not tight:
            return _Plan(False, frozenset())  # deferred tasks are back on time
        keep = self._reserve(budget, now)
        baseline = self._simulate(key, tasks, now, keep, frozenset())
        if baseline.delayed <= 1e-9:
            return _Plan(True, frozenset())
        # Some on-time polls would wait for a slot. Defer whole tasks, newest first:
        # of the plans deferring the newest k, keep the one expecting the fewest late
        # finishes (one deferral alone may gain nothing where several do: the polls it
        # frees may only complete another task's coverage together).
        order = [
            task_id
            for _submitted, task_id in sorted(
                ((tr.target.submitted_at, i) for i, tr in tasks if not tr.forced), reverse=True
            )
        ]
        # The counts tried: every one up to DEFER_STEPS, then growing by half (the
        # expected lateness moves smoothly with k once k is large).
        counts, k = [], 1
        while k <= len(order):
            counts.append(k)
            k = k + 1 if k < DEFER_STEPS else math.ceil(k * 1.5)
        if order and counts[-1] != len(order):
            counts.append(len(order))
        deferred: frozenset[str] = frozenset()
        best = baseline.late
        for k in counts:
            trial = frozenset(order[:k])
            outcome = self._simulate(key, tasks, now, keep, trial)
            if outcome.late < best - 1e-6:
                deferred, best = trial, outcome.late
            if outcome.delayed <= 1e-9:
                break  # deferring more cannot help: nothing waits any more
        return _Plan(True, deferred)

    def _simulate(
        self,
        key: BudgetKey,
        tasks: list[tuple[str, _Tracked]],
        now: float,
        keep: int,
        deferred: frozenset[str],
    ) -> _Outcome:
        """The coming minutes of this key's polls, deferred tasks at the deferred pace,
        the others on time: each poll goes at its due time or, when the window is full,
        at the next slot (earliest due first, as the budget frees up).

        Polls are weighted by the chance their task is still pending; a finish is late
        when it is seen more than the target latency after it happened. Returns the
        expected late finishes and the expected seconds of waiting for slots."""
        budget = self._budget(key)
        span = budget.span
        cap = float(budget.limit - keep) if budget.limit is not None else math.inf
        # Requests counting against the window, oldest first: (time, weight).
        placed: deque[tuple[float, float]] = deque(
            (at, 1.0) for at in sorted(budget.window + self._in_flight(key, now))
        )
        counted = float(len(placed))
        end = now + PACING_HORIZON
        heap: list[tuple[float, int, str, float]] = []
        info: dict[str, tuple[_Tracked, RenderEstimate, float, int]] = {}
        for order, (task_id, tracked) in enumerate(tasks):
            est = self._estimate_of(tracked)
            pace = _DEFERRED if task_id in deferred else _TIGHT
            last = tracked.last_e or 0.0
            alive = max(1e-9, 1.0 - est.cdf(last))
            info[task_id] = (tracked, est, alive, pace)
            if tracked.forced:
                due = now
            else:
                due = tracked.target.submitted_at + self._next_e(est, tracked.last_e, pace)
                due = max(due, tracked.not_before, now)
            heapq.heappush(heap, (due, order, task_id, last))
        late = delayed = 0.0
        clock = now
        while heap:
            due, order, task_id, prev_e = heapq.heappop(heap)
            if due > end:
                continue
            tracked, est, alive, pace = info[task_id]
            weight = (1.0 - est.cdf(prev_e)) / alive  # sent only if still pending
            if weight < 1e-3:
                continue
            at = max(due, clock)
            while placed and placed[0][0] + span <= at:
                counted -= placed.popleft()[1]
            while counted + weight > cap + 1e-9 and placed:
                expired_at, w = placed.popleft()
                counted -= w
                at = max(at, expired_at + span)
            if counted + weight > cap + 1e-9:
                at = math.inf
            if at > end:
                # No slot within the horizon: count it as seen late if it finished.
                late += weight - (1.0 - est.cdf(prev_e + self.target_latency)) / alive
                delayed += weight * (end - due)
                continue
            placed.append((at, weight))
            counted += weight
            clock = at
            delayed += weight * (at - due)
            submitted = tracked.target.submitted_at
            e = at - submitted
            if e - self.target_latency > prev_e:
                late += (est.cdf(e - self.target_latency) - est.cdf(prev_e)) / alive
            nxt = submitted + self._next_e(est, e, pace)
            heapq.heappush(heap, (nxt, order, task_id, e))
        return _Outcome(late, delayed)

    def _forecast(self, budget: _Budget, now: float, horizon: float, pace: int) -> float:
        """Requests that jobs submitted over the horizon will likely need.

        Assumes the coming minutes look like the last hour: as many submissions per
        hour, each followed by as many polls as its profile needs on average.
        """
        while budget.recent_jobs and budget.recent_jobs[0][0] + HOUR <= now:
            budget.recent_jobs.popleft()
        share = horizon / HOUR
        return share * sum(1.0 + self._lifetime_polls(p, pace) for _, p in budget.recent_jobs)

    def _lifetime_polls(self, profile: tuple, pace: int) -> float:
        """Expected polls of a task of this profile from submission to seen finished."""
        est = self.render_times.estimate(profile)
        cached = self._lifetime_cache.get((profile, pace))
        if cached is not None and cached[0] is est:
            return cached[1]
        total, e = 0.0, None
        for _ in range(64):
            alive = 1.0 - est.cdf(e or 0.0)
            if alive < 1e-3:
                break
            total += alive
            e = self._next_e(est, e, pace)
        self._lifetime_cache[(profile, pace)] = (est, total)
        return total

    def _expected_polls(self, tracked: _Tracked, now: float, end: float, pace: int) -> float:
        """Expected polls of this task before `end` at this pace."""
        return _weight(self._poll_times(tracked, now, end, pace))

    def _poll_times(
        self, tracked: _Tracked, now: float, end: float, pace: int
    ) -> list[tuple[float, float]]:
        """This task's polls before `end` at this pace: (time, chance it is sent)."""
        target = tracked.target
        est = self._estimate_of(tracked)
        alive = max(1e-9, 1.0 - est.cdf(tracked.last_e or 0.0))
        e = tracked.last_e
        if tracked.forced:
            at = now
        else:
            at = max(now, tracked.not_before, target.submitted_at + self._next_e(est, e, pace))
        out: list[tuple[float, float]] = []
        for _ in range(64):
            if at > end:
                break
            # This poll is sent only if the previous one saw the task pending.
            out.append((at, (1.0 - est.cdf(e or 0.0)) / alive))
            e = at - target.submitted_at
            at = target.submitted_at + self._next_e(est, e, pace)
        return out

    def due_polls(self) -> list[str]:
        """Task ids to poll now. Each is rescheduled as if polled; report results after.

        When a key cannot afford every due poll, the ones most likely to find a finished
        task go first, deferred tasks last; a poll the user asked for goes before all.
        """
        now = self.clock()
        plans: dict[BudgetKey, _Plan] = {}
        candidates: list[tuple[tuple, str, _Tracked]] = []
        for task_id, tracked in self._tasks.items():
            key = tracked.target.budget_key
            if key not in plans:
                plans[key] = plan = self._plan(key, now)
                for i, tr in self._tasks.items():
                    if tr.target.budget_key == key:
                        tr.deferred = i in plan.deferred
            if self._due_at(task_id, tracked, plans[key]) > now:
                continue
            rank = (not tracked.forced, tracked.deferred, -self._finish_chance(tracked, now))
            candidates.append((rank, task_id, tracked))
        candidates.sort(key=lambda c: c[0])
        due: list[str] = []
        for _rank, task_id, tracked in candidates:
            key = tracked.target.budget_key
            budget = self._budget(key)
            keep = budget.waiting_submissions if tracked.forced else self._reserve(budget, now)
            # Polls handed out count as in flight, so each one lowers what is free.
            if self._free(key, now, keep) < 1:
                continue
            self._hand_out(tracked, now)
            due.append(task_id)
        return due

    def _hand_out(self, tracked: _Tracked, now: float) -> None:
        self._version += 1
        tracked.prev_e = tracked.last_e
        tracked.last_e = now - tracked.target.submitted_at
        tracked.forced = False
        tracked.in_flight_at = now

    def next_check(self, task_id: str) -> float | None:
        """When this task will next be checked, as far as can be told now (None: not
        tracked, or not before the budget frees more than it can tell)."""
        tracked = self._tasks.get(task_id)
        if tracked is None:
            return None
        at = self._check_at(task_id, tracked, self.clock(), {})
        return at if math.isfinite(at) else None

    def _check_at(
        self, task_id: str, tracked: _Tracked, now: float, plans: dict[BudgetKey, _Plan]
    ) -> float:
        key = tracked.target.budget_key
        if key not in plans:
            plans[key] = self._plan(key, now)
        budget = self._budget(key)
        keep = budget.waiting_submissions if tracked.forced else self._reserve(budget, now)
        due = self._due_at(task_id, tracked, plans[key])
        return max(due, self._slot_time(key, now, keep))

    def eta(self, task_id: str) -> float | None:
        """Expected finish (epoch seconds), given the task was pending at its last poll.

        Always finite: however late the task, its conditional median lies a little past
        its last poll (see `overdue` for telling such a task apart)."""
        tracked = self._tasks.get(task_id)
        if tracked is None:
            return None
        est = self._estimate_of(tracked)
        return tracked.target.submitted_at + est.conditional_median(tracked.last_e or 0.0)

    def overdue(self, task_id: str) -> bool:
        """The task has been running longer than its profile's latest likely render."""
        tracked = self._tasks.get(task_id)
        if tracked is None:
            return False
        est = self._estimate_of(tracked)
        return self.clock() - tracked.target.submitted_at > est.latest

    def next_wakeup(self) -> float | None:
        """When something may next be due (a poll, the end of a pause, a freed slot)."""
        now = self.clock()
        plans: dict[BudgetKey, _Plan] = {}
        times = [self._check_at(i, tr, now, plans) for i, tr in self._tasks.items()]
        for key, budget in self._budgets.items():
            if budget.waiting_submissions > 0:
                delay = self.submit_delay(key)
                if delay > 0:
                    times.append(now + delay)
        finite = [t for t in times if math.isfinite(t)]
        return min(finite) if finite else None


def _max_opt(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def _contains_near(sorted_times: list[float], at: float, tolerance: float = 1e-3) -> bool:
    i = bisect.bisect_left(sorted_times, at - tolerance)
    return i < len(sorted_times) and sorted_times[i] <= at + tolerance


def _weight(polls: list[tuple[float, float]]) -> float:
    """Expected number of these polls (each weighted by the chance it is sent)."""
    return sum(w for _t, w in polls)


def _expired(sorted_times: list[float], now: float, span: float) -> int:
    """How many of these request times no longer count in the `span` before `now`."""
    return bisect.bisect_right(sorted_times, now, key=lambda at: at + span)
