"""When to poll what: per-task next poll, per-key request budget, backoff.

Pure logic over an injected clock: no sleeps, no I/O, no imports of the client or
the store. The engine feeds it facts (requests made, answers seen, 429s, render times
of finished tasks) and asks it what to do next.

Policy in brief:

* **Budget.** Each budget key (`BudgetKey`: provider and key fingerprint) has a sliding
  window (an hour unless the provider's `rate_window` says otherwise) of request times, loaded from the shared ledger and extended by every request
  recorded. Submissions come first: polls never spend the share waiting submissions
  need, nor a small standing reserve kept so that a fresh submission rarely waits.
* **When to poll.** Render times are learned per profile (provider, resolution,
  duration, audio) as a bounded window of recent observations blended with a prior from
  the docs ("typically 1-3 minutes", longer for high resolution and long clips). A task
  is first checked one gap after its earliest likely finish, then every gap until its
  latest likely finish, then ever more rarely while overdue.
* **Pacing.** While the hour ahead is far from the key's limit, the gap is a fraction
  of the likely window's width (capped by the target latency). Otherwise it is the
  target latency itself: the fewest polls that still see every finish in time. When
  even that would run the budget dry in the coming minutes, whole tasks are deferred
  (checked rarely, newest first) rather than every gap stretched: the target is that
  nearly every finish is seen in time, and a few late tasks cost less of it than all
  tasks a little late. Polls that are due but cannot all be afforded go first to the
  on-time tasks most likely to have finished.
* **Trouble.** A 429 stops the key until Retry-After; a 5xx or transport error backs
  that one task off exponentially, with jitter.
"""

from __future__ import annotations

import bisect
import contextlib
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
PRIOR_POINTS = 20  # the prior is a uniform distribution, drawn as this many points
LOW_Q, HIGH_Q = 0.05, 0.95  # the "likely window" of a render: between these quantiles
FIRST_POLL_IMPUTE = 0.25  # see `_learn_finish`

# Polling cadence.
CHECKS_PER_WINDOW = 4.0  # aim for about this many checks across the likely window
DEFAULT_MIN_INTERVAL = 5.0  # never poll one task more often (the docs' own advice)
DEFAULT_TARGET_LATENCY = 30.0  # cap on the in-window gap: how late a finish may be seen
DEFAULT_MAX_INTERVAL = 300.0  # an overdue task is still checked at least this often
DEFAULT_RESERVE_FRACTION = 0.02  # of a key's hourly limit, kept back for new submissions

# Pacing under a short budget.
PACING_HORIZON = 600.0  # look this far ahead for a moment the budget runs dry
EASY_SHARE = 0.6  # easy pace only while the hour's load stays under this share of the limit
DEFERRED_GAPS = 4.0  # a deferred task is checked this many target latencies apart
_EASY, _TIGHT, _DEFERRED = 0, 1, 2  # paces: see `Scheduler._plan`

# Failures.
RATE_LIMIT_DEFAULT = 60.0  # pause after a 429 that names no Retry-After
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


