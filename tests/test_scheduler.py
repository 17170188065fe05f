"""The scheduler on a virtual clock: unit tests, then property tests over random workloads."""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seedance_tui.models import BudgetKey, Provider
from seedance_tui.scheduler import (
    BURST_SPAN,
    DEFAULT_BURST,
    HOUR,
    RECOVERY_MIN,
    RECOVERY_SPACING,
    PollTarget,
    Scheduler,
)

KEY = BudgetKey(Provider.NANOPHOTO, "abc123")
OTHER = BudgetKey(Provider.SEEDANCE15PRO, "def456")
PROFILE = ("nanophoto", "720p", "8", False)
LIMITS: dict[str, int | None] = {"nanophoto": 100, "seedance15pro": None}


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make(clock: Clock, limits: dict[str, int | None] | None = None, **kw) -> Scheduler:
    return Scheduler(clock, LIMITS if limits is None else limits, rng=random.Random(0), **kw)


def target(task_id: str, at: float, key: BudgetKey = KEY, **kw) -> PollTarget:
    return PollTarget(task_id, key, PROFILE, at, **kw)


def drain(s: Scheduler, clock: Clock, key: BudgetKey = KEY) -> list[str]:
    """Poll what is due now as the engine would, all still pending."""
    due = s.due_polls()
    for task_id in due:
        s.record_request(key)
        s.on_poll_result(task_id, pending=True)
    return due


# -- cadence -------------------------------------------------------------------------


def test_first_poll_follows_the_prior_before_anything_is_learned() -> None:
    clock = Clock()
    s = make(clock)
    s.track(target("t1", clock.now))
    first = s.next_check("t1") - clock.now
    assert 60 < first < 120  # after the earliest likely finish, before the median
    assert s.eta("t1") - clock.now == pytest.approx(120, abs=5)
    assert s.due_polls() == []


def test_first_poll_lands_near_a_learned_render_time() -> None:
    clock = Clock()
    s = make(clock)
    rng = random.Random(1)
    for _ in range(40):
        s.learn(PROFILE, rng.uniform(95, 105))
    s.track(target("t1", clock.now))
    first = s.next_check("t1") - clock.now
    assert 90 <= first <= 105
    assert abs(s.eta("t1") - clock.now - 100) < 3
    # Tight distribution: tight polls around it.
    clock.now += first
    assert drain(s, clock) == ["t1"]
    assert s.next_check("t1") - clock.now <= 10


def test_a_slow_profile_borrows_the_provider_speed_of_its_siblings() -> None:
    clock = Clock()
    s = make(clock)
    for _ in range(30):
        s.learn(PROFILE, 240.0)  # this provider runs at twice the docs' estimate
    other = ("nanophoto", "1080p", "8", False)
    assert s.estimate(other).median > 1.5 * s.estimate(("seedance15pro", None, "5", False)).median


def test_polls_tighten_in_the_likely_window_and_relax_when_overdue() -> None:
    clock = Clock()
    s = make(clock, max_interval=300)
    start = clock.now
    s.track(target("t1", start))
    times = []
    for _ in range(14):
        clock.now = s.next_check("t1")
        assert drain(s, clock) == ["t1"]
        times.append(clock.now - start)
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    in_window = [g for t, g in zip(times, gaps, strict=False) if t < 170]
    assert max(in_window) <= 30 + 1e-6
    assert gaps[-1] > max(in_window)  # relaxed when overdue
    assert max(gaps) <= 300 + 1e-6  # within the cap
    assert all(g >= 5 - 1e-9 for g in gaps)


def test_eta_moves_later_when_the_task_is_overdue() -> None:
    clock = Clock()
    s = make(clock)
    s.track(target("t1", clock.now))
    first_eta = s.eta("t1")
    clock.now += 200
    s.note_external_poll("t1", clock.now)
    assert s.eta("t1") > first_eta
    assert s.eta("t1") >= clock.now


def test_finished_task_is_forgotten_and_learned() -> None:
    clock = Clock()
    s = make(clock)
    s.track(target("t1", clock.now))
    clock.now = s.next_check("t1")
    assert s.due_polls() == ["t1"]
    s.record_request(KEY)
    s.on_poll_result("t1", pending=False, generation_time=77.0)
    assert s.tracked() == []
    assert s.render_times.count(PROFILE) == 1
    s.learn(PROFILE, 78.0, task_id="t1")  # the same task again replaces, not adds
    assert s.render_times.count(PROFILE) == 1


def _one_at_a_time(s: Scheduler, clock: Clock, renders: list[float], *, server_times: bool):
    """Each job submitted a minute after the one before was seen; its latencies."""
    latencies = []
    for i, render in enumerate(renders):
        start = clock.now
        s.track(target(f"t{i}", start))
        while True:
            clock.now = s.next_check(f"t{i}")
            assert s.due_polls() == [f"t{i}"]
            s.record_request(KEY)
            if clock.now >= start + render:
                s.on_poll_result(
                    f"t{i}", pending=False, generation_time=render if server_times else None
                )
                latencies.append(clock.now - start - render)
                break
            s.on_poll_result(f"t{i}", pending=True)
        clock.now += 60
    return latencies


def test_a_prior_refuted_by_the_first_finishes_is_rescaled_at_once() -> None:
    # A server rendering in 20-40 s against the docs' 1-3 minutes, reporting render times.
    clock = Clock()
    s = make(clock)
    rng = random.Random(4)
    latencies = _one_at_a_time(s, clock, [rng.uniform(20, 40) for _ in range(6)], server_times=True)
    assert latencies[0] > 30  # the first one, on the prior alone, is seen late
    assert max(latencies[1:]) <= 10  # every one after it on time
    est = s.estimate(PROFILE)
    assert est.earliest < 20 and est.latest < 60


