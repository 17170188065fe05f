"""Polling benchmark: our scheduler against the docs' 5-second loop, a 30-second grid
and a floor no poller can beat, on a virtual clock.

A discrete-event simulation, provider included: the simulated provider counts the
requests it accepts per key over a sliding window (an hour) and refuses (429, with
Retry-After) any beyond the limit; a refused request tells the poller nothing. Every
poller faces the same workload: jobs arriving in bursts, each rendering for a random
time (uniform over 60-180 s unless said otherwise).

* naive: the docs' advice as a script would follow it: submit at once, retry a refused
  submission every 5 s, poll every pending job every 5 s, ignoring budgets.
* grid: a plain rival that knows only the 60-180 s distribution: check each job at 90,
  120, 150 and 180 s after its submission (every 30 s after, should one still run);
  submissions first; when the hour is full, the earliest-due request takes the next
  free slot (a check that had to wait is followed by the next grid time after it).
* ours: the engine's loop as it drives `Scheduler` (submit when `submit_delay` says so,
  poll what `due_polls` returns, sleep until `next_wakeup`). It starts with nothing
  learned, and learns render times only from what its polls see (nanophoto reports each
  finished render's `generationTime`, which the engine passes on).
* floor: a lower bound on the p95 detection latency any poller can stake on this
  workload (below).

Targets for ours (issue 13): p95 detection latency <= 30 s with every submission within
60 s on every seed where the grid meets them, and on every `steady` seed; ours/floor p95
median no worse than the grid's in each mode; mean status requests per job <= 3; nothing
refused.

Exposure, and why the floor is a lower bound
--------------------------------------------
A poller does not know when a pending job will finish. Between two of its answered
checks of a job, "finished a moment after the first" looks exactly like "still
rendering": whatever the poller does, had the job finished then it would be seen only at
the second check. So the *exposure* of a job is the latency the poller staked on it: the
largest wait, over moments x from 60 s after submission (the earliest render) to the
job's real finish, from x to the poller's next answered check of it. The job's actual
latency is one of those waits (x = its finish), so latency <= exposure, and the p95 of
actual latencies is at most the p95 of exposures; it is lower when renders happen to
end just before checks, which is luck, not policy.

Claim: on a given workload (arrivals, renders), every poller that submits each job
within 60 s of its arrival and never has more than LIMIT requests accepted in an hour
has an exposure p95 above the floor. Let K = 4 be the jobs p95 lets be late (of 80).

1. Coverage. Exposure <= G means every x in [s+60, s+r] (submission s, render r) has an
   answered check of the job in [x, x+G]. If the exposure p95 is G, all but at most K
   jobs are covered so.
2. Counting. A covered job has, in any one-hour window W, at least as many checks as
   there are disjoint intervals [x, x+G] with x in [s+60, s+r] that fit inside W:
   ceil((len - G) / G), len being the overlap of W with [s+60, s+r+G] (ceil((r-60)/G)
   checks over its whole life). Its submission counts in W when it falls inside.
   Uncovered jobs are charged their submission only. Requests refused with a 429 are
   not counted by the provider, and they answer nothing, so they are no checks.
3. The integer program. For each job choose a submission moment within 60 s (in 10-s
   cells, each charged the least of its two ends) and whether it is covered; in every
   window of a set of one-hour windows (starts every 5 s) the counted requests must not
   exceed LIMIT; minimise the uncovered jobs. The poller's run, with G its exposure p95,
   is a feasible point with at most K uncovered jobs: every count is at most what the
   run did, and leaving windows out only loosens the program.
4. So if the program's optimum at G (or HiGHS's proven lower bound on it, should it stop
   early) exceeds K, no poller's exposure p95 is G. Every count only falls as G grows,
   so neither can any smaller G. The floor is the largest G (to 0.1 s) proven so; the
   "must be late" figure is that proven optimum at G = 30 s: above K, no poller can see
   95% of the jobs within 30 s without staking more than 30 s on some of them.

The floor is generous to the poller: the jobs left uncovered are chosen with hindsight
and cost no check at all, and a covered job's checks may sit wherever the counting
allows. So no real poller reaches it; the ratios p95 / floor say how far each is.

Other sections:
* fresh: the first jobs of a fresh history against a server whose renders take 20-40 s
  (the prior assumes 60-180 s): how late each of the first jobs is seen.
* seedance15pro: 200 jobs submitted at once and the 80-job workload on a key with the
  polite default budget (600 requests/hour): status requests per job and the busiest
  second and minute.

Run: python benchmarks/polling.py [--seeds 30] [--arrivals spread,steady] [--section ...]
The floor needs SciPy: pip install -e '.[bench]' (or pip install scipy).
"""

