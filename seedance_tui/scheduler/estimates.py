"""Render times: what is believed about how long a profile's renders take.

Learned per profile (provider, resolution, duration, audio) as a bounded window of
recent observations blended with a prior from the docs ("typically 1-3 minutes", longer
for high resolution and long clips). The prior's range bounds the likely range until the
observations refute an end of it; a prior whose scale their median refutes is rescaled
at once, and without render times from the server, first checks that keep finding tasks
finished probe earlier (`RenderTimes.probe`).
"""

from __future__ import annotations

import bisect
import contextlib
import math
from collections import deque
from dataclasses import dataclass

SAMPLE_WINDOW = 50  # recent observations kept per profile (tracks drift, bounds memory)
PRIOR_WEIGHT = 5.0  # the prior counts as this many observations...
PRIOR_FADE = 20  # ...fading linearly to nothing once a profile has this many
ANCHOR_TOLERANCE = 6.0  # see `RenderTimes._build`
PRIOR_POINTS = 20  # the prior is a uniform distribution, drawn as this many points
_P_MAX = 1.0 - 1e-12  # quantiles above this are this one's (the tail never ends)
FIRST_POLL_IMPUTE = 0.25  # see `RenderTimes.learn_between_checks`
SPEED_RANGE = 10.0  # a profile runs at most this many times faster or slower than the prior


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
    # The likely range of a render: see `RenderTimes._build`.
    earliest: float
    latest: float

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

    @property
    def median(self) -> float:
        return self.quantile(0.5)

    def _tail(self) -> float:
        return max(10.0, (self.points[-1] - self.points[0]) / 4.0)

    def scaled(self, factor: float) -> RenderEstimate:
        """The same belief for renders `factor` times as long."""
        return RenderEstimate(
            tuple(x * factor for x in self.points),
            self.positions,
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


def _provider_of(profile: tuple) -> object:
    return profile[0] if profile else None


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
        # (profile, scale) -> (the estimate it was scaled from, the scaled one)
        self._scaled: dict[tuple, tuple[RenderEstimate, RenderEstimate]] = {}

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

    def scaled_estimate(self, profile: tuple, scale: float) -> RenderEstimate:
        """The belief a task of this profile is scheduled by: its profile's, scaled for
        a probe (see `probe`)."""
        est = self.estimate(profile)
        if scale == 1.0:
            return est
        key = (tuple(profile), scale)
        cached = self._scaled.get(key)
        if cached is None or cached[0] is not est:
            cached = self._scaled[key] = (est, est.scaled(scale))
        return cached[1]

    def learn_between_checks(
        self,
        profile: tuple,
        task_id: str,
        *,
        before: float | None,
        seen: float,
        scale: float = 1.0,
    ) -> None:
        """A task was found finished `seen` seconds after submission, with no render
        time from the server; it was still pending at the check `before` seconds after
        submission (None: this was its first check). `scale` is the probe the task was
        scheduled as.

        The finish fell between the two checks: impute the median of the task's belief
        over that interval. A finish seen at the first check could have come any time
        before it, and the data can never say how early: impute low in the interval, so
        the belief errs towards polling early (which then measures the early tail)
        rather than drifting late."""
        est = self.scaled_estimate(profile, scale)
        first = before is None
        before = 0.0 if first else before
        f_before, f_seen = est.cdf(before), est.cdf(seen)
        share = FIRST_POLL_IMPUTE if first else 0.5
        quantile = est.quantile(f_before + (f_seen - f_before) * share)
        self.learn(profile, min(seen, max(before, quantile)), task_id, censored=first)
        if first:
            self.note_first_check(profile, found=True, seen=seen, scale=scale)

    def _invalidate(self, profile: tuple) -> None:
        # The provider-wide speed feeds the prior of every profile of that provider.
        self.version += 1
        provider = _provider_of(profile)
        for key in [k for k in self._cache if _provider_of(k) == provider]:
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
        return RenderEstimate(tuple(points), tuple(positions), max(0.0, earliest), latest)

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
        provider = _provider_of(profile)
        ratios = []
        for other, samples in self._samples.items():
            if other == profile or _provider_of(other) != provider:
                continue
            lo, hi = prior_range(other)
            ratios.extend(v / ((lo + hi) / 2.0) for v, _tid, _censored in samples)
        if not ratios:
            return 1.0
        ratios.sort()
        return min(3.0, max(1.0 / 3.0, ratios[len(ratios) // 2]))