def test_without_render_times_first_checks_probe_earlier_until_a_render_is_bracketed() -> None:
    # The same server reporting no render time: a finish found at a task's first check
    # says only "at most that long"; the next task is probed twice as early.
    for seed in range(5):
        clock = Clock()
        s = make(clock)
        rng = random.Random(seed)
        renders = [rng.uniform(20, 40) for _ in range(8)]
        latencies = _one_at_a_time(s, clock, renders, server_times=False)
        assert max(latencies[3:]) <= 10, latencies  # the fourth job on time, and after
        assert s.estimate(PROFILE).latest < 60
    # A belief that is right is not probed: first checks that find tasks still running.
    clock = Clock()
    s = make(clock)
    rng = random.Random(9)
    _one_at_a_time(s, clock, [rng.uniform(100, 180) for _ in range(5)], server_times=False)
    s.track(target("next", clock.now))
    assert s.next_check("next") - clock.now == pytest.approx(90.0)


def test_the_prior_range_holds_while_the_renders_agree_with_it() -> None:
    clock = Clock()
    s = make(clock)
    rng = random.Random(2)
    for n in range(1, 60):
        s.learn(PROFILE, rng.uniform(60, 180))
        est = s.estimate(PROFILE)
        assert (est.earliest, est.latest) == (60.0, 180.0), n  # the docs' 1-3 minutes
    s.learn(PROFILE, 50.0)  # one faster than the prior allows moves the low end down
    assert s.estimate(PROFILE).earliest < 50.0
    narrow = make(clock)
    for _ in range(60):  # ...and many well inside it narrow the range
        narrow.learn(PROFILE, rng.uniform(100, 120))
    est = narrow.estimate(PROFILE)
    assert 95 < est.earliest < 101 and 119 < est.latest < 125


def _finite_everywhere(s: Scheduler, clock: Clock, task_id: str) -> None:
    eta, check = s.eta(task_id), s.next_check(task_id)
    assert eta is not None and math.isfinite(eta)
    assert check is None or (math.isfinite(check) and check >= clock.now - 1e-6)


def test_a_long_overdue_task_has_a_finite_eta() -> None:
    """The issue's two cases: no history and 900 s (or far more) of rendering; 20 learned
    ~60 s renders and 400 s. The conditional median was infinite there once the CDF
    rounded to 1.0."""
    for history, age in (
        ([], 900.0),
        ([], 86_400.0 * 30),
        ([60.0 + i % 3 for i in range(20)], 400.0),
    ):
        clock = Clock()
        s = make(clock)
        for seconds in history:
            s.learn(PROFILE, seconds)
        s.track(target("t1", clock.now - age, last_polled_at=clock.now - 5))
        _finite_everywhere(s, clock, "t1")
        assert s.eta("t1") >= clock.now - 5
        assert s.overdue("t1")
        assert math.isfinite(s.estimate(PROFILE).conditional_median(age))


@settings(max_examples=200, deadline=None)
@given(
    history=st.lists(st.floats(0.01, 1e6), max_size=60),
    age=st.one_of(st.floats(0, 1e12), st.sampled_from([0.0, 400.0, 900.0, 1e9])),
    polled=st.one_of(st.none(), st.floats(0, 1)),
    p=st.floats(0, 1),
)
def test_render_estimates_are_finite_for_every_age_and_history(
    history: list[float], age: float, polled: float | None, p: float
) -> None:
    clock = Clock()
    s = make(clock)
    for seconds in history:
        s.learn(PROFILE, seconds)
    est = s.estimate(PROFILE)
    assert math.isfinite(est.quantile(p)) and est.quantile(p) >= 0
    assert 0.0 <= est.cdf(age) <= 1.0
    assert est.cdf(age) <= est.cdf(age * 2 + 1) + 1e-12  # monotone
    median = est.conditional_median(age)
    assert math.isfinite(median) and median >= age
    assert math.isfinite(est.earliest) and math.isfinite(est.latest)
    assert 0 <= est.earliest <= est.latest
    last = None if polled is None else clock.now - age * polled
    s.track(target("t1", clock.now - age, last_polled_at=last))
    _finite_everywhere(s, clock, "t1")
    s.due_polls()
    _finite_everywhere(s, clock, "t1")
    wakeup = s.next_wakeup()
    assert wakeup is None or math.isfinite(wakeup)


# -- budget --------------------------------------------------------------------------


def test_budget_comes_from_the_ledger() -> None:
    clock = Clock()
    s = make(clock)
    s.load_ledger(KEY, [clock.now - HOUR - 5] + [clock.now - 600 + i for i in range(95)])
    b = s.budget(KEY)
    assert (b.limit, b.used, b.remaining) == (100, 95, 5)
    assert b.resets_at == clock.now - 600 + HOUR
    assert s.budget(OTHER).remaining is None


def test_a_ledger_reload_keeps_requests_not_persisted_yet() -> None:
    clock = Clock()
    s = make(clock)
    s.record_request(KEY)
    s.load_ledger(KEY, [clock.now - 100])  # the file does not have ours yet
    assert s.budget(KEY).used == 2
    s.load_ledger(KEY, [clock.now - 100, clock.now])  # now it does: no double count
    assert s.budget(KEY).used == 2


def test_polls_leave_the_reserve_and_waiting_submissions_their_share() -> None:
    clock = Clock()
    s = make(clock, reserve=3)
    s.load_ledger(KEY, [clock.now - 60] * 90)
    for i in range(10):
        s.track(target(f"t{i}", clock.now - 400))  # all overdue
    s.set_waiting_submissions(KEY, 2)
    due = drain(s, clock)
    assert len(due) == 100 - 90 - 3 - 2
    assert s.submit_delay(KEY) == 0  # submissions may use the rest
    for _ in range(5):
        s.record_request(KEY)
    assert s.submit_delay(KEY) > 0