from __future__ import annotations

import argparse
import bisect
import heapq
import math
import random
import statistics
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from seedance_tui.models import BudgetKey, Provider  # noqa: E402
from seedance_tui.providers import get as get_adapter  # noqa: E402
from seedance_tui.scheduler import PollTarget, Scheduler  # noqa: E402

NANO = BudgetKey(Provider.NANOPHOTO, "bench")
SEED = BudgetKey(Provider.SEEDANCE15PRO, "bench")
NANO_PROFILE = ("nanophoto", "720p", "8", False)
SEED_PROFILE = ("seedance15pro", None, "5", False)
SCHED_OPTIONS: dict = {}  # experiments only
LIMIT = 100  # nanophoto's requests per hour per key
HOUR = 3600.0
NAIVE_INTERVAL = 5.0
GRID = (90.0, 120.0, 150.0, 180.0)  # the rival's checks, seconds after submission
GRID_STEP = 30.0

# Targets for ours.
MAX_MEAN_POLLS = 3.0
MAX_MEAN_POLLS_UNLIMITED = 4.0  # seedance15pro under its polite default budget
MAX_P95_LATENCY = 30.0
MAX_SUBMIT_WAIT = 60.0
P95 = 0.95

RENDER_MIN, RENDER_MAX = 60.0, 180.0


@dataclass
class Job:
    id: str
    arrival: float
    render: float  # seconds from acceptance to finish
    submitted_at: float | None = None
    detected_at: float | None = None
    polls: int = 0  # status requests sent for it, refused ones included
    checks: list[float] = field(default_factory=list)  # times of answered status requests

    @property
    def finish_at(self) -> float:
        assert self.submitted_at is not None
        return self.submitted_at + self.render


class ProviderSim:
    """Counts accepted requests per key over a sliding window; refuses those over the limit."""

    def __init__(
        self, limit: int | None, error_rate: float, rng: random.Random, window: float = HOUR
    ) -> None:
        self.limit = limit
        self.window = window
        self.error_rate = error_rate
        self.rng = rng
        self.accepted: deque[float] = deque()
        self.all_times: list[float] = []  # every request, for the per-second figures
        self.status_times: list[float] = []  # every status request
        self.refused = 0
        self.errors = 0

    def request(self, now: float, *, status: bool = False) -> tuple[int, float | None]:
        """HTTP-like status of one request (`status`: a status request, else a
        submission) and, for a 429, its Retry-After."""
        self.all_times.append(now)
        if status:
            self.status_times.append(now)
        window = self.accepted
        while window and window[0] + self.window <= now:
            window.popleft()
        if self.limit is not None and len(window) >= self.limit:
            self.refused += 1
            return 429, window[0] + self.window - now
        window.append(now)
        if self.error_rate and self.rng.random() < self.error_rate:
            self.errors += 1
            return 500, None
        return 200, None

    def busiest(self, span: float, *, status: bool = False) -> int:
        """Most requests (`status`: status requests) within any `span` seconds."""
        times = sorted(self.status_times if status else self.all_times)
        return max(
            (bisect.bisect_left(times, t + span) - i for i, t in enumerate(times)), default=0
        )


def workload(
    seed: int,
    jobs: int,
    hours: float,
    arrivals: str = "spread",
    renders: tuple[float, float] = (RENDER_MIN, RENDER_MAX),
) -> list[Job]:
    """Bursts of 1-10 jobs; renders uniform over `renders`.

    "spread": the bursts are spread over the span, one in each of equal slots (at a
    random moment of it), so the hourly rate stays near its average, though two bursts
    can fall close together. "random": each burst at a uniformly random moment, so some
    hours get several bursts. "steady": each burst waits for its share of the span
    after the one before (a burst of 10 is followed by a long pause, a single job by a
    short one), so every hour sees about the average rate.
    """
    rng = random.Random(seed)
    sizes: list[int] = []
    while sum(sizes) < jobs:
        sizes.append(min(rng.randint(1, 10), jobs - sum(sizes)))
    slot = hours * HOUR / len(sizes)
    out: list[Job] = []
    per_job = hours * HOUR / jobs
    for i, size in enumerate(sizes):
        if arrivals == "spread":
            at = (i + rng.random()) * slot
        elif arrivals == "steady":
            at = (sum(sizes[:i]) + rng.random()) * per_job
        else:
            at = rng.uniform(0, hours * HOUR)
        for _ in range(size):
            at += rng.uniform(0.0, 2.0)  # a user firing off a batch
            out.append(Job(f"job{len(out):04d}", at, rng.uniform(*renders)))
    out.sort(key=lambda j: j.arrival)
    return out


