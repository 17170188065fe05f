"""Two instances on one history file (two SSH sessions): no "database is locked", no lost
update, one shared rate budget, and no task polled more often because two are open.

Both engines, each with its own connection to the same file, share one simulator and
one accelerated clock (as in the fault soak), so an hour of budget passes in seconds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from pathlib import Path

import httpx
from conftest import NANO_KEY, SEED_KEY
from raw_sql import raw_sql

from seedance_tui.client import Client
from seedance_tui.config import load_settings
from seedance_tui.engine import MIN_POLL_SPACING, Engine
from seedance_tui.models import JobSpec, Provider, TaskStatus
from seedance_tui.simulator import SimConfig, SimulatorServer
from seedance_tui.store import Store

SCALE = 100.0
NANO_LIMIT = 100


class ScaledClock:
    def __init__(self, scale: float) -> None:
        self.scale, self.origin = scale, time.time()

    def __call__(self) -> float:
        return self.origin + (time.time() - self.origin) * self.scale

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.scale)


class Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(
            record.getMessage() + (str(record.exc_info) if record.exc_info else "")
        )


def _recording(claim_poll, claims: dict[str, list[float]]):
    def claim(id: str, now: float, *args, **kwargs) -> bool:
        claimed = claim_poll(id, now, *args, **kwargs)
        if claimed:
            claims.setdefault(id, []).append(now)
        return claimed

    return claim


async def _workload(
    db: Path, sim: SimulatorServer, clock: ScaledClock, instances: int, jobs: int, limit: int,
    gap: float, nano_only: bool,
):  # fmt: skip
    env = {
        "NANOPHOTO_BASE_URL": sim.base_url,
        "SEEDANCE15PRO_BASE_URL": sim.base_url,
        "NANOPHOTO_API_KEY": NANO_KEY,
        "SEEDANCE15PRO_API_KEY": SEED_KEY,
    }
    engines = []
    claims: dict[str, list[float]] = {}  # task id → when a poll of it was claimed
    for _ in range(instances):
        settings = load_settings(db=db, env=env)
        assert settings.providers[Provider.NANOPHOTO].requests_per_hour == NANO_LIMIT
        settings.providers[Provider.NANOPHOTO].requests_per_hour = limit  # as the simulator
        client = Client(
            {p: s.base_url for p, s in settings.providers.items()},
            {p: settings.key(p) for p in settings.providers},
            timeout=httpx.Timeout(2.0),
        )
        store = Store.open(db)
        store.claim_poll = _recording(store.claim_poll, claims)  # type: ignore[method-assign]
        engines.append(
            Engine(settings, store, client=client, clock=clock, monotonic=clock, sleep=clock.sleep)
        )
    loops = [asyncio.create_task(e.run(max_wait=0.03)) for e in engines]
    submissions = []
    for i in range(jobs):
        nano = nano_only or i % 3
        provider = Provider.NANOPHOTO if nano else Provider.SEEDANCE15PRO
        spec = JobSpec(provider, f"shared job {i}", duration="8" if nano else "5")
        # Alternate instances, as two people (or two tabs) submitting.
        submissions.append(asyncio.create_task(engines[i % instances].submit(spec)))
        await clock.sleep(gap)
    outcomes = await asyncio.gather(*submissions, return_exceptions=True)
    try:
        deadline = time.monotonic() + 120
        while pending := engines[0].store.pending():
            assert time.monotonic() < deadline, f"{len(pending)} tasks still pending after 120 s"
            for loop in loops:
                if loop.done():
                    loop.result()
            await asyncio.sleep(0.05)  # the interval between two looks
    finally:
        for loop in loops:
            loop.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        for engine in engines:
            await engine.aclose()
    store = engines[0].store
    # The polls as claimed (when each instance took the task's poll, on the shared
    # clock): their answers are recorded later, by however long a busy machine takes.
    polls = {task_id: sorted(times) for task_id, times in claims.items()}
    tasks = store.list(limit=None)
    [(status_requests,)] = raw_sql(
        store.path, "SELECT count(*) FROM requests WHERE endpoint='status' AND sent=1"
    )
    for engine in engines:
        engine.store.close()
    return outcomes, tasks, polls, status_requests


def _run(
    tmp_path: Path, instances: int, jobs: int, *, limit: int = NANO_LIMIT, scale: float = SCALE,
    gap: float = 20.0, nano_only: bool = False,
):  # fmt: skip
    clock = ScaledClock(scale)
    config = SimConfig(
        generation_time=(60.0, 180.0),
        failure_rate=0.1,
        seed=21,
        nanophoto_rate_limit=limit,
        clock=clock,
    )
    errors = Errors()
    logging.getLogger("seedance_tui").addHandler(errors)
    try:
        with SimulatorServer(config) as sim:
            db = tmp_path / f"history-{instances}.db"
            result = asyncio.run(_workload(db, sim, clock, instances, jobs, limit, gap, nano_only))
            sim_tasks = httpx.get(sim.base_url + "/_sim/tasks").json()["tasks"]
            ledger = httpx.get(sim.base_url + "/_sim/ledger").json()
    finally:
        logging.getLogger("seedance_tui").removeHandler(errors)
    return (*result, sim_tasks, ledger, errors.messages)


def test_two_instances_share_one_file_and_one_poll_schedule(tmp_path) -> None:
    jobs = 24
    outcomes, tasks, polls, status_two, sim_tasks, ledger, errors = _run(tmp_path, 2, jobs)
    assert [o for o in outcomes if isinstance(o, BaseException)] == []
    assert not [m for m in errors if "locked" in m or "OperationalError" in m], errors
    # No lost update: every job is one row, finished as the simulator says.
    assert len(tasks) == jobs and len({t.prompt for t in tasks}) == jobs
    sim_status = {t["task_id"]: t["status"] for t in sim_tasks}
    assert len(sim_tasks) == jobs
    for task in tasks:
        assert task.task_id in sim_status
        assert task.status.value == sim_status[task.task_id]
    assert Counter(t["request"]["prompt"] for t in sim_tasks).most_common(1)[0][1] == 1
    assert ledger["totals"]["rate_limited"] == 0
    # One poll schedule: the two instances never poll a task closer than the spacing...
    assert sum(len(times) for times in polls.values()) >= jobs
    for task_id, times in polls.items():
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        # (claims are compared as stored: ISO times to the millisecond)
        assert all(g >= MIN_POLL_SPACING - 0.001 for g in gaps), (task_id, gaps)
    # ...and together they poll about as much as one instance alone.
    _, tasks_one, _, status_one, *_ = _run(tmp_path, 1, jobs)
    assert all(t.status in (TaskStatus.COMPLETED, TaskStatus.FAILED) for t in tasks_one)
    print("status requests: two instances", status_two, "one", status_one)
    assert status_two <= status_one * 1.5 + 5, (status_two, status_one)


def test_two_instances_spend_one_rate_budget(tmp_path) -> None:
    """nanophoto's limit, scaled down to 30/h on both sides, binds: the jobs need more
    requests than one hour allows, and neither instance overruns what the other spent."""
    limit, jobs = 30, 24
    outcomes, tasks, _, _, sim_tasks, ledger, errors = _run(
        tmp_path, 2, jobs, limit=limit, scale=500.0, gap=10.0, nano_only=True
    )
    assert [o for o in outcomes if isinstance(o, BaseException)] == []
    assert not [m for m in errors if "locked" in m or "OperationalError" in m], errors
    nano = ledger["providers"]["nanophoto"]
    print("nanophoto requests", nano["requests"], "refused as over the limit", nano["rate_limited"])
    assert nano["requests"] > limit  # the budget was binding: more than an hour's worth
    assert nano["rate_limited"] == 0
    assert len(sim_tasks) == jobs
    assert all(t.status.is_terminal for t in tasks) and len(tasks) == jobs