def test_a_task_tracked_again_under_another_key_counts_against_that_key() -> None:
    """The tasks are looked at key by key: a task tracked again with another key (the
    user changed keys) leaves the first key's group for the other's, where its poll in
    flight counts (here against a burst of one); a spent key refuses its candidates
    while another key's still go."""
    clock = Clock()
    s = make(clock, {"nanophoto": 100, "seedance15pro": 100}, reserve=0, burst=1)
    s.load_ledger(KEY, [clock.now - 60] * 100)  # KEY spent for a minute
    s.track(target("k0", clock.now - 400))
    s.track(target("o0", clock.now - 400, key=OTHER))
    assert s.due_polls() == ["o0"]
    s.on_poll_result("o0", pending=True)
    s.track(target("k0", clock.now - 400, key=OTHER))  # k0 moves to a key with room
    clock.now += 1
    assert s.due_polls() == ["k0"]  # in flight, under OTHER
    assert not s.poll_now("o0")  # OTHER's burst of one is k0's poll
    s.on_poll_result("k0", pending=True)
    assert s.poll_now("o0")


def test_when_short_the_most_overdue_task_goes_first() -> None:
    clock = Clock()
    s = make(clock, reserve=0)
    s.load_ledger(KEY, [clock.now - 60] * 99)
    s.track(target("young", clock.now - 100))
    s.track(target("old", clock.now - 600))
    s.track(target("mid", clock.now - 200))
    assert s.due_polls() == ["old"]


def _learn_uniform(s: Scheduler, lo: float = 60.0, hi: float = 180.0) -> None:
    for i in range(50):
        s.learn(PROFILE, lo + (i + 0.5) * (hi - lo) / 50)


def test_an_easy_budget_polls_more_often_than_a_tight_one() -> None:
    def gaps(used: int) -> list[float]:
        clock = Clock()
        s = make(clock, reserve=0)
        _learn_uniform(s)
        s.load_ledger(KEY, [clock.now - 30] * used)
        s.track(target("t1", clock.now))
        out, last = [], clock.now
        for _ in range(4):
            clock.now = s.next_check("t1")
            assert drain(s, clock) == ["t1"]
            out.append(clock.now - last)
            last = clock.now
        return out

    easy, tight = gaps(0), gaps(60)
    # Tight: first check one target latency after the earliest finish, then every 30 s
    # (the fewest polls that still see a finish within 30 s).
    assert 85 <= tight[0] <= 90 and all(abs(g - 30) < 1e-6 for g in tight[1:])
    assert easy[0] <= tight[0] and all(e <= t for e, t in zip(easy[1:], tight[1:], strict=True))


def test_a_short_budget_defers_whole_tasks_newest_first_not_every_gap() -> None:
    clock = Clock()
    s = make(clock, reserve=0)
    _learn_uniform(s)
    # 85 of 100 requests used a few minutes ago: 15 left for the next ten minutes.
    s.load_ledger(KEY, [clock.now - 300] * 85)
    for i in range(10):
        s.track(target(f"t{i}", clock.now - 10 + i))  # a burst of ten, t9 the newest
    state = s.budget(KEY)
    assert state.tight and 0 < state.deferred < 10
    s.due_polls()  # the plan takes effect
    deferred = [f"t{i}" for i in range(10) if s.next_check(f"t{i}") - clock.now > 150]
    on_time = [f"t{i}" for i in range(10) if f"t{i}" not in deferred]
    assert len(deferred) == state.deferred
    assert deferred == [f"t{i}" for i in range(10 - len(deferred), 10)]  # the newest
    for task_id in on_time:  # the others keep the on-time schedule
        assert s.next_check(task_id) - clock.now < 90
    # Seen through: the on-time tasks are polled every 30 s, never over the budget.
    sent = 0
    for _ in range(200):
        nxt = s.next_wakeup()
        if nxt is None or nxt > clock.now + 400:
            break
        clock.now = max(clock.now, nxt)
        sent += len(drain(s, clock))
        assert s.budget(KEY).used <= 100
    assert sent > 0


def test_when_few_slots_remain_several_tasks_are_deferred_together() -> None:
    # 92 of 100 requests made 10 minutes ago: 8 slots for the next 50 minutes, for six
    # fresh tasks that need about 2.5 checks each. Deferring one alone frees a check
    # that covers no more than the one it gave up; deferring several lets the others be
    # covered to the end.
    clock = Clock()
    s = make(clock, reserve=0)
    _learn_uniform(s)
    s.load_ledger(KEY, [clock.now - 600] * 92)
    for i in range(6):
        s.track(target(f"t{i}", clock.now - 6 + i))
    state = s.budget(KEY)
    assert state.tight and state.deferred >= 2
    s.due_polls()
    deferred = [f"t{i}" for i in range(6) if s._tasks[f"t{i}"].deferred]
    assert deferred == [f"t{i}" for i in range(6 - len(deferred), 6)]  # the newest


def _submitted_lately(s: Scheduler, clock: Clock, count: int) -> None:
    """`count` submissions spread over the last hour, all finished since: the rate at
    which the scheduler expects fresh ones."""
    for i in range(count):
        task_id = f"done{i}"
        s.track(target(task_id, clock.now - HOUR + (i + 0.5) * HOUR / count))
        s.forget(task_id)


