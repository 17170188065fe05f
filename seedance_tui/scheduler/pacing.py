"""How a key's polls are paced so that its budget lasts: the gap between polls of a task
at each pace, and the plan that picks the paces (easy, tight, some tasks deferred) from
a simulation of the coming minutes.

While the window's count stays well under the limit over the coming window, the gap is
a quarter of the likely range (capped by the target latency). Otherwise it is the target
latency itself: the fewest polls that still see every finish in time. When some of those
would have to wait for a slot in the coming minutes (simulated: due polls in order, the
budget freeing as old requests age), whole tasks are deferred, newest first, as many as
leave the fewest finishes expected to be seen late, rather than every gap stretched:
nearly every finish seen in time beats all tasks a little late.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from dataclasses import dataclass

from .budget import HOUR, KeyBudget, expired
from .estimates import RenderEstimate, RenderTimes
from .tasks import IN_FLIGHT_HOLD, Tracked

CHECKS_PER_WINDOW = 4.0  # aim for about this many checks across the likely window
DEFAULT_MIN_INTERVAL = 5.0  # never poll one task more often (the docs' own advice)
DEFAULT_TARGET_LATENCY = 30.0  # cap on the in-window gap: how late a finish may be seen
DEFAULT_MAX_INTERVAL = 300.0  # an overdue task is still checked at least this often

PACING_HORIZON = 600.0  # look this far ahead for a moment the budget runs dry
LOAD_STEPS = 12  # the coming window's load is checked at this many moments
DEFER_STEPS = 12  # see `Pacer.make_plan`
EASY_SHARE = 0.6  # easy pace only while the hour's load stays under this share of the limit
DEFERRED_GAPS = 4.0  # a deferred task is checked this many target latencies apart
EASY, TIGHT, DEFERRED = 0, 1, 2  # paces: see `Pacer.make_plan`
MAX_POLLS_AHEAD = 64  # a task's polls counted in the coming window, at most


@dataclass(frozen=True, slots=True)
class Cadence:
    """The spacing of one task's polls: `poll_interval` is the shortest spacing between
    two polls, `target_latency` caps the gap while a finish is likely, `max_interval`
    caps it when overdue."""

    poll_interval: float
    target_latency: float
    max_interval: float

    def gap(self, est: RenderEstimate, pace: int) -> float:
        """Spacing of polls while a finish is likely, at this pace."""
        if pace == EASY:
            width = est.latest - est.earliest
            return min(self.target_latency, max(self.poll_interval, width / CHECKS_PER_WINDOW))
        if pace == TIGHT:
            return self.target_latency
        return min(self.max_interval, self.target_latency * DEFERRED_GAPS)

    def next_e(self, est: RenderEstimate, last_e: float | None, pace: int) -> float:
        """Seconds after submission of the next poll, given the latest one at `last_e`."""
        first, last = est.earliest, est.latest
        gap = self.gap(est, pace)
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


@dataclass(frozen=True, slots=True)
class Plan:
    """A key's pacing for now: tight or easy, and which tasks are deferred."""

    tight: bool
    deferred: frozenset[str]
    # An easy plan's margin: requests the coming window could take beyond its projected
    # peak before the pace would turn tight (inf: no limit).
    headroom: float = math.inf


EASY_PLAN = Plan(False, frozenset())


@dataclass(frozen=True, slots=True)
class Outcome:
    """What `Pacer._simulate` expects of a plan."""

    late: float  # finishes seen later than the target latency
    delayed: float  # seconds polls wait past their due time for a slot, summed