def fresh_jobs(workload_jobs: list[Job]) -> list[Job]:
    return [Job(j.id, j.arrival, j.render) for j in workload_jobs]


# -- ours --------------------------------------------------------------------------------


def run_ours(
    jobs: list[Job],
    seed: int,
    error_rate: float,
    *,
    key: BudgetKey = NANO,
    profile: tuple = NANO_PROFILE,
    limit: int | None = LIMIT,
    server_times: bool = True,
) -> ProviderSim:
    now = 0.0
    clock: Callable[[], float] = lambda: now  # noqa: E731
    sched = Scheduler(clock, {key.provider.value: limit}, rng=random.Random(seed), **SCHED_OPTIONS)
    provider = ProviderSim(limit, error_rate, random.Random(seed + 1))
    by_id = {j.id: j for j in jobs}
    arrivals = deque(jobs)
    queue: deque[Job] = deque()
    left = len(jobs)
    steps = 0
    while left:
        steps += 1
        if steps > 2_000_000:
            raise RuntimeError("simulation does not progress")
        while arrivals and arrivals[0].arrival <= now:
            queue.append(arrivals.popleft())
        _submit_waiting(sched, provider, queue, now, key, profile)
        for task_id in sched.due_polls():
            if sched.budget(key).paused_until is not None:
                sched.poll_skipped(task_id)  # a 429 earlier in this batch paused the key
                continue
            left -= _poll(sched, provider, by_id[task_id], now, key, server_times)
        wake = [t for t in (sched.next_wakeup(),) if t is not None]
        if arrivals:
            wake.append(arrivals[0].arrival)
        if not wake:
            break
        now = max(now, min(wake))
    return provider


def _submit_waiting(
    sched: Scheduler,
    provider: ProviderSim,
    queue: deque[Job],
    now: float,
    key: BudgetKey,
    profile: tuple,
) -> None:
    while queue:
        sched.set_waiting_submissions(key, len(queue))
        if sched.submit_delay(key) > 0:
            return
        sched.record_request(key, now)
        status, retry_after = provider.request(now)
        if status == 429:
            sched.on_rate_limited(key, retry_after)
            return
        if status != 200:
            continue  # a 5xx submission is retried at once (nothing was created)
        job = queue.popleft()
        job.submitted_at = now
        sched.track(PollTarget(job.id, key, profile, now))
    sched.set_waiting_submissions(key, 0)


def _poll(
    sched: Scheduler,
    provider: ProviderSim,
    job: Job,
    now: float,
    key: BudgetKey,
    server_times: bool,
) -> int:
    """One status request; 1 if it saw the job finished."""
    job.polls += 1
    sched.record_request(key, now)
    status, retry_after = provider.request(now, status=True)
    if status == 429:
        sched.on_rate_limited(key, retry_after)
        sched.poll_skipped(job.id)
        return 0
    if status != 200:
        sched.on_poll_result(job.id, pending=True, error=True)
        return 0
    job.checks.append(now)
    if now < job.finish_at:
        sched.on_poll_result(job.id, pending=True)
        return 0
    sched.on_poll_result(
        job.id, pending=False, generation_time=job.render if server_times else None
    )
    job.detected_at = now
    return 1


# -- the rivals --------------------------------------------------------------------------


def run_naive(jobs: list[Job], seed: int, error_rate: float, limit: int = LIMIT) -> ProviderSim:
    provider = ProviderSim(limit, error_rate, random.Random(seed + 1))
    events: list[tuple[float, int, str, Job]] = []  # (time, order, kind, job)
    order = 0
    for job in jobs:
        events.append((job.arrival, order, "submit", job))
        order += 1
    heapq.heapify(events)
    while events:
        now, _, kind, job = heapq.heappop(events)
        # The naive script ignores a 429's Retry-After.
        status, _retry_after = provider.request(now, status=kind == "poll")
        if kind == "submit":
            if status == 200:
                job.submitted_at = now
                kind = "poll"
        else:
            job.polls += 1
            if status == 200:
                job.checks.append(now)
                if now >= job.finish_at:
                    job.detected_at = now
                    continue
        order += 1
        heapq.heappush(events, (now + NAIVE_INTERVAL, order, kind, job))
    return provider