def test_the_standing_reserve_is_spent_when_a_slot_frees_within_the_slack() -> None:
    clock = Clock()
    s = make(clock, reserve=1)
    _submitted_lately(s, clock, 120)  # a fresh submission is all but sure to come
    s.track(target("t1", clock.now - 500))
    # 99 used, none leaving the window within a minute: the last slot waits for a
    # submission.
    s.load_ledger(KEY, [clock.now - 60] * 99)
    assert s.due_polls() == []
    assert s.submit_delay(KEY) == 0
    # One leaves within the minute: a fresh submission could take that one, so the
    # poll may have the slot left now.
    s.load_ledger(KEY, [clock.now - HOUR + 30] + [clock.now - 60] * 98)
    assert s.due_polls() == ["t1"]


def test_a_poll_held_by_the_reserve_wakes_when_the_slack_releases_it() -> None:
    # 99 of 100 used, the oldest leaving the window in 200 s: the last slot is kept for
    # a submission until then less the slack (60 s), when a fresh submission could take
    # the slot that frees instead. The poll goes at that moment, not when the slot frees.
    clock = Clock()
    start = clock.now
    s = make(clock, reserve=1)
    _submitted_lately(s, clock, 120)  # two a minute: the reserve never yields early
    s.track(target("t1", start - 500))  # overdue: due now
    s.load_ledger(KEY, [start - HOUR + 200] + [start - 60] * 98)
    assert s.due_polls() == []
    assert s.next_check("t1") == pytest.approx(start + 140)
    assert s.next_wakeup() == pytest.approx(start + 140)
    clock.now = s.next_wakeup()
    assert drain(s, clock) == ["t1"]
    # A submission arriving now still goes within the slack: when the oldest leaves.
    assert s.submit_delay(KEY) == pytest.approx(60)


def _reserve_case(submissions: int, *, polled_at: float) -> tuple[Scheduler, Clock]:
    """99 of 100 used, the oldest leaving in 30 minutes; one task, submitted 200 s ago
    and last seen pending `polled_at` seconds after its submission, is due now."""
    clock = Clock()
    s = make(clock, reserve=1)
    _submitted_lately(s, clock, submissions)
    submitted = clock.now - 200
    s.track(target("t1", submitted, last_polled_at=submitted + polled_at))
    s.load_ledger(KEY, [clock.now - HOUR + 1800] + [clock.now - 60] * 98)
    return s, clock


def test_the_reserve_yields_to_a_likely_finish_unless_submissions_are_frequent() -> None:
    # Past its latest likely finish (180 s), the task is most likely done: held for a
    # submission, its result would be seen half an hour late. With one submission an
    # hour, a fresh one is unlikely to come and wait meanwhile: the poll takes the slot.
    s, clock = _reserve_case(1, polled_at=150)
    assert s.pacer.finish_chance(s._tasks["t1"], clock.now) > 0.95
    assert drain(s, clock) == ["t1"]
    assert s.submit_delay(KEY) == pytest.approx(1800)  # the slot went; one would wait
    # Two submissions a minute: one is all but sure to come and wait half an hour.
    s, clock = _reserve_case(120, polled_at=150)
    assert s.due_polls() == []
    assert s.submit_delay(KEY) == 0
    assert s.next_check("t1") == pytest.approx(clock.now + 1800 - 60)  # the release


def test_the_reserve_yields_when_the_poll_comes_to_outweigh_a_submission() -> None:
    # Twenty submissions an hour, the task last seen pending at 178 s: at first a fresh
    # submission waiting up to half an hour weighs more than the poll; as the release
    # nears, the submission's risk shrinks with the time left and the poll's grows, so
    # the reserve yields before the release. The wake-up says when, and at that moment
    # the poll goes (not a moment earlier, and no busy loop).
    s, clock = _reserve_case(20, polled_at=178)
    start = clock.now
    assert s.due_polls() == []
    at = s.next_check("t1")
    assert at is not None and start < at < start + 1800 - 60
    assert s.next_wakeup() == pytest.approx(at)
    clock.now = at - 1.0
    assert s.due_polls() == []
    clock.now = at
    assert drain(s, clock) == ["t1"]


def test_deferred_tasks_come_back_when_the_budget_is_easy_again() -> None:
    clock = Clock()
    s = make(clock, reserve=0)
    _learn_uniform(s)
    s.load_ledger(KEY, [clock.now - 3300] * 95)  # leaves the window in 300 s
    for i in range(8):
        s.track(target(f"t{i}", clock.now))
    s.due_polls()
    assert s.budget(KEY).deferred > 0
    clock.now += 301  # the old requests have left the window
    s.due_polls()
    state = s.budget(KEY)
    assert state.deferred == 0 and not state.tight


def test_a_429_pauses_the_key_until_retry_after() -> None:
    clock = Clock()
    s = make(clock)
    s.track(target("t1", clock.now - 500))
    s.track(target("o1", clock.now - 500, key=OTHER))
    s.on_rate_limited(KEY, 120)
    assert s.due_polls() == ["o1"]
    assert s.submit_delay(KEY) == 120
    assert s.budget(KEY).paused_until == clock.now + 120
    assert s.next_check("t1") >= clock.now + 120
    clock.now += 119
    assert "t1" not in s.due_polls()
    clock.now += 1
    assert s.due_polls() == ["t1"]


def test_server_errors_back_the_task_off_with_jitter() -> None:
    waits = []
    for seed in range(5):
        clock = Clock()
        s = Scheduler(clock, LIMITS, rng=random.Random(seed))
        s.track(target("t1", clock.now - 500))
        backoffs = []
        for _ in range(4):
            clock.now = s.next_check("t1")
            assert s.due_polls() == ["t1"]
            s.record_request(KEY)
            s.on_poll_result("t1", pending=True, error=True)
            backoffs.append(s.next_check("t1") - clock.now)
        assert backoffs[-1] > backoffs[0]  # exponential
        waits.append(tuple(backoffs))
    assert len(set(waits)) > 1  # jittered