class Pacer:
    """Plans a key's polls from its budget, its tracked tasks and the render times."""

    def __init__(self, cadence: Cadence, render_times: RenderTimes) -> None:
        self.cadence = cadence
        self.render_times = render_times
        self._lifetime_cache: dict[tuple, tuple[RenderEstimate, float]] = {}

    def estimate_of(self, tracked: Tracked) -> RenderEstimate:
        """The render-time belief this task is scheduled by."""
        return self.render_times.scaled_estimate(tracked.target.profile, tracked.scale)

    def due_at(self, task_id: str, tracked: Tracked, plan: Plan) -> float:
        """When this task's next poll is due under the key's plan."""
        # Handed out and not answered yet: not due again for a while (a slow answer must
        # not draw a second poll of the same task), unless the answer never comes.
        held = -math.inf if tracked.in_flight_at is None else tracked.in_flight_at + IN_FLIGHT_HOLD
        if tracked.forced:
            return held
        target = tracked.target
        est = self.estimate_of(tracked)
        pace = DEFERRED if task_id in plan.deferred else TIGHT if plan.tight else EASY
        due = target.submitted_at + self.cadence.next_e(est, tracked.last_e, pace)
        return max(due, tracked.not_before, held)

    def _next_due(self, tracked: Tracked, est: RenderEstimate, pace: int, now: float) -> float:
        """When this task's next poll would go at this pace, were the budget no object
        (no earlier than `now`; a poll in flight not held back)."""
        if tracked.forced:
            return now
        due = tracked.target.submitted_at + self.cadence.next_e(est, tracked.last_e, pace)
        return max(due, tracked.not_before, now)

    def finish_chance(self, tracked: Tracked, now: float) -> float:
        """Chance a poll now finds the task finished, given it was pending at the last."""
        est = self.estimate_of(tracked)
        seen = est.cdf(tracked.last_e or 0.0)
        return (est.cdf(now - tracked.target.submitted_at) - seen) / max(1e-9, 1.0 - seen)

    def make_plan(
        self,
        budget: KeyBudget,
        tasks: list[tuple[str, Tracked]],
        now: float,
        handed_out: list[float],
    ) -> Plan:
        """How this key's polls are paced so that its budget lasts.

        While the window's count stays well under the limit over the coming window,
        polls go at the easy pace. Otherwise at the tight pace: one per target latency,
        the fewest that still see every finish in time. If some of those would have to
        wait for a slot in the coming minutes (`_simulate`), whole tasks are deferred,
        newest first, as many as leave the fewest finishes expected to be seen late:
        deferring a few tasks keeps the others on time, where stretching every gap
        would make every task late.
        """
        if budget.limit is None or not tasks:
            return EASY_PLAN
        budget.trim(now)
        # Every request made now counts against the budget for a whole window: spend
        # beyond the tight pace only while the window's count stays well under the
        # limit at every moment of the coming window, with the requests made so far
        # leaving it as they age, the tracked tasks polled at the easy pace, and new
        # jobs arriving as fast as over the last hour (each polled at the easy pace).
        span = budget.span
        old = budget.counted(handed_out, now)
        rate = self._arrival_rate(budget, now)
        keep = budget.reserved(now)
        allowance = EASY_SHARE * (budget.limit - keep)
        # A bound first, which needs no poll times: what the window holds now, plus the
        # most polls each task can get in the coming window (one per poll_interval, at
        # most MAX_POLLS_AHEAD), plus the arrivals. Far from the limit (most of a busy
        # hour under a generous budget) it settles the plan in a few operations per
        # task, where the simulation below costs dozens of estimate lookups per task.
        most = min(float(MAX_POLLS_AHEAD), span / self.cadence.poll_interval + 1.0)
        bound = len(old) + most * len(tasks) + rate * span
        if not bound > allowance:
            return Plan(False, frozenset(), headroom=allowance - bound)
        polls = sorted(p for _i, tr in tasks for p in self._poll_times(tr, now, now + span, EASY))
        peak, spent, i = 0.0, 0.0, 0
        for step in range(LOAD_STEPS + 1):
            at = now + span * step / LOAD_STEPS
            while i < len(polls) and polls[i][0] <= at:
                spent += polls[i][1]
                i += 1
            remaining_old = len(old) - expired(old, at, span)
            peak = max(peak, remaining_old + spent + rate * (at - now))
        if not peak > allowance:
            # Deferred tasks are back on time.
            return Plan(False, frozenset(), headroom=allowance - peak)
        baseline = self._simulate(budget, tasks, now, keep, frozenset(), handed_out)
        if baseline.delayed <= 1e-9:
            return Plan(True, frozenset())
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
            outcome = self._simulate(budget, tasks, now, keep, trial, handed_out)
            if outcome.late < best - 1e-6:
                deferred, best = trial, outcome.late
            if outcome.delayed <= 1e-9:
                break  # deferring more cannot help: nothing waits any more
        return Plan(True, deferred)

    def _simulate(
        self,
        budget: KeyBudget,
        tasks: list[tuple[str, Tracked]],
        now: float,
        keep: int,
        deferred: frozenset[str],
        handed_out: list[float],
    ) -> Outcome:
        """The coming minutes of this key's polls, deferred tasks at the deferred pace,
        the others on time: each poll goes at its due time or, when the window is full,
        at the next slot (earliest due first, as the budget frees up).

        Polls are weighted by the chance their task is still pending; a finish is late
        when it is seen more than the target latency after it happened. Returns the
        expected late finishes and the expected seconds of waiting for slots."""
        cadence = self.cadence
        span = budget.span
        cap = float(budget.limit - keep) if budget.limit is not None else math.inf
        # Requests counting against the window, oldest first: (time, weight).
        placed: deque[tuple[float, float]] = deque(
            (at, 1.0) for at in budget.counted(handed_out, now)
        )
        counted = float(len(placed))
        end = now + PACING_HORIZON
        heap: list[tuple[float, int, str, float]] = []
        info: dict[str, tuple[Tracked, RenderEstimate, float, int]] = {}
        for order, (task_id, tracked) in enumerate(tasks):
            est = self.estimate_of(tracked)
            pace = DEFERRED if task_id in deferred else TIGHT
            info[task_id] = (tracked, est, _alive(est, tracked), pace)
            due = self._next_due(tracked, est, pace, now)
            heapq.heappush(heap, (due, order, task_id, tracked.last_e or 0.0))
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
                late += weight - (1.0 - est.cdf(prev_e + cadence.target_latency)) / alive
                delayed += weight * (end - due)
                continue
            placed.append((at, weight))
            counted += weight
            clock = at
            delayed += weight * (at - due)
            submitted = tracked.target.submitted_at
            e = at - submitted
            if e - cadence.target_latency > prev_e:
                late += (est.cdf(e - cadence.target_latency) - est.cdf(prev_e)) / alive
            nxt = submitted + cadence.next_e(est, e, pace)
            heapq.heappush(heap, (nxt, order, task_id, e))
        return Outcome(late, delayed)

    def _arrival_rate(self, budget: KeyBudget, now: float) -> float:
        """Requests per second that jobs submitted from now on will likely need.

        Assumes the coming minutes look like the last hour: as many submissions per
        hour, each followed by as many polls as its profile needs on average at the
        easy pace.
        """
        while budget.recent_jobs and budget.recent_jobs[0][0] + HOUR <= now:
            budget.recent_jobs.popleft()
        needed = sum(1.0 + self._lifetime_polls(p) for _, p in budget.recent_jobs)
        return (1.0 / HOUR) * needed

    def _lifetime_polls(self, profile: tuple) -> float:
        """Expected polls of a task of this profile from submission to seen finished,
        at the easy pace."""
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
            e = self.cadence.next_e(est, e, EASY)
        self._lifetime_cache[profile] = (est, total)
        return total

    def _poll_times(
        self, tracked: Tracked, now: float, end: float, pace: int
    ) -> list[tuple[float, float]]:
        """This task's polls before `end` at this pace: (time, chance it is sent)."""
        target = tracked.target
        est = self.estimate_of(tracked)
        alive = _alive(est, tracked)
        e = tracked.last_e
        at = self._next_due(tracked, est, pace, now)
        out: list[tuple[float, float]] = []
        for _ in range(MAX_POLLS_AHEAD):
            if at > end:
                break
            # This poll is sent only if the previous one saw the task pending.
            out.append((at, (1.0 - est.cdf(e or 0.0)) / alive))
            e = at - target.submitted_at
            at = target.submitted_at + self.cadence.next_e(est, e, pace)
        return out


def _alive(est: RenderEstimate, tracked: Tracked) -> float:
    """Chance the task was still running at its latest poll (never quite 0)."""
    return max(1e-9, 1.0 - est.cdf(tracked.last_e or 0.0))
