"""`Scheduler`: what the engine and the ledger call. It tracks the pending tasks, keeps
one `KeyBudget` per key, learns render times and asks the `Pacer` for each key's plan.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Callable, Iterable
from typing import Any

from ..models import BudgetKey
from .budget import DEFAULT_BURST, DEFAULT_SUBMIT_SLACK, HOUR, BudgetState, KeyBudget
from .estimates import RenderEstimate, RenderTimes
from .pacing import (
    DEFAULT_MAX_INTERVAL,
    DEFAULT_MIN_INTERVAL,
    DEFAULT_TARGET_LATENCY,
    Cadence,
    Pacer,
    Plan,
)
from .tasks import PollTarget, Tracked

PLAN_REUSE = 1.0  # seconds a key's plan is reused while nothing changes
# Seconds an easy plan with room to spare is reused across answers and requests (see
# `Scheduler._plan`): with many tasks pending, planning again after every answer was
# most of a busy engine's work.
EASY_REUSE = 5.0
YIELD_STEPS = 24  # bisection steps for the moment the reserve yields to a poll


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
        target_latency = max(target_latency, poll_interval)
        self.cadence = Cadence(
            poll_interval=poll_interval,
            target_latency=target_latency,
            max_interval=max(max_interval, target_latency),
        )
        self.reserve = reserve
        self.rng = rng or random.Random()
        self.render_times = RenderTimes(prior=prior)
        self.pacer = Pacer(self.cadence, self.render_times)
        self._tasks: dict[str, Tracked] = {}
        # The tracked tasks by budget key, in tracking order (None: to be grouped again,
        # after a task came, went or changed its key): a look at one key's tasks must
        # not scan every key's.
        self._groups: dict[BudgetKey, list[tuple[str, Tracked]]] | None = None
        self._budgets: dict[BudgetKey, KeyBudget] = {}
        # Plans per key (see `_plan`), and a count of changes that invalidate them.
        self._plans: dict[BudgetKey, tuple[tuple[int, int], tuple[int, int], float, Plan]] = {}
        self._version = 0
        # Counts the changes that may add load beyond a plan's reckoning: a task tracked
        # anew, a ledger loaded (another instance's requests).
        self._load_version = 0

    # -- the request ledger ------------------------------------------------------------

    def _budget(self, key: BudgetKey) -> KeyBudget:
        budget = self._budgets.get(key)
        if budget is None:
            name = key.provider.value
            budget = self._budgets[key] = KeyBudget(
                limit=self.limits.get(name),
                span=self.windows.get(name, HOUR),
                standing=self.reserve,
                submit_slack=self.submit_slack,
                burst=self.burst,
            )
        return budget

    def _of_key(self, key: BudgetKey) -> list[tuple[str, Tracked]]:
        """This key's tracked tasks (id, tracked), in the order they were tracked."""
        groups = self._groups
        if groups is None:
            groups = self._groups = {}
            for task_id, tracked in self._tasks.items():
                groups.setdefault(tracked.target.budget_key, []).append((task_id, tracked))
        return groups.get(key, [])

    def _handed_out(self, key: BudgetKey) -> list[float]:
        """When this key's polls handed out and not answered yet were handed out, sorted."""
        return sorted(
            tr.in_flight_at for _i, tr in self._of_key(key) if tr.in_flight_at is not None
        )

    def load_ledger(self, key: BudgetKey, timestamps: Iterable[float]) -> None:
        """Replace what is known of a key's requests with the persisted ledger's.

        Requests recorded here in the last minute that the ledger does not show yet
        (not persisted so far) are kept, so a reload never forgets a request.
        """
        self._version += 1
        self._load_version += 1
        self._budget(key).load(timestamps, self.clock())

    def record_request(self, key: BudgetKey, at: float | None = None) -> None:
        """A request (submission or poll) was sent with this key."""
        self._version += 1
        self._budget(key).record(self.clock() if at is None else at)

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
        self._budget(key).rate_limited(self.clock(), retry_after)

    def restore_pause(self, key: BudgetKey, until: float) -> None:
        """A 429 pause of this key ends at `until` (clock time), as persisted by another
        instance or an earlier run: no request before it, and spaced for a while after,
        as if this instance had drawn the 429 itself. A pause long over changes nothing."""
        self._version += 1
        self._budget(key).restore_pause(self.clock(), until)

    def hold(self, key: BudgetKey, until: float) -> None:
        """No request with this key before `until` (clock time): the shared ledger is
        spent until then, or the key's host cannot be reached. Unlike a 429, nothing says
        the server counts more than the ledger, so what follows is not spaced."""
        self._version += 1
        self._budget(key).hold(until)

    def budget(self, key: BudgetKey) -> BudgetState:
        now = self.clock()
        plan = self._plan(key, now)
        return self._budget(key).state(now, tight=plan.tight, deferred=len(plan.deferred))

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
        slot = self._budget(key).slot_time(now, 0, self._handed_out(key))
        return max(0.0, slot - now)

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
        self._groups = None
        last_e = None
        if target.last_polled_at is not None:
            last_e = max(0.0, target.last_polled_at - target.submitted_at)
        existing = self._tasks.get(target.task_id)
        if existing is not None:
            existing.target = target
            existing.seen_pending(last_e)
            return
        # One task at a time probes a belief its first checks keep contradicting.
        scale = self.render_times.probe(target.profile) if last_e is None else 1.0
        profile = tuple(target.profile)
        if any(
            tuple(t.target.profile) == profile and t.scale == scale for t in self._tasks.values()
        ):
            scale = 1.0
        self._load_version += 1
        self._tasks[target.task_id] = Tracked(target, last_e, scale=scale)
        budget = self._budget(target.budget_key)
        if target.submitted_at > self.clock() - HOUR:
            budget.recent_jobs.append((target.submitted_at, profile))

    def forget(self, task_id: str) -> None:
        self._version += 1
        if self._tasks.pop(task_id, None) is not None:
            self._groups = None

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
        target = tracked.target
        if pending:
            if tracked.prev_e is None and tracked.last_e is not None:
                self.render_times.note_first_check(
                    target.profile,
                    found=False,
                    seen=now - target.submitted_at,
                    scale=tracked.scale,
                )
            tracked.prev_e = None
            tracked.seen_pending(now - target.submitted_at)
            return
        if generation_time is None:
            self.render_times.learn_between_checks(
                target.profile,
                target.task_id,
                before=tracked.prev_e,
                seen=now - target.submitted_at,
                scale=tracked.scale,
            )
        else:
            self.render_times.learn(target.profile, generation_time, target.task_id)
        self.forget(task_id)

    def _back_off(self, tracked: Tracked, now: float) -> None:
        # The failed poll told us nothing: the schedule resumes from the previous one,
        # and this task waits an exponentially growing, jittered time.
        tracked.take_back()
        tracked.failures += 1
        cadence = self.cadence
        backoff = min(cadence.max_interval, cadence.poll_interval * 2 ** min(tracked.failures, 10))
        tracked.not_before = now + backoff * (0.5 + self.rng.random() / 2.0)

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
        tracked.take_back()

    def note_external_poll(self, task_id: str, at: float) -> None:
        """Another instance polled this task at `at` (and it was still pending then).

        The next poll here follows the schedule from that poll, as if it had been ours.
        """
        self._version += 1
        tracked = self._tasks.get(task_id)
        if tracked is None:
            return
        tracked.seen_pending(at - tracked.target.submitted_at)

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
        budget = self._budget(key)
        if budget.free(now, budget.waiting_submissions, self._handed_out(key)) < 1:
            return False
        tracked.forced = True
        tracked.not_before = 0.0
        return True

    # -- the schedule ------------------------------------------------------------------

    def _plan(self, key: BudgetKey, now: float) -> Plan:
        """This key's pacing now: computed again after any change to what the scheduler
        knows, else reused for up to PLAN_REUSE seconds (the list asks for every row's
        next check in one repaint).

        An easy plan is also kept across answers and requests for up to EASY_REUSE
        seconds while its headroom covers what they can add: since it was made, each
        task's polls have only moved (an answer reschedules the rest of its task from
        the poll's time, never earlier), the coming window has slid by at most
        EASY_REUSE (a poll every `poll_interval` at most, per task), and a poll asked for
        adds one; no task was tracked anew, no ledger loaded, no belief changed. Within
        that margin the plan made again would be easy too: the same plan."""
        cached = self._plans.get(key)
        tasks = self._of_key(key)
        if cached is not None:
            version, load, at, plan = cached
            beliefs = self.render_times.version
            if version == (self._version, beliefs) and at <= now < at + PLAN_REUSE:
                return plan
            added = len(tasks) * (2.0 + EASY_REUSE / self.cadence.poll_interval)
            if (
                load == (self._load_version, beliefs)
                and not plan.tight
                and plan.headroom >= added
                and at <= now < at + EASY_REUSE
            ):
                return plan
        plan = self.pacer.make_plan(self._budget(key), tasks, now, self._handed_out(key))
        self._plans[key] = (
            (self._version, self.render_times.version),
            (self._load_version, self.render_times.version),
            now,
            plan,
        )
        return plan

    def _keep(
        self, tracked: Tracked, budget: KeyBudget, now: float, handed_out: list[float]
    ) -> int:
        """Requests a poll of this task must leave unspent now: a poll the user asked for
        may use the standing reserve, never the share of waiting submissions; so may a
        poll the reserve yields to (see `_reserve_yields_at`)."""
        if (
            tracked.forced
            or self._reserve_yields_at(
                tracked, budget, now, now, search=False, handed_out=handed_out
            )
            <= now
        ):
            return budget.waiting_submissions
        return budget.reserved(now)

    def _reserve_yields_at(
        self,
        tracked: Tracked,
        budget: KeyBudget,
        now: float,
        start: float,
        *,
        search: bool = True,
        handed_out: list[float] | None = None,
    ) -> float:
        """The first moment from `start` on at which a poll of this task may take the
        standing reserve before it is released anyway (inf: not before then; without
        `search`, inf unless that moment is `start` itself).

        The reserve is kept so that a fresh submission need not wait for a slot, until a
        request comes within `submit_slack` of leaving the window (its release). Until
        then it goes where it saves more waiting, in expectation: held, this poll waits
        for the release, and its task's result, if finished (by the chance the poll
        finds it so), is seen that much later; taken, the first fresh submission to come
        before the release (at the last hour's rate of submissions) waits from its
        arrival until the slot after the release frees, where it would have gone at
        once. A check of a task that is most likely done does not wait minutes for a
        submission that probably never comes; a long-shot check leaves the slot to a
        submission that likely will. The poll's side grows and the submission's shrinks
        as the release nears, so the moment is found by bisection."""
        if handed_out is None:
            handed_out = self._handed_out(tracked.target.budget_key)
        if self._reserve_stays(budget, now, handed_out):
            return math.inf
        waiting = budget.waiting_submissions
        keep = budget.reserved(now)
        released = budget.slot_time(now, keep, handed_out, standing=keep - waiting)
        start = max(now, start)
        if not released > start:
            return math.inf  # released by then: no need to take it
        rate = sum(1 for at, _p in budget.recent_jobs if at > now - HOUR) / HOUR
        slack = budget.submit_slack

        def takes(at: float) -> bool:
            held = self.pacer.finish_chance(tracked, at) * (released - at)
            return held > _first_arrival_wait(rate, released - at, slack)

        if takes(start):
            return start
        if not search:
            return math.inf
        lo, hi = start, released
        for _ in range(YIELD_STEPS):
            mid = (lo + hi) / 2.0
            if takes(mid):
                hi = mid
            else:
                lo = mid
        return hi if hi < released and takes(hi) else math.inf

    @staticmethod
    def _reserve_stays(budget: KeyBudget, now: float, handed_out: list[float]) -> bool:
        """No poll of this key takes the standing reserve now, whatever its task: there
        is none, submissions wait for it, or a slot is free beside it."""
        waiting = budget.waiting_submissions
        keep = budget.reserved(now)
        if budget.limit is None or waiting > 0 or keep <= waiting:
            return True
        budget.trim(now)
        # A slot free beside the reserve: nothing to decide.
        return len(budget.window) + len(budget.in_flight(handed_out, now)) + keep < budget.limit

    def due_polls(self) -> list[str]:
        """Task ids to poll now. Each is rescheduled as if polled; report results after.

        When a key cannot afford every due poll, the ones most likely to find a finished
        task go first, deferred tasks last; a poll the user asked for goes before all.
        """
        now = self.clock()
        plans: dict[BudgetKey, Plan] = {}
        candidates: list[tuple[tuple, str, Tracked]] = []
        for task_id, tracked in self._tasks.items():
            key = tracked.target.budget_key
            if key not in plans:
                plans[key] = plan = self._plan(key, now)
                for i, tr in self._of_key(key):
                    tr.deferred = i in plan.deferred
            if self.pacer.due_at(task_id, tracked, plans[key]) > now:
                continue
            rank = (not tracked.forced, tracked.deferred, -self.pacer.finish_chance(tracked, now))
            candidates.append((rank, task_id, tracked))
        candidates.sort(key=lambda c: c[0])
        due: list[str] = []
        handed: dict[BudgetKey, list[float]] = {}  # each key's polls handed out, sorted
        # (key, keep) pairs that cannot be afforded now. Within one call what a key has
        # free only shrinks (each poll handed out takes one), and the more a poll must
        # keep, the less it has: once a pair is refused, so is any larger keep after it.
        refused: set[tuple[BudgetKey, int]] = set()
        for _rank, task_id, tracked in candidates:
            key = tracked.target.budget_key
            budget = self._budget(key)
            if (key, budget.waiting_submissions) in refused:
                continue  # not even the least a poll keeps is free
            handed_out = handed.get(key)
            if handed_out is None:
                handed_out = handed[key] = self._handed_out(key)
            keep = self._keep(tracked, budget, now, handed_out)
            # Polls handed out count as in flight, so each one lowers what is free.
            if (key, keep) in refused or budget.free(now, keep, handed_out) < 1:
                refused.add((key, keep))
                continue
            self._version += 1
            tracked.hand_out(now)
            bisect.insort(handed_out, now)
            due.append(task_id)
        return due

    def next_check(self, task_id: str) -> float | None:
        """When this task will next be checked, as far as can be told now (None: not
        tracked, or not before the budget frees more than it can tell)."""
        tracked = self._tasks.get(task_id)
        if tracked is None:
            return None
        at = self._check_at(task_id, tracked, self.clock(), {})
        return at if math.isfinite(at) else None

    def _check_at(
        self,
        task_id: str,
        tracked: Tracked,
        now: float,
        plans: dict[BudgetKey, Plan],
        look: dict[tuple, Any] | None = None,
    ) -> float:
        """When this task will next be checked. `plans` and `look` hold what a look over
        every task computes once per key: its plan, its polls handed out (a scan of every
        task) and its slot times (a walk of its window): per task, a look would cost the
        square of the tasks."""
        key = tracked.target.budget_key
        if key not in plans:
            plans[key] = self._plan(key, now)
        budget = self._budget(key)
        due = self.pacer.due_at(task_id, tracked, plans[key])
        look = {} if look is None else look
        if ("handed", key) not in look:
            look["handed", key] = self._handed_out(key)
        handed_out = look["handed", key]

        def slot_time(keep: int, standing: int = 0) -> float:
            if ("slot", key, keep, standing) not in look:
                look["slot", key, keep, standing] = budget.slot_time(
                    now, keep, handed_out, standing=standing
                )
            return look["slot", key, keep, standing]

        waiting = budget.waiting_submissions
        if tracked.forced:
            return max(due, slot_time(waiting))
        if ("keep", key) not in look:
            look["keep", key] = budget.reserved(now)
            look["stays", key] = self._reserve_stays(budget, now, handed_out)
        keep = look["keep", key]
        # Of `keep`, the standing reserve is released as requests near their end in the
        # window (see `KeyBudget.reserved`): the poll may go then, not only once a slot
        # frees; or earlier, should the reserve yield to it.
        slot = slot_time(keep, keep - waiting)
        if look["stays", key]:
            return max(due, slot)
        yields = self._reserve_yields_at(tracked, budget, now, due, handed_out=handed_out)
        if yields < slot:
            slot = max(yields, slot_time(waiting))
        return max(due, slot)

    def eta(self, task_id: str) -> float | None:
        """Expected finish (epoch seconds), given the task was pending at its last poll.

        Always finite: however late the task, its conditional median lies a little past
        its last poll (see `overdue` for telling such a task apart)."""
        tracked = self._tasks.get(task_id)
        if tracked is None:
            return None
        est = self.pacer.estimate_of(tracked)
        return tracked.target.submitted_at + est.conditional_median(tracked.last_e or 0.0)

    def overdue(self, task_id: str) -> bool:
        """The task has been running longer than its profile's latest likely render."""
        tracked = self._tasks.get(task_id)
        if tracked is None:
            return False
        est = self.pacer.estimate_of(tracked)
        return self.clock() - tracked.target.submitted_at > est.latest

    def next_wakeup(self) -> float | None:
        """When something may next be due (a poll, the end of a pause, a freed slot)."""
        now = self.clock()
        plans: dict[BudgetKey, Plan] = {}
        look: dict[tuple, Any] = {}
        times = [self._check_at(i, tr, now, plans, look) for i, tr in self._tasks.items()]
        for key, budget in self._budgets.items():
            if budget.waiting_submissions > 0:
                delay = self.submit_delay(key)
                if delay > 0:
                    times.append(now + delay)
        finite = [t for t in times if math.isfinite(t)]
        return min(finite) if finite else None


def _first_arrival_wait(rate: float, span: float, slack: float) -> float:
    """Expected wait of the first of Poisson arrivals (`rate` per second) in the next
    `span` seconds, each waiting until `span + slack` from now: the integral over x in
    [0, span] of rate * exp(-rate * x) * (span + slack - x)."""
    if rate <= 0.0 or span <= 0.0:
        return 0.0
    come = -math.expm1(-rate * span)  # chance one comes at all
    early = (come - rate * span * math.exp(-rate * span)) / rate  # E[x; x < span]
    return (span + slack) * come - early