def test_poll_now_overrides_the_schedule_within_the_budget() -> None:
    clock = Clock()
    s = make(clock, reserve=5)
    s.track(target("t1", clock.now))
    assert s.poll_now("t1")
    assert s.due_polls() == ["t1"]
    s.on_poll_result("t1", pending=True)
    # It may use the standing reserve but not a waiting submission's share.
    s.load_ledger(KEY, [clock.now - 10] * 98)
    s.set_waiting_submissions(KEY, 2)
    assert not s.poll_now("t1")
    s.set_waiting_submissions(KEY, 1)
    assert s.poll_now("t1")
    assert s.due_polls() == ["t1"]
    assert not s.poll_now("unknown")


def test_external_polls_space_ours() -> None:
    clock = Clock()
    s = make(clock)
    start = clock.now
    s.track(target("t1", start))
    clock.now = s.next_check("t1")
    assert drain(s, clock) == ["t1"]
    ours_gap = s.next_check("t1") - clock.now
    # Another instance polls halfway to our next check: ours moves a full gap after it.
    other_at = clock.now + ours_gap / 2
    clock.now = other_at
    s.note_external_poll("t1", other_at)
    assert s.next_check("t1") >= other_at + ours_gap - 1e-6
    # An older external poll changes nothing.
    before = s.next_check("t1")
    s.note_external_poll("t1", start + 1)
    assert s.next_check("t1") == before


def test_next_wakeup_waits_for_a_freed_slot_not_a_busy_loop() -> None:
    clock = Clock()
    s = make(clock, reserve=0)
    oldest = clock.now - 3000
    s.load_ledger(KEY, [oldest] + [clock.now - 10] * 99)
    s.track(target("t1", clock.now - 500))
    assert s.due_polls() == []
    assert s.next_wakeup() == oldest + HOUR
    clock.now = s.next_wakeup()
    assert s.due_polls() == ["t1"]
    assert make(Clock()).next_wakeup() is None


def test_restart_resumes_with_learned_etas_and_the_ledger() -> None:
    clock = Clock()
    history = [(PROFILE, 150 + i % 7) for i in range(30)]
    ledger = [clock.now - 1000 + i for i in range(97)]
    s = make(clock, reserve=0)
    for profile, seconds in history:
        s.learn(profile, seconds)
    s.load_ledger(KEY, ledger)
    s.track(target("t1", clock.now - 20))
    expected = s.next_check("t1")

    fresh = make(clock, reserve=0)  # a new process: the same history and ledger
    for profile, seconds in history:
        fresh.learn(profile, seconds)
    fresh.load_ledger(KEY, ledger)
    fresh.track(target("t1", clock.now - 20))
    assert fresh.next_check("t1") == expected
    assert 140 <= fresh.next_check("t1") - (clock.now - 20) <= 160
    assert fresh.budget(KEY).remaining == 3
    clock.now = fresh.next_check("t1")
    assert len(drain(fresh, clock)) == 1


def test_a_429_on_either_endpoint_pauses_both() -> None:
    clock = Clock()
    s = make(clock)
    s.track(target("t1", clock.now - 500))
    # A poll drew the 429: submissions wait too.
    s.on_rate_limited(KEY, 30)
    assert s.submit_delay(KEY) == 30
    assert s.due_polls() == []
    clock.now += 31
    assert s.due_polls() == ["t1"]
    s.record_request(KEY)
    s.on_poll_result("t1", pending=True)
    # A submission drew it: polls wait too, and the loop sleeps until the pause ends.
    s.record_request(KEY)
    s.on_rate_limited(KEY, 200)
    paused_until = clock.now + 200
    assert s.next_check("t1") >= paused_until
    assert s.next_wakeup() >= paused_until
    clock.now = paused_until - 1
    assert s.due_polls() == []
    clock.now = s.next_check("t1")
    assert s.due_polls() == ["t1"]


def _overdue_tasks(s: Scheduler, clock: Clock, n: int) -> list[str]:
    ids = [f"t{i}" for i in range(n)]
    for task_id in ids:
        s.track(target(task_id, clock.now - 600))
    return ids


def test_after_a_pause_held_back_requests_are_spaced_not_released_at_once() -> None:
    # The case: 20 requests a minute, a 58 s Retry-After, six polls held back.
    clock = Clock()
    s = make(clock, {"nanophoto": 20}, windows={"nanophoto": 60.0}, reserve=0)
    _overdue_tasks(s, clock, 6)
    s.record_request(KEY)
    s.on_rate_limited(KEY, 58)
    end = clock.now + 58
    state = s.budget(KEY)
    assert state.paused_until == end and state.spacing == pytest.approx(3.0)
    sent: list[float] = []
    while len(sent) < 6:
        clock.now = s.next_wakeup()
        for task_id in drain(s, clock):
            sent.append(clock.now)
            assert task_id
    assert sent[0] >= end
    gaps = [b - a for a, b in zip(sent, sent[1:], strict=False)]
    assert min(gaps) >= 3.0 - 1e-9  # one at a time, at the limit's average pace
    # Submissions are spaced as well, and go before the held-back polls.
    s.on_rate_limited(KEY, 10)
    clock.now += 10
    s.set_waiting_submissions(KEY, 1)
    assert s.submit_delay(KEY) <= 3.0
    assert s.due_polls() == []