def _next_grid(elapsed: float) -> float:
    """The first grid time after `elapsed` seconds since submission."""
    for at in GRID:
        if at > elapsed + 1e-9:
            return at
    return GRID[-1] + GRID_STEP * (math.floor((elapsed - GRID[-1]) / GRID_STEP + 1e-9) + 1)


def run_grid(jobs: list[Job], seed: int, error_rate: float, limit: int = LIMIT) -> ProviderSim:
    """Checks at fixed times after submission; submissions first; the earliest-due
    request takes the next free slot of the hour (it counts its own requests)."""
    provider = ProviderSim(limit, error_rate, random.Random(seed + 1))
    sent: deque[float] = deque()  # its own requests in the last hour
    arrivals = deque(jobs)
    waiting: deque[Job] = deque()
    due: list[tuple[float, int, Job]] = []  # (due at, order, job)
    order = 0
    paused_until = 0.0
    now = 0.0
    left = len(jobs)
    while left:
        while arrivals and arrivals[0].arrival <= now:
            waiting.append(arrivals.popleft())
        while sent and sent[0] + HOUR <= now:
            sent.popleft()
        progressed = False
        if now >= paused_until and len(sent) < limit:
            if waiting:
                job = waiting[0]
                sent.append(now)
                status, retry = provider.request(now)
                if status == 429:
                    paused_until = now + (retry or 60.0)
                elif status == 200:
                    waiting.popleft()
                    job.submitted_at = now
                    order += 1
                    heapq.heappush(due, (now + GRID[0], order, job))
                progressed = True
            elif due and due[0][0] <= now:
                _at, _o, job = heapq.heappop(due)
                job.polls += 1
                sent.append(now)
                status, retry = provider.request(now, status=True)
                if status == 429:
                    paused_until = now + (retry or 60.0)
                if status == 200:
                    job.checks.append(now)
                if status == 200 and now >= job.finish_at:
                    job.detected_at = now
                    left -= 1
                else:
                    order += 1
                    nxt = job.submitted_at + _next_grid(now - job.submitted_at)
                    heapq.heappush(due, (nxt, order, job))
                progressed = True
        if progressed:
            continue
        # Sleep until something can happen: an arrival, a due check, a freed slot.
        wake = []
        if arrivals:
            wake.append(arrivals[0].arrival)
        if waiting or (due and due[0][0] <= now):
            free_at = sent[0] + HOUR if len(sent) >= limit else now
            wake.append(max(free_at, paused_until))
        elif due:
            wake.append(max(due[0][0], paused_until))
        if not wake:
            break
        now = max(now, min(wake))
    return provider


# -- the floor ---------------------------------------------------------------------------

CELL = 10.0  # submission moments are chosen in cells of this many seconds
CELLS = 6  # ...covering the 60 s a submission may wait
WINDOW_STEP = 5.0  # one-hour windows start this far apart


@dataclass(frozen=True)
class Floor:
    p95: float  # the largest latency proven impossible to promise at p95 (0: none)
    must_be_late: int  # jobs any poller must give up to see the rest within 30 s
    allowed: int  # jobs p95 allows to be late
    seconds: float  # time spent solving


def _milp():
    try:
        from scipy.optimize import Bounds, LinearConstraint, milp
        from scipy.sparse import csr_array
    except ImportError:
        return None
    return milp, LinearConstraint, Bounds, csr_array


