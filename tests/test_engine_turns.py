"""The engine's loop rests after a costly turn (TURN_SHARE): what falls due meanwhile,
and the polls that end meanwhile, are looked at together at the next turn — at most
MAX_TURN_GAP late — while a poll the user asked for ends the rest at once. All on a
virtual clock: the turn's CPU cost and every wait are the test's."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from seedance_tui.config import load_settings
from seedance_tui.engine import MAX_TURN_GAP, TURN_SHARE, Engine
from seedance_tui.store import Store

DUE_EVERY = 0.1  # the fake scheduler has something due this often
RUN_FOR = 10.0  # virtual seconds each loop runs


class Harness:
    """An engine on a virtual clock whose scheduler has a poll due every DUE_EVERY
    seconds; each turn of its loop costs `turn_cost` seconds of (fake) CPU."""

    def __init__(self, tmp_path: Path, turn_cost: float) -> None:
        self.now = 1000.0
        self.cpu = 0.0
        self.turn_cost = turn_cost
        self.turns: list[float] = []  # virtual times of the loop's turns
        settings = load_settings(db=tmp_path / "history.db",
                                 env={"NANOPHOTO_API_KEY": "sk-nano-test-0001",
                                      "SEEDANCE15PRO_API_KEY": "sk-seed-test-0001"})  # fmt: skip
        self.store = Store.open(settings.db_path)
        self.engine = Engine(settings, self.store, clock=lambda: 1.7e9 + self.now,
                             monotonic=lambda: self.now, sleep=self.sleep,
                             turn_cost=lambda: self.cpu)  # fmt: skip
        scheduler = self.engine.scheduler
        scheduler.due_polls = self.due_polls  # type: ignore[method-assign]
        scheduler.next_wakeup = lambda: self.now + DUE_EVERY  # type: ignore[method-assign]
        scheduler.poll_now = lambda task_id: True  # type: ignore[method-assign]

    async def sleep(self, delay: float) -> None:
        self.now += delay
        await asyncio.sleep(0)

    def due_polls(self) -> list[str]:
        self.turns.append(self.now)
        self.cpu += self.turn_cost  # the turn's bookkeeping
        return []

    async def run_until(self, until: float, during=None) -> None:
        loop = asyncio.create_task(self.engine.run())
        try:
            while self.now < until:
                if during is not None:
                    during()
                await asyncio.sleep(0)
        finally:
            loop.cancel()
            with pytest.raises(asyncio.CancelledError):
                await loop
            self.store.close()


async def test_a_cheap_turn_does_not_rest(tmp_path):
    harness = Harness(tmp_path, turn_cost=0.0)
    await harness.run_until(1000.0 + RUN_FOR)
    # A turn every time something falls due.
    assert len(harness.turns) >= RUN_FOR / DUE_EVERY * 0.9


async def test_a_costly_turn_rests_so_the_loop_takes_its_share_of_a_core(tmp_path):
    cost = 0.3 * TURN_SHARE  # the bookkeeping of a turn that rests 0.3 s
    harness = Harness(tmp_path, turn_cost=cost)
    wakes = 0

    def poll_ended() -> None:  # polls end all the time: each wakes the loop
        nonlocal wakes
        wakes += 1
        harness.engine.wake()

    await harness.run_until(1000.0 + RUN_FOR, during=poll_ended)
    gaps = [b - a for a, b in zip(harness.turns, harness.turns[1:], strict=False)]
    assert wakes > len(harness.turns) * 5  # many wakes, few turns
    assert min(gaps) == pytest.approx(cost / TURN_SHARE)
    assert cost * len(harness.turns) / RUN_FOR <= TURN_SHARE * 1.05


async def test_the_rest_never_exceeds_max_turn_gap(tmp_path):
    harness = Harness(tmp_path, turn_cost=1.0)  # a pathological turn
    await harness.run_until(1000.0 + RUN_FOR)
    gaps = [b - a for a, b in zip(harness.turns, harness.turns[1:], strict=False)]
    assert gaps and max(gaps) == pytest.approx(MAX_TURN_GAP)


async def test_a_poll_the_user_asked_for_ends_the_rest_at_once(tmp_path):
    harness = Harness(tmp_path, turn_cost=0.015)  # rests 0.5 s
    asked: list[float] = []

    def ask_once() -> None:
        if len(harness.turns) == 3 and not asked:
            asked.append(harness.now)
            harness.engine.poll_now("some-task")

    await harness.run_until(1000.0 + 3.0, during=ask_once)
    [at] = asked
    following = [t for t in harness.turns if t >= at]
    assert following[0] == pytest.approx(at)  # looked at once, not after the rest