def test_the_spacing_ends_and_lengthens_with_repeated_429s() -> None:
    clock = Clock()
    s = make(clock, reserve=0)  # 100 an hour: spaced 36 s apart after a 429
    s.on_rate_limited(KEY, 10)
    state = s.budget(KEY)
    assert state.spaced_until == clock.now + 10 + 60  # the pause, then a minute spaced
    assert state.spacing == pytest.approx(36.0)
    clock.now += 30  # still spaced: a second 429 doubles the spell
    s.on_rate_limited(KEY, 10)
    assert s.budget(KEY).spaced_until == clock.now + 10 + 120
    clock.now += 10 + 120
    assert s.budget(KEY).spaced_until is None
    ids = _overdue_tasks(s, clock, 5)
    assert sorted(s.due_polls()) == sorted(ids)  # released together once it is over
    # A spell never outlasts the window the limit counts over.
    short = make(clock, {"nanophoto": 20}, windows={"nanophoto": 60.0})
    for _ in range(5):
        short.on_rate_limited(KEY, 10)
    assert short.budget(KEY).spaced_until == clock.now + 10 + 60


def test_a_persisted_pause_is_restored_with_its_spacing() -> None:
    clock = Clock()
    s = make(clock, reserve=0)
    ids = _overdue_tasks(s, clock, 3)
    s.restore_pause(KEY, clock.now + 20)  # another instance drew a 429
    assert s.due_polls() == [] and s.submit_delay(KEY) == 20
    clock.now += 20
    assert len(drain(s, clock)) == 1  # then one at a time
    assert s.due_polls() == []
    clock.now = s.next_wakeup()
    assert len(drain(s, clock)) == 1
    fresh = make(clock)
    fresh.restore_pause(KEY, clock.now - RECOVERY_MIN - 1)  # long over: nothing held back
    _overdue_tasks(fresh, clock, 3)
    assert sorted(fresh.due_polls()) == sorted(ids)


def test_no_key_gets_more_than_a_burst_in_one_second() -> None:
    clock = Clock()
    s = make(clock, {"nanophoto": 600, "seedance15pro": None})
    for key in (KEY, OTHER):  # limited or not
        for i in range(25):
            s.track(target(f"{key.provider.value}{i}", clock.now - 500, key=key))
    due = s.due_polls()
    assert sum(1 for i in due if i.startswith("nanophoto")) == DEFAULT_BURST
    assert sum(1 for i in due if i.startswith("seedance15pro")) == DEFAULT_BURST
    assert s.next_wakeup() == pytest.approx(clock.now + BURST_SPAN)


# -- per-key windows -------------------------------------------------------------------


def test_the_budget_window_is_the_providers_own() -> None:
    clock = Clock()
    s = make(clock, {"nanophoto": 20, "seedance15pro": 20}, windows={"nanophoto": 60.0})
    s.load_ledger(KEY, [clock.now - 30] * 20)
    s.load_ledger(OTHER, [clock.now - 30] * 20)
    state, other = s.budget(KEY), s.budget(OTHER)
    assert state.remaining == other.remaining == 0
    assert state.resets_at == clock.now + 30  # a minute after the oldest request
    assert other.resets_at == clock.now - 30 + HOUR  # an hour: no window configured
    assert s.submit_delay(KEY) == pytest.approx(30)
    s.track(target("t1", clock.now - 500))
    assert s.next_wakeup() == pytest.approx(clock.now + 30)
    clock.now += 30
    assert s.budget(KEY).remaining == 20 and s.budget(OTHER).remaining == 0
    assert s.due_polls() == ["t1"]


# -- property tests over random workloads --------------------------------------------


@dataclass
class SimJob:
    key: BudgetKey
    arrival: float
    render: float
    task_id: str
    submitted_at: float | None = None
    seen_at: float | None = None


@dataclass
class Sim:
    """The engine's loop against a provider that enforces the limit and misbehaves."""

    limits: dict[str, int | None]
    rng: random.Random
    p429: float
    p5xx: float
    clock: Clock = field(default_factory=Clock)
    sent: dict[BudgetKey, list[float]] = field(default_factory=dict)
    pauses: dict[BudgetKey, float] = field(default_factory=dict)
    waiting: dict[BudgetKey, int] = field(default_factory=dict)  # submissions queued per key

    def in_window(self, key: BudgetKey) -> int:
        return sum(1 for at in self.sent.get(key, ()) if at > self.clock.now - HOUR)

    def limit(self, key: BudgetKey) -> int | None:
        return self.limits.get(key.provider.value)

    def spacing(self, key: BudgetKey) -> float:
        """How far apart requests go while a key recovers from a 429."""
        limit = self.limit(key)
        return HOUR / limit if limit else RECOVERY_SPACING

    def last_sent(self, key: BudgetKey) -> float:
        return max(self.sent.get(key, ()), default=-math.inf)

    def request(self, key: BudgetKey) -> tuple[int, float | None]:
        """Send one request: the checks every request must pass happen here."""
        now = self.clock.now
        assert now >= self.pauses.get(key, -1.0), "request during a 429 pause"
        if now < self.pauses.get(key, -math.inf) + RECOVERY_MIN:
            # Released one at a time after a pause, never in a burst.
            assert now - self.last_sent(key) >= self.spacing(key) - 1e-6, "burst after a pause"
        sent = self.sent.setdefault(key, [])
        in_last_second = sum(1 for at in sent if at > now - BURST_SPAN)
        assert in_last_second < DEFAULT_BURST, "more than a burst in one second"
        sent.append(now)
        limit = self.limit(key)
        if limit is not None:
            assert self.in_window(key) <= limit, "hourly budget exceeded"
        roll = self.rng.random()
        if roll < self.p429:
            retry = self.rng.uniform(1, 300)
            self.pauses[key] = now + retry
            return 429, retry
        if roll < self.p429 + self.p5xx:
            return 500, None
        return 200, None