@dataclass(frozen=True, slots=True)
class RenderEstimate:
    """What is believed about a profile's render time, in seconds after submission.

    A weighted sample: recent observations (weight 1 each) plus, while they are few,
    points of a prior. Quantiles and the CDF interpolate between the points' plotting
    positions, with an exponential tail past the last point.
    """

    points: tuple[float, ...]  # sorted
    positions: tuple[float, ...]  # cumulative probability at each point (midpoint rule)
    samples: int  # real observations behind it (0: the prior alone)

    def quantile(self, p: float) -> float:
        xs, cs = self.points, self.positions
        if p <= cs[0]:
            return xs[0] * max(p, 0.0) / cs[0]
        if p >= cs[-1]:
            if p >= 1.0:
                return math.inf
            return xs[-1] + self._tail() * math.log((1.0 - cs[-1]) / (1.0 - p))
        i = bisect.bisect_left(cs, p)
        return _lerp(p, cs[i - 1], cs[i], xs[i - 1], xs[i])

    def cdf(self, x: float) -> float:
        xs, cs = self.points, self.positions
        if x <= xs[0]:
            return cs[0] * max(x, 0.0) / xs[0] if xs[0] > 0 else cs[0]
        if x >= xs[-1]:
            return 1.0 - (1.0 - cs[-1]) * math.exp(-(x - xs[-1]) / self._tail())
        i = bisect.bisect_left(xs, x)
        return _lerp(x, xs[i - 1], xs[i], cs[i - 1], cs[i])

    @property
    def low(self) -> float:
        return self.quantile(LOW_Q)

    @property
    def earliest(self) -> float:
        """The earliest likely render time: the lowest point, less the typical spacing
        of points (a sample's minimum overestimates the true one by about that much)."""
        xs = self.points
        return max(0.0, xs[0] - (xs[-1] - xs[0]) / (len(xs) + 1))

    @property
    def latest(self) -> float:
        """The latest likely render time, estimated the same way from the top."""
        xs = self.points
        return xs[-1] + (xs[-1] - xs[0]) / (len(xs) + 1)

    @property
    def median(self) -> float:
        return self.quantile(0.5)

    @property
    def high(self) -> float:
        return self.quantile(HIGH_Q)

    def _tail(self) -> float:
        return max(10.0, (self.points[-1] - self.points[0]) / 4.0)

    def conditional_median(self, survived: float) -> float:
        """Median render time given the render was still going at `survived` seconds."""
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
        self._samples: dict[tuple, deque[tuple[float, str | None]]] = {}
        self._by_task: dict[str, tuple] = {}  # task id -> profile it was learned under
        self._cache: dict[tuple, RenderEstimate] = {}

    def learn(self, profile: tuple, seconds: float, task_id: str | None = None) -> None:
        """Add an observation; a task id already learned has its value replaced."""
        if not math.isfinite(seconds) or seconds <= 0:
            return
        profile = tuple(profile)
        if task_id is not None and task_id in self._by_task:
            old = self._samples.get(self._by_task[task_id], deque())
            for i, (_value, tid) in enumerate(old):
                if tid == task_id:
                    del old[i]
                    break
        samples = self._samples.setdefault(profile, deque(maxlen=self.window))
        samples.append((float(seconds), task_id))
        if task_id is not None:
            self._by_task[task_id] = profile
        self._invalidate(profile)

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
        provider = profile[0] if profile else None
        for key in [k for k in self._cache if (k[0] if k else None) == provider]:
            del self._cache[key]

    def _build(self, profile: tuple) -> RenderEstimate:
        values = [v for v, _ in self._samples.get(profile, ())]
        weighted = [(v, 1.0) for v in values]
        prior_weight = PRIOR_WEIGHT * max(0.0, 1.0 - len(values) / PRIOR_FADE)
        if prior_weight > 0:
            lo, hi = self.prior or prior_range(profile)
            speed = 1.0 if self.prior else self._provider_speed(profile)
            lo, hi = lo * speed, hi * speed
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
        return RenderEstimate(tuple(points), tuple(positions), len(values))

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
            ratios.extend(v / ((lo + hi) / 2.0) for v, _ in samples)
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


@dataclass(frozen=True, slots=True)
class _Plan:
    """A key's pacing for now: tight or easy, and which tasks are deferred."""

    tight: bool
    deferred: frozenset[str]