def floor_program(jobs: list[Job], gap: float, limit: int):
    """The integer program of the module docstring for latency `gap`: (objective,
    constraints, bounds) for scipy's `milp`. Variables: for each job, one per submission
    cell with the job covered, then one per job given up."""
    import numpy as np

    milp, LinearConstraint, Bounds, csr_array = _milp()
    n = len(jobs)
    arrival = np.array([j.arrival for j in jobs])
    render = np.array([j.render for j in jobs])
    first = arrival.min() - HOUR
    last = arrival.max() + CELL * CELLS + RENDER_MAX + gap
    starts = np.arange(math.floor(first / WINDOW_STEP) * WINDOW_STEP, last, WINDOW_STEP)
    w = starts[:, None]  # windows x jobs
    eps = 1e-9

    def checks(s: np.ndarray) -> np.ndarray:
        """Least checks of covered jobs submitted at s (one per job) in each window."""
        lo = np.maximum(w, s[None, :] + RENDER_MIN)
        hi = np.minimum(w + HOUR, s[None, :] + render[None, :] + gap)
        return np.maximum(0.0, np.ceil((hi - lo - gap) / gap - eps))

    columns = []
    for cell in range(CELLS):
        s0 = arrival + CELL * cell
        s1 = s0 + CELL
        inside = (w <= s0[None, :]) & (s1[None, :] < w + HOUR)  # the whole cell in W
        columns.append(inside + np.minimum(checks(s0), checks(s1)))
    given_up = ((w <= arrival[None, :]) & (arrival[None, :] + CELL * CELLS < w + HOUR)).astype(
        float
    )
    a = np.concatenate(columns + [given_up], axis=1)  # windows x (CELLS*n + n)
    # A window whose counts cannot exceed the limit whatever is chosen constrains nothing.
    worst = np.maximum.reduce([c for c in columns]) if columns else given_up
    binding = worst.sum(axis=1) > limit
    a = a[binding]
    jobs_rows = np.zeros((n, CELLS * n + n))
    for j in range(n):
        jobs_rows[j, [cell * n + j for cell in range(CELLS)] + [CELLS * n + j]] = 1.0
    cost = np.concatenate([np.zeros(CELLS * n), np.ones(n)])
    constraints = [LinearConstraint(csr_array(jobs_rows), 1.0, 1.0)]
    if len(a):
        constraints.append(LinearConstraint(csr_array(a), -np.inf, float(limit)))
    return cost, constraints, Bounds(0.0, 1.0)


def least_given_up(jobs: list[Job], gap: float, limit: int) -> float:
    """A proven lower bound on the jobs any poller must give up to see the rest within
    `gap`: the program's optimum, or HiGHS's dual bound when it stops early."""
    import numpy as np

    milp = _milp()[0]
    cost, constraints, bounds = floor_program(jobs, gap, limit)
    integrality = np.ones_like(cost)
    options = {"time_limit": 60.0, "disp": False}
    result = milp(cost, constraints=constraints, bounds=bounds, integrality=integrality,
                  options=options)  # fmt: skip
    if result.status == 2:  # infeasible even giving every job up: bounded by all of them
        return float(len(jobs))
    bound = getattr(result, "mip_dual_bound", None)
    if result.status == 0 and result.fun is not None:
        bound = result.fun
    if bound is None or not math.isfinite(bound):
        return 0.0
    return math.ceil(bound - 1e-6)


def floor_for(jobs: list[Job], limit: int = LIMIT) -> Floor:
    started = time.perf_counter()
    allowed = len(jobs) - math.ceil(P95 * len(jobs))
    must = int(least_given_up(jobs, MAX_P95_LATENCY, limit))

    def impossible(gap: float) -> bool:
        return least_given_up(jobs, gap, limit) > allowed

    lo, hi = 0.0, MAX_P95_LATENCY
    if must > allowed:
        lo, hi = MAX_P95_LATENCY, 2 * MAX_P95_LATENCY
        while impossible(hi):
            lo, hi = hi, 2 * hi
            if hi > 3600:
                break
    while hi - lo > 0.1:
        mid = (lo + hi) / 2
        if impossible(mid):
            lo = mid
        else:
            hi = mid
    return Floor(math.floor(lo * 10) / 10, must, allowed, time.perf_counter() - started)


# -- figures -----------------------------------------------------------------------------


def quantile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def exposure(job: Job) -> float:
    """The latency staked on this job: the longest wait, over moments from the earliest
    render (60 s) to its real finish, until the next answered check (module docstring)."""
    assert job.submitted_at is not None
    worst, before = 0.0, RENDER_MIN
    for at in sorted(job.checks):
        elapsed = at - job.submitted_at
        if elapsed >= RENDER_MIN:
            worst = max(worst, elapsed - before)
            before = elapsed
        if elapsed >= job.render:
            return worst
    return math.inf  # never seen finished


def metrics(jobs: list[Job], provider: ProviderSim) -> dict[str, float]:
    done = [j for j in jobs if j.detected_at is not None]
    polls = [float(j.polls) for j in done]
    latency = [j.detected_at - j.finish_at for j in done]  # type: ignore[operator]
    staked = [exposure(j) for j in jobs if j.submitted_at is not None]
    waits = [j.submitted_at - j.arrival for j in jobs if j.submitted_at is not None]
    return {
        "req/job": statistics.fmean(polls) if polls else math.nan,
        "p50": quantile(latency, 0.50),
        "p95": quantile(latency, P95),
        "exposure p95": quantile(staked, P95) if len(staked) == len(jobs) else math.inf,
        "late": float(sum(1 for x in latency if x > MAX_P95_LATENCY)),
        "refused": float(provider.refused),
        "max wait": max(waits) if waits else math.nan,
        "done": float(len(done)),
        "busiest s": float(provider.busiest(1.0, status=True)),
        "busiest min": float(provider.busiest(60.0, status=True)),
    }