def run_sim(sim: Sim, jobs: list[SimJob], restart_at: float | None = None) -> Scheduler:
    s = Scheduler(sim.clock, sim.limits, rng=random.Random(0))
    start = sim.clock.now
    pending = deque(sorted(jobs, key=lambda j: j.arrival))
    queues: dict[BudgetKey, deque[SimJob]] = {}
    by_id = {j.task_id: j for j in jobs}
    learned: list[tuple[tuple, float]] = []
    for _ in range(20_000):
        now = sim.clock.now
        if restart_at is not None and now >= start + restart_at:
            s = restart(sim, jobs, learned)
            restart_at = None
        while pending and pending[0].arrival <= now - start:
            job = pending.popleft()
            queues.setdefault(job.key, deque()).append(job)
        for key, queue in queues.items():
            submit(sim, s, key, queue)
        for task_id in s.due_polls():
            job = by_id[task_id]
            if sim.pauses.get(job.key, 0) > sim.clock.now:
                s.poll_skipped(task_id)  # a 429 earlier in this batch paused the key
            else:
                poll(sim, s, job, learned)
        if all(j.seen_at is not None for j in jobs):
            return s
        wake = [w for w in [s.next_wakeup()] if w is not None]
        if pending:
            wake.append(start + pending[0].arrival)
        assert wake, "work left but nothing scheduled"
        sim.clock.now = max(now, min(wake))
        if sim.clock.now == now:
            sim.clock.now += 1e-3  # a wake-up that is due now must make progress next time
    raise AssertionError("simulation did not finish")


def submit(sim: Sim, s: Scheduler, key: BudgetKey, queue: deque[SimJob]) -> None:
    while queue:
        s.set_waiting_submissions(key, len(queue))
        sim.waiting[key] = len(queue)
        if s.submit_delay(key) > 0:
            state = s.budget(key)
            # Spaced after a pause (the scheduler's own account, checked against ours).
            spaced = state.spaced_until is not None and (
                sim.last_sent(key) + sim.spacing(key) > sim.clock.now
            )
            if spaced:
                assert state.spacing == pytest.approx(sim.spacing(key))
            # Or the key had its `burst` of requests within the last second.
            burst = sum(1 for at in sim.sent.get(key, ()) if at > sim.clock.now - BURST_SPAN)
            spaced |= burst >= DEFAULT_BURST
            if sim.pauses.get(key, 0) <= sim.clock.now and not spaced:
                assert sim.in_window(key) == sim.limit(key), "submission held back needlessly"
            return
        s.record_request(key)
        status, retry = sim.request(key)
        if status == 429:
            s.on_rate_limited(key, retry)
            return
        if status == 200:
            job = queue.popleft()
            job.submitted_at = sim.clock.now
            s.track(PollTarget(job.task_id, key, PROFILE, job.submitted_at))
    s.set_waiting_submissions(key, 0)
    sim.waiting[key] = 0


def poll(sim: Sim, s: Scheduler, job: SimJob, learned: list) -> None:
    s.record_request(job.key)
    status, retry = sim.request(job.key)
    limit = sim.limit(job.key)
    if limit is not None:
        assert sim.in_window(job.key) + sim.waiting.get(job.key, 0) <= limit, (
            "poll took a submission's share"
        )
    if status == 429:
        s.on_rate_limited(job.key, retry)
        s.on_poll_result(job.task_id, pending=True, error=True)
    elif status != 200:
        s.on_poll_result(job.task_id, pending=True, error=True)
    elif sim.clock.now >= job.submitted_at + job.render:
        s.on_poll_result(job.task_id, pending=False, generation_time=job.render)
        job.seen_at = sim.clock.now
        learned.append((PROFILE, job.render))
    else:
        s.on_poll_result(job.task_id, pending=True)


def restart(sim: Sim, jobs: list[SimJob], learned: list) -> Scheduler:
    """A new process: the ledger, the learned history and the pending tasks, nothing else."""
    s = Scheduler(sim.clock, sim.limits, rng=random.Random(1))
    for key, sent in sim.sent.items():
        s.load_ledger(key, [at for at in sent if at > sim.clock.now - HOUR])
        if key in sim.pauses:
            s.restore_pause(key, sim.pauses[key])  # persisted pause
    for profile, seconds in learned:
        s.learn(profile, seconds)
    for job in jobs:
        if job.submitted_at is not None and job.seen_at is None:
            s.track(PollTarget(job.task_id, job.key, PROFILE, job.submitted_at))
    return s


job_lists = st.lists(
    st.tuples(
        st.sampled_from([KEY, OTHER]),
        st.floats(0, 3600),  # arrival, seconds after the start
        st.floats(20, 400),  # render time
        st.integers(1, 6),  # burst size
    ),
    min_size=1,
    max_size=6,
)


def build_jobs(spec: list[tuple[BudgetKey, float, float, int]]) -> list[SimJob]:
    jobs = []
    for key, arrival, render, burst in spec:
        for i in range(burst):
            jobs.append(SimJob(key, arrival + i, render * (1 + 0.1 * i), f"j{len(jobs)}"))
    return jobs


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    spec=job_lists,
    limit=st.integers(8, 60),
    p429=st.sampled_from([0.0, 0.02, 0.1]),
    p5xx=st.sampled_from([0.0, 0.05, 0.2]),
    seed=st.integers(0, 1000),
    restart_at=st.one_of(st.none(), st.floats(0, 4000)),
)
def test_random_workloads_keep_every_rule(
    spec: list, limit: int, p429: float, p5xx: float, seed: int, restart_at: float | None
) -> None:
    """Budget never exceeded in any sliding hour, no request during a 429 pause (both
    checked at every request by `Sim.request`), across a restart too; every job is
    submitted and seen finished (nobody starves)."""
    sim = Sim({"nanophoto": limit, "seedance15pro": None}, random.Random(seed), p429, p5xx)
    jobs = build_jobs(spec)
    run_sim(sim, jobs, restart_at)
    assert all(j.seen_at is not None for j in jobs)