@dataclass(slots=True)
class _Budget:
    limit: int | None
    window: list[float] = field(default_factory=list)  # sorted request times
    own: list[float] = field(default_factory=list)  # recorded here since the last ledger load
    paused_until: float = 0.0
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
    ) -> None:
        """`poll_interval` is the shortest spacing between two polls of one task;
        `target_latency` caps the gap between polls while a finish is likely;
        `max_interval` caps it when overdue; `reserve` is how many requests of each
        limited key polls leave free for new submissions (default: 5% of the limit);
        `prior` replaces the docs' render-time range before anything is learned."""
        self.clock = clock
        # Per-provider limits (by provider name); a budget key takes its provider's.
        self.limits = dict(limits or {})
        self.poll_interval = poll_interval
        self.target_latency = max(target_latency, poll_interval)
        self.max_interval = max(max_interval, self.target_latency)
        self.reserve = reserve
        self.rng = rng or random.Random()
        self.render_times = RenderTimes(prior=prior)
        self._tasks: dict[str, _Tracked] = {}
        self._budgets: dict[BudgetKey, _Budget] = {}
        self._lifetime_cache: dict[tuple, tuple[RenderEstimate, float]] = {}

    # -- the request ledger ------------------------------------------------------------

    def _budget(self, key: BudgetKey) -> _Budget:
        budget = self._budgets.get(key)
        if budget is None:
            budget = self._budgets[key] = _Budget(limit=self.limits.get(key.provider.value))
        return budget

    def _trim(self, budget: _Budget, now: float) -> None:
        # A request made at t counts until t + HOUR (compared that way round so that a
        # wake-up at exactly t + HOUR, as `_slot_time` computes it, sees it gone).
        del budget.window[: _expired(budget.window, now)]
        del budget.own[: _expired(budget.own, now)]

    def load_ledger(self, key: BudgetKey, timestamps: Iterable[float]) -> None:
        """Replace what is known of a key's requests with the persisted ledger's.

        Requests recorded here in the last minute that the ledger does not show yet
        (not persisted so far) are kept, so a reload never forgets a request.
        """
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
        budget = self._budget(key)
        at = self.clock() if at is None else at
        bisect.insort(budget.window, at)
        bisect.insort(budget.own, at)

    def on_rate_limited(self, key: BudgetKey, retry_after: float | None) -> None:
        """The provider answered 429: no request with this key until Retry-After."""
        budget = self._budget(key)
        wait = RATE_LIMIT_DEFAULT if retry_after is None else max(0.0, retry_after)
        budget.paused_until = max(budget.paused_until, self.clock() + wait)

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
            resets_at=budget.window[0] + HOUR if budget.window else None,
            reserved=min(remaining, self._reserve(budget)) if remaining is not None else 0,
            tight=plan.tight,
            deferred=len(plan.deferred),
        )

    def _reserve(self, budget: _Budget) -> int:
        """Requests polls must leave for submissions: waiting ones plus a standing reserve."""
        if budget.limit is None:
            return 0
        standing = self.reserve
        if standing is None:
            standing = max(1, round(budget.limit * DEFAULT_RESERVE_FRACTION))
        return budget.waiting_submissions + min(standing, budget.limit // 2)

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
        if budget.limit is None:
            return math.inf
        self._trim(budget, now)
        used = len(budget.window) + len(self._in_flight(key, now))
        return float(max(0, budget.limit - keep - used))

    def _slot_time(self, key: BudgetKey, now: float, keep: int) -> float:
        """Earliest time one request may be sent leaving `keep` unspent (inf: not by expiry)."""
        budget = self._budget(key)
        start = max(now, budget.paused_until)
        if budget.limit is None:
            return start
        self._trim(budget, now)
        times = sorted(budget.window + self._in_flight(key, now))
        must_expire = len(times) + keep + 1 - budget.limit
        if must_expire <= 0:
            return start
        if must_expire > len(times):
            return math.inf
        return max(start, times[must_expire - 1] + HOUR)

    # -- submissions -------------------------------------------------------------------

    def set_waiting_submissions(self, key: BudgetKey, count: int) -> None:
        """Submissions queued for this key: polling leaves their share of the budget."""
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
        last_e = None
        if target.last_polled_at is not None:
            last_e = max(0.0, target.last_polled_at - target.submitted_at)
        existing = self._tasks.get(target.task_id)
        if existing is not None:
            existing.target = target
            existing.last_e = _max_opt(existing.last_e, last_e)
            return
        self._tasks[target.task_id] = _Tracked(target, last_e)
        budget = self._budget(target.budget_key)
        if target.submitted_at > self.clock() - HOUR:
            budget.recent_jobs.append((target.submitted_at, tuple(target.profile)))

    def forget(self, task_id: str) -> None:
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
            est = self.render_times.estimate(target.profile)
            first = tracked.prev_e is None
            before = 0.0 if first else tracked.prev_e
            seen = now - target.submitted_at
            f_before, f_seen = est.cdf(before), est.cdf(seen)
            share = FIRST_POLL_IMPUTE if first else 0.5
            quantile = est.quantile(f_before + (f_seen - f_before) * share)
            generation_time = min(seen, max(before, quantile))
        self.render_times.learn(target.profile, generation_time, target.task_id)

    def poll_skipped(self, task_id: str, not_before: float | None = None) -> None:
        """A poll handed out by `due_polls` was not sent after all (e.g. a 429 on an
        earlier request of the same batch paused the key): the task is due again as
        before — or, given `not_before`, not before then — and nothing is held for it."""
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
        tracked = self._tasks.get(task_id)
        if tracked is None:
            return
        e = at - tracked.target.submitted_at
        tracked.last_e = _max_opt(tracked.last_e, e)

    def poll_now(self, task_id: str) -> bool:
        """The user asked to check this task now: True if the budget allows it.

        It may use the standing reserve, never the share of waiting submissions.
        """
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

    def _gap(self, est: RenderEstimate, pace: int) -> float:
        """Spacing of polls while a finish is likely, at this pace."""
        if pace == _EASY:
            width = est.high - est.low
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
        est = self.render_times.estimate(target.profile)
        pace = _DEFERRED if task_id in plan.deferred else _TIGHT if plan.tight else _EASY
        due = target.submitted_at + self._next_e(est, tracked.last_e, pace)
        return max(due, tracked.not_before, held)

    def _finish_chance(self, tracked: _Tracked, now: float) -> float:
        """Chance a poll now finds the task finished, given it was pending at the last."""
        est = self.render_times.estimate(tracked.target.profile)
        seen = est.cdf(tracked.last_e or 0.0)
        return (est.cdf(now - tracked.target.submitted_at) - seen) / max(1e-9, 1.0 - seen)

    def _plan(self, key: BudgetKey, now: float) -> _Plan:
        """How this key's polls are paced so that its budget lasts.

        While the hour ahead is far from the limit, polls go at the easy pace. Otherwise
        at the tight pace: one per target latency, the fewest that still see every
        finish in time. If even that would run the budget dry at some moment of the
        coming minutes (the polls expected by then, each weighted by the chance its task
        is still pending, against the requests the window can take by then), whole
        tasks are deferred — those whose on-time polls over those minutes weigh most,
        newest first — until it does not. A task once deferred stays so while the pace
        is tight. Deferring a few tasks keeps the others on time; stretching
        every gap would make every task late.
        """
        budget = self._budget(key)
        tasks = [(i, tr) for i, tr in self._tasks.items() if tr.target.budget_key == key]
        already = frozenset(i for i, tr in tasks if tr.deferred)
        if budget.limit is None or not tasks:
            return _Plan(False, already)
        self._trim(budget, now)
        in_flight = len(self._in_flight(key, now))
        # Every request made now counts against the budget for an hour: spend beyond
        # the tight pace only while this hour's load (made, expected, forecast) leaves
        # plenty over.
        hour_load = len(budget.window) + in_flight + self._forecast(budget, now, HOUR)
        hour_load += sum(self._expected_polls(tr, now, now + HOUR, _EASY) for _i, tr in tasks)
        tight = hour_load > EASY_SHARE * (budget.limit - self._reserve(budget))
        if not tight:
            return _Plan(False, frozenset())  # deferred tasks are back on time
        end = now + PACING_HORIZON
        on_time = {i: self._poll_times(tr, now, end, _TIGHT) for i, tr in tasks}
        late = {i: self._poll_times(tr, now, end, _DEFERRED) for i, tr in tasks}
        deferred = set(already)
        base = budget.limit - self._reserve(budget) - in_flight
        candidates = sorted(
            (
                (_weight(on_time[i]) - _weight(late[i]), tr.target.submitted_at, i)
                for i, tr in tasks
                if i not in deferred and not tr.forced
            ),
            reverse=True,
        )
        while candidates:
            # How far over the budget the expected polls go, at the worst moment
            # (just after some poll).
            polls = sorted(p for i, _tr in tasks for p in (late if i in deferred else on_time)[i])
            spent, short = 0.0, 0.0
            for t, weight in polls:
                spent += weight
                counted = len(budget.window) - _expired(budget.window, t)
                short = max(short, spent - (base - counted))
            if short <= 1e-9:
                break
            while candidates and short > 1e-9:
                saving, _newest, task_id = candidates.pop(0)
                if saving <= 0:
                    candidates.clear()
                    break
                deferred.add(task_id)
                short -= saving
        return _Plan(True, frozenset(deferred))

    def _forecast(self, budget: _Budget, now: float, horizon: float) -> float:
        """Requests that jobs submitted over the horizon will likely need.

        Assumes the coming minutes look like the last hour: as many submissions per
        hour, each followed by as many polls as its profile needs on average.
        """
        while budget.recent_jobs and budget.recent_jobs[0][0] + HOUR <= now:
            budget.recent_jobs.popleft()
        share = horizon / HOUR
        return share * sum(1.0 + self._lifetime_polls(p) for _, p in budget.recent_jobs)

    def _lifetime_polls(self, profile: tuple) -> float:
        """Expected polls of a task of this profile from submission to seen finished."""
        est = self.render_times.estimate(profile)
        cached = self._lifetime_cache.get(profile)
        if cached is not None and cached[0] is est:
            return cached[1]
        total, e = 0.0, None
        for _ in range(64):
            alive = 1.0 - est.cdf(e or 0.0)
            if alive < 1e-3:
                break
            total += alive
            e = self._next_e(est, e, _TIGHT)
        self._lifetime_cache[profile] = (est, total)
        return total

    def _expected_polls(self, tracked: _Tracked, now: float, end: float, pace: int) -> float:
        """Expected polls of this task before `end` at this pace."""
        return _weight(self._poll_times(tracked, now, end, pace))

    def _poll_times(
        self, tracked: _Tracked, now: float, end: float, pace: int
    ) -> list[tuple[float, float]]:
        """This task's polls before `end` at this pace: (time, chance it is sent)."""
        target = tracked.target
        est = self.render_times.estimate(target.profile)
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
            keep = budget.waiting_submissions if tracked.forced else self._reserve(budget)
            # Polls handed out count as in flight, so each one lowers what is free.
            if self._free(key, now, keep) < 1:
                continue
            self._hand_out(tracked, now)
            due.append(task_id)
        return due

    def _hand_out(self, tracked: _Tracked, now: float) -> None:
        tracked.prev_e = tracked.last_e
        tracked.last_e = now - tracked.target.submitted_at
        tracked.forced = False
        tracked.in_flight_at = now

    def next_check(self, task_id: str) -> float | None:
        """When this task will next be checked, as far as can be told now."""
        tracked = self._tasks.get(task_id)
        if tracked is None:
            return None
        return self._check_at(task_id, tracked, self.clock(), {})

    def _check_at(
        self, task_id: str, tracked: _Tracked, now: float, plans: dict[BudgetKey, _Plan]
    ) -> float:
        key = tracked.target.budget_key
        if key not in plans:
            plans[key] = self._plan(key, now)
        budget = self._budget(key)
        keep = budget.waiting_submissions if tracked.forced else self._reserve(budget)
        due = self._due_at(task_id, tracked, plans[key])
        return max(due, self._slot_time(key, now, keep))

    def eta(self, task_id: str) -> float | None:
        """Expected finish (epoch seconds), given the task was pending at its last poll."""
        tracked = self._tasks.get(task_id)
        if tracked is None:
            return None
        est = self.render_times.estimate(tracked.target.profile)
        return tracked.target.submitted_at + est.conditional_median(tracked.last_e or 0.0)

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


def _expired(sorted_times: list[float], now: float) -> int:
    """How many of these request times no longer count in the hour before `now`."""
    return bisect.bisect_right(sorted_times, now, key=lambda at: at + HOUR)