def misses(m: dict[str, float], jobs: int, max_polls: float = MAX_MEAN_POLLS) -> list[str]:
    out = []
    if not m["p95"] <= MAX_P95_LATENCY:
        out.append("p95")
    if not m["max wait"] <= MAX_SUBMIT_WAIT:
        out.append("wait")
    if not m["req/job"] <= max_polls:
        out.append("req/job")
    if m["refused"] != 0:
        out.append("refused")
    if m["done"] != jobs:
        out.append("unfinished")
    return out


def on_time(m: dict[str, float], jobs: int) -> bool:
    """The latency targets: p95 <= 30 s, every submission within 60 s, all seen."""
    return m["p95"] <= MAX_P95_LATENCY and m["max wait"] <= MAX_SUBMIT_WAIT and m["done"] == jobs


@dataclass
class SeedResult:
    seed: int
    rows: dict[str, dict[str, float]]  # poller -> metrics
    floor: Floor | None


def run_seed(seed: int, args: argparse.Namespace, arrivals: str) -> SeedResult:
    base = workload(seed, args.jobs, args.hours, arrivals)
    rows = {}
    for name, runner in (("naive 5 s", run_naive), ("grid 30 s", run_grid), ("ours", run_ours)):
        if name == "naive 5 s" and args.no_naive:
            continue
        jobs = fresh_jobs(base)
        rows[name] = metrics(jobs, runner(jobs, seed, args.error_rate))
    floor = floor_for(base) if args.floor else None
    return SeedResult(seed, rows, floor)


def _fmt(x: float, digits: int = 1) -> str:
    if isinstance(x, float) and math.isnan(x):
        return "-"
    return f"{x:,.{digits}f}"


def print_seed(result: SeedResult, jobs: int) -> None:
    floor = result.floor
    for name, m in result.rows.items():
        ratio = _ratio(m["p95"], floor)
        staked = _ratio(m["exposure p95"], floor)
        target = "ok" if not misses(m, jobs) else "missed " + ",".join(misses(m, jobs))
        print(
            f"{result.seed:>4} {name:<10} {_fmt(m['req/job'], 2):>8} {_fmt(m['p50']):>6} "
            f"{_fmt(m['p95']):>7} {ratio:>6} {_fmt(m['exposure p95']):>8} {staked:>6} "
            f"{m['late']:>5.0f} {m['refused']:>8,.0f} {_fmt(m['max wait']):>8}  {target}"
        )
    if floor is not None:
        verdict = (
            f"p95 <= 30 s impossible: {floor.must_be_late} jobs must be late, {floor.allowed} allowed"
            if floor.must_be_late > floor.allowed
            else f"at least {floor.must_be_late} late at 30 s ({floor.allowed} allowed)"
        )
        print(
            f"{result.seed:>4} {'floor':<10} {'':>8} {'':>6} {'':>7} {'':>6} "
            f"{_fmt(floor.p95):>8} {'1.00':>6} {floor.must_be_late:>5} {'':>8} {'':>8}  {verdict}"
        )


def _ratio(value: float, floor: Floor | None) -> str:
    if floor is None or floor.p95 <= 0 or not math.isfinite(value):
        return "-"
    return f"{value / floor.p95:.2f}"