@settings(max_examples=25, deadline=None)
@given(spec=job_lists, seed=st.integers(0, 1000), limit=st.integers(10, 40))
def test_submissions_are_not_starved_by_polls(spec: list, seed: int, limit: int) -> None:
    """Checked by `Sim` at every step: no poll is sent that leaves less than the waiting
    submissions need, and a submission waits only when the window is genuinely full."""
    sim = Sim({"nanophoto": limit, "seedance15pro": None}, random.Random(seed), 0.0, 0.0)
    jobs = build_jobs(spec)
    run_sim(sim, jobs)
    assert all(j.submitted_at is not None for j in jobs)


@settings(max_examples=30, deadline=None)
@given(
    used=st.integers(0, 100),
    waiting=st.integers(0, 5),
    tasks=st.integers(1, 8),
    ages=st.lists(st.floats(0, 900), min_size=8, max_size=8),
)
def test_poll_now_and_due_polls_respect_the_budget(
    used: int, waiting: int, tasks: int, ages: list[float]
) -> None:
    clock = Clock()
    s = make(clock, reserve=3)
    s.load_ledger(KEY, [clock.now - 30] * used)
    s.set_waiting_submissions(KEY, waiting)
    for i in range(tasks):
        s.track(target(f"t{i}", clock.now - ages[i]))
    allowed_for_user = max(0, 100 - used - waiting)
    granted = [s.poll_now(f"t{i}") for i in range(tasks)]
    if allowed_for_user == 0:
        assert not any(granted)
    drain(s, clock)
    after = s.budget(KEY).used
    assert after <= max(used, 100 - waiting)  # never a waiting submission's share
    if not any(granted):
        assert after <= max(used, 100 - waiting - 3)  # and the reserve unless the user asked


def plans_made(s: Scheduler) -> list[int]:
    """A list that grows by one each time the scheduler makes a plan."""
    made: list[int] = []
    make_plan = s.pacer.make_plan
    s.pacer.make_plan = lambda *a: made.append(1) or make_plan(*a)  # type: ignore[method-assign]
    return made


def test_an_easy_plan_with_room_is_kept_across_answers_not_across_new_tasks() -> None:
    from seedance_tui.scheduler.facade import EASY_REUSE

    clock = Clock()
    s = make(clock, {"nanophoto": 100_000, "seedance15pro": None})
    made = plans_made(s)
    for i in range(20):
        s.track(target(f"t{i}", clock.now - 100 - i))
    s.next_wakeup()
    assert len(made) == 1
    clock.now += 1.5  # past PLAN_REUSE: only the headroom keeps the plan now
    assert drain(s, clock)  # answers (and requests) change what the scheduler knows
    s.next_wakeup()
    assert len(made) == 1
    s.track(target("new", clock.now))  # new load: planned again
    s.next_wakeup()
    assert len(made) == 2
    clock.now += EASY_REUSE  # too old, however easy
    s.next_wakeup()
    assert len(made) == 3


def test_a_tight_plan_is_made_again_after_an_answer() -> None:
    clock = Clock()
    s = make(clock)  # 100 an hour: 20 tasks leave no room to spare
    made = plans_made(s)
    for i in range(20):
        s.track(target(f"t{i}", clock.now - 100 - i))
    s.next_wakeup()
    clock.now += 1.5
    assert drain(s, clock)
    before = len(made)
    s.next_wakeup()
    assert len(made) == before + 1


def test_far_from_the_limit_the_plan_is_easy_without_working_out_poll_times() -> None:
    """The bound (the window's requests + the most polls each task can get + the
    arrivals) settles an easy plan alone when it stays under the easy share; closer to
    the limit the poll times decide, and the plans agree with what they say."""
    from seedance_tui.scheduler.pacing import EASY_SHARE, MAX_POLLS_AHEAD

    def plan_with(limit: int, used: int = 500) -> tuple[object, int, float]:
        clock = Clock()
        s = make(clock, {"nanophoto": limit, "seedance15pro": None}, reserve=0)
        _learn_uniform(s)
        s.load_ledger(KEY, [clock.now - 30] * used)
        for i in range(20):
            s.track(target(f"t{i}", clock.now - 100 - i))
        arrivals = s.pacer._arrival_rate(s._budget(KEY), clock.now) * HOUR
        worked_out: list[int] = []
        poll_times = s.pacer._poll_times
        s.pacer._poll_times = lambda *a: worked_out.append(1) or poll_times(*a)  # type: ignore[method-assign]
        return s._plan(KEY, clock.now), len(worked_out), used + 20 * MAX_POLLS_AHEAD + arrivals

    _plan, _worked_out, bound = plan_with(10**6)
    generous = math.ceil(bound / EASY_SHARE) + 1
    plan, worked_out, _bound = plan_with(generous)
    assert not plan.tight and worked_out == 0
    assert plan.headroom == pytest.approx(EASY_SHARE * generous - bound)
    # Just under the bound's reach: the poll times are worked out, and say easy still
    # (20 tasks in their likely window get far fewer than 64 polls each in an hour).
    plan, worked_out, _bound = plan_with(generous - 10)
    assert not plan.tight and worked_out == 20
    assert plan.headroom > EASY_SHARE * (generous - 10) - bound
    # Near the limit: tight, as before.
    plan, worked_out, _bound = plan_with(600)
    assert plan.tight and worked_out == 20