def print_totals(arrivals: str, results: list[SeedResult], jobs: int) -> dict[str, object]:
    print(f"\n{arrivals}: totals over {len(results)} seeds")
    names = list(results[0].rows)
    with_floor = all(r.floor is not None for r in results)
    header = (
        f"{'poller':<10} {'all targets':>11} {'p95<=30,wait<=60':>16} {'median p95':>10} "
        f"{'p95/floor':>9} {'exposure/floor':>14} {'req/job':>7} {'max':>5} {'late':>5} "
        f"{'refused':>9}"
    )
    print(header)
    summary: dict[str, object] = {}
    for name in names:
        ms = [r.rows[name] for r in results]
        met = sum(1 for m in ms if not misses(m, jobs))
        timely = sum(1 for m in ms if on_time(m, jobs))
        ratio = _median_ratio(results, name, "p95") if with_floor else None
        staked = _median_ratio(results, name, "exposure p95") if with_floor else None
        print(
            f"{name:<10} {met:>8}/{len(ms):<2} {timely:>13}/{len(ms):<2} "
            f"{statistics.median(m['p95'] for m in ms):>10.1f} "
            f"{'-' if ratio is None else f'{ratio:.3f}':>9} "
            f"{'-' if staked is None else f'{staked:.3f}':>14} "
            f"{statistics.fmean(m['req/job'] for m in ms):>7.2f} "
            f"{max(m['req/job'] for m in ms):>5.2f} "
            f"{sum(m['late'] for m in ms):>5.0f} {sum(m['refused'] for m in ms):>9,.0f}"
        )
        summary[name] = {"timely": timely, "ratio": ratio, "staked": staked}
    if with_floor:
        impossible = [r.seed for r in results if r.floor.must_be_late > r.floor.allowed]
        floors = [r.floor.p95 for r in results]
        print(
            f"{'floor':<10} p95 <= 30 s provably impossible on {len(impossible)} seeds "
            f"{impossible}; median floor {statistics.median(floors):.1f} s "
            f"(solved in {sum(r.floor.seconds for r in results):.0f} s)"
        )
    grid_ok = {r.seed for r in results if on_time(r.rows["grid 30 s"], jobs)}
    ours_ok = {r.seed for r in results if on_time(r.rows["ours"], jobs)}
    lost = sorted(grid_ok - ours_ok)
    print(
        f"ours on time on {len(ours_ok)} seeds, the grid on {len(grid_ok)}; "
        f"seeds where the grid is and ours is not: {lost if lost else 'none'}; "
        f"ours and not the grid: {sorted(ours_ok - grid_ok) or 'none'}"
    )
    summary["lost"] = lost
    return summary


def _median_ratio(results: list[SeedResult], name: str, metric: str) -> float | None:
    ratios = [
        r.rows[name][metric] / r.floor.p95
        for r in results
        if r.floor is not None and r.floor.p95 > 0
    ]
    return statistics.median(ratios) if ratios else None


def section_limit(args: argparse.Namespace) -> bool:
    """The main comparison: every poller over N seeds per arrival mode."""
    ok = True
    for arrivals in args.arrivals.split(","):
        print(
            f"\n== {args.jobs} jobs over {args.hours:g} h in bursts of up to 10, renders "
            f"60-180 s, one key at {LIMIT} requests/h, {arrivals} arrivals, seeds "
            f"{args.seed}..{args.seed + args.seeds - 1} =="
        )
        print(
            f"{'seed':>4} {'poller':<10} {'req/job':>8} {'p50':>6} {'p95':>7} {'/floor':>6} "
            f"{'exposure':>8} {'/floor':>6} {'late':>5} {'refused':>8} {'max wait':>8}  targets"
        )
        results = []
        for seed in range(args.seed, args.seed + args.seeds):
            result = run_seed(seed, args, arrivals)
            print_seed(result, args.jobs)
            results.append(result)
            sys.stdout.flush()
        summary = print_totals(arrivals, results, args.jobs)
        ours = [r.rows["ours"] for r in results]
        ok &= not summary["lost"]
        ok &= all(m["req/job"] <= MAX_MEAN_POLLS and m["refused"] == 0 for m in ours)
        if arrivals == "steady":
            ok &= all(on_time(m, args.jobs) for m in ours)
        # The target is on the p95 of detection latencies; the exposure ratio is shown
        # beside it (the one a floor provably bounds), not a target of its own.
        ours_ratio, grid_ratio = summary["ours"]["ratio"], summary["grid 30 s"]["ratio"]
        if ours_ratio is not None and grid_ratio is not None:
            ok &= ours_ratio <= grid_ratio
    return ok


def section_fresh(args: argparse.Namespace) -> bool:
    """The first jobs of a fresh history, renders 20-40 s: how late each is seen."""
    print("\n== fresh history, a server rendering in 20-40 s (the prior assumes 60-180 s) ==")
    ok = True
    for server_times, label in ((True, "generationTime reported"), (False, "no render time")):
        for pattern in ("one at a time", "a burst of 6"):
            lates = []
            for seed in range(args.seed, args.seed + 10):
                rng = random.Random(seed)
                if pattern == "one at a time":
                    arrivals = [i * 120.0 for i in range(8)]
                else:
                    arrivals = [i * 1.0 for i in range(6)] + [600.0 + i * 120 for i in range(4)]
                jobs = [
                    Job(f"job{i}", at, rng.uniform(20.0, 40.0)) for i, at in enumerate(arrivals)
                ]
                run_ours(jobs, seed, 0.0, server_times=server_times)
                lates.append([j.detected_at - j.finish_at for j in jobs])
            worst = [max(col) for col in zip(*lates, strict=True)]
            cells = " ".join(f"{x:5.1f}" for x in worst)
            # One at a time: from the fourth job on. A burst of 6: every job of the
            # burst shares the prior's first check, so from the first job sent after
            # the burst was seen (with a render time from the server), or the second
            # (without one, the first check of the next job has to probe earlier once
            # more before a render is bracketed).
            start = 3 if pattern == "one at a time" else 6 if server_times else 7
            good = all(x <= 10.0 for x in worst[start:])
            ok &= good
            print(f"{label:<24} {pattern:<14} worst latency per job (s): {cells}  "
                  f"{'ok' if good else 'MISSED'}")  # fmt: skip
    print(
        "target: every finish seen within 10 s (the worst of 10 seeds) from the fourth job "
        "on; for a burst of 6, from the first (second without a render time) sent after it"
    )
    return ok


def section_seedance(args: argparse.Namespace) -> bool:
    """seedance15pro's polite default budget: ETA-driven pace, <= 4 requests per job."""
    limit = get_adapter(Provider.SEEDANCE15PRO).requests_per_hour
    print(
        f"\n== seedance15pro, renders 51-153 s: no budget (requests_per_hour = 0) against "
        f"its default budget ({limit} requests/h) =="
    )
    print(
        f"{'workload':<30} {'budget':>7} {'req/job':>8} {'p50':>6} {'p95':>7} {'late':>5} "
        f"{'refused':>8} {'max wait':>9} {'status/s':>8} {'status/min':>10}"
    )
    ok = True
    rng = random.Random(args.seed)
    # 200 tasks pending at once: a batch of 200 sent together.
    renders = [rng.uniform(51.0, 153.0) for _ in range(200)]
    cases = [("200 jobs at once", [Job(f"job{i:04d}", 0.0, r) for i, r in enumerate(renders)])]
    for seed in range(args.seed, args.seed + 3):
        jobs = workload(seed, args.jobs, args.hours, "spread", renders=(51.0, 153.0))
        cases.append((f"{args.jobs} jobs over {args.hours:g} h, seed {seed}", jobs))
    for label, base in cases:
        for budget in (None, limit):
            jobs = fresh_jobs(base)
            provider = run_ours(jobs, args.seed, 0.0, key=SEED, profile=SEED_PROFILE, limit=budget)
            m = metrics(jobs, provider)
            verdict = ""
            if budget is not None:
                good = m["req/job"] <= MAX_MEAN_POLLS_UNLIMITED and m["refused"] == 0
                ok &= good
                verdict = "ok" if good else "MISSED"
            print(
                f"{label:<30} {budget or 'none':>7} {m['req/job']:>8.2f} {m['p50']:>6.1f} "
                f"{m['p95']:>7.1f} {m['late']:>5.0f} {m['refused']:>8.0f} {m['max wait']:>9.1f} "
                f"{m['busiest s']:>8.0f} {m['busiest min']:>10.0f}  {verdict}"
            )
    print(
        f"target: <= {MAX_MEAN_POLLS_UNLIMITED:g} status requests per job under the default "
        "budget, nothing refused"
    )
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1, help="first seed")
    parser.add_argument("--seeds", type=int, default=30, help="seeds per arrival mode")
    parser.add_argument("--jobs", type=int, default=80)
    parser.add_argument("--hours", type=float, default=4.0)
    parser.add_argument("--arrivals", default="spread,steady", help="spread, steady, random")
    parser.add_argument("--error-rate", type=float, default=0.0, help="share of 5xx answers")
    parser.add_argument("--section", default="limit,fresh,seedance15pro",
                        help="which sections: limit, fresh, seedance15pro")  # fmt: skip
    parser.add_argument("--no-floor", dest="floor", action="store_false",
                        help="skip the floor (no SciPy needed)")  # fmt: skip
    parser.add_argument("--no-naive", action="store_true", help="skip the 5-second loop")
    args = parser.parse_args(argv)
    sections = args.section.split(",")
    if "limit" in sections and args.floor and _milp() is None:
        print(
            "The floor needs SciPy (scipy.optimize.milp): pip install -e '.[bench]' "
            "(or pip install scipy), or run with --no-floor.",
            file=sys.stderr,
        )
        return 2
    ok = True
    if "limit" in sections:
        ok &= section_limit(args)
    if "fresh" in sections:
        ok &= section_fresh(args)
    if "seedance15pro" in sections:
        ok &= section_seedance(args)
    print("\nall targets met" if ok else "\nsome targets MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
