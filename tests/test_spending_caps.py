"""Spending caps enforced where money is spent: the engine's submit, a re-run, a batch
(its total before anything is queued) and the queue drainer; `over_cap` lets one job
past them; an orphan counts until settled. Against the simulator on loopback."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from seedance_tui.batch import Batch, BatchJob, queue_batch
from seedance_tui.caps import CapExceeded, Usage
from seedance_tui.config import Settings
from seedance_tui.engine import Engine
from seedance_tui.events import Notice
from seedance_tui.jobs import prepare
from seedance_tui.models import JobSpec, Provider, TaskStatus
from seedance_tui.session import Session
from seedance_tui.store import Filter, Store

FAST_POLLING = {"min_interval": 0.1, "target_latency": 0.3, "max_interval": 1.0,
                "prior": (0.3, 1.0)}  # fmt: skip
JOB = JobSpec(Provider.NANOPHOTO, "a paper boat on a pond", resolution="720p", duration="4",
              audio=True)  # fmt: skip  # 8 credits


@pytest.fixture
def capped(settings: Settings) -> Settings:
    """20 credits a day for nanophoto: two 8-credit jobs, not three."""
    settings.polling = dict(FAST_POLLING)
    settings.auto_download = False
    settings.providers[Provider.NANOPHOTO].daily_cap = 20
    return settings


def sim_tasks(sim) -> list[dict]:
    body = httpx.get(sim.base_url + "/_sim/tasks").json()
    return body["tasks"] if isinstance(body, dict) else body


async def test_a_cap_stops_a_submit_and_nothing_is_sent(capped, sim) -> None:
    store = Store.open(capped.db_path)
    engine = Engine(capped, store)
    try:
        job = prepare(JOB)
        assert job.quote.credits == 8
        first = await engine.submit(job)
        second = await engine.submit(job)
        assert first.status is second.status is TaskStatus.PROCESSING
        with pytest.raises(CapExceeded) as raised:
            await engine.submit(job)
        exc = raised.value
        assert (exc.cap, exc.usage.total, exc.cost) == (20, 16, 8)
        assert exc.provider is Provider.NANOPHOTO and exc.period == "daily"
        assert store.count() == 2  # no intent row for the refused job
        assert len(sim_tasks(sim)) == 2  # and no request
        # The other provider has no cap: its jobs go through.
        other = await engine.submit(prepare(JobSpec(Provider.SEEDANCE15PRO, "a kite")))
        assert other.status is TaskStatus.PROCESSING
    finally:
        await engine.aclose()
        store.close()


async def test_over_cap_lets_one_job_through_once(capped, sim) -> None:
    capped.providers[Provider.NANOPHOTO].daily_cap = 10
    store = Store.open(capped.db_path)
    engine = Engine(capped, store)
    try:
        job = prepare(JOB)
        await engine.submit(job)
        with pytest.raises(CapExceeded):
            await engine.submit(job)
        passed = await engine.submit(job, over_cap=True)
        assert passed.status is TaskStatus.PROCESSING
        with pytest.raises(CapExceeded):  # the override was for that job only
            await engine.submit(job)
        assert len(sim_tasks(sim)) == 2
    finally:
        await engine.aclose()
        store.close()


async def test_a_cap_stops_a_re_run_of_a_finished_task(capped, sim) -> None:
    capped.providers[Provider.NANOPHOTO].daily_cap = 12
    store = Store.open(capped.db_path)
    engine = Engine(capped, store)
    try:
        done = await engine.submit(prepare(JOB))
        await asyncio.wait_for(engine.run(until_idle=True), 30)
        done = store.get(done.id)
        assert done.status is TaskStatus.COMPLETED and done.credits_charged == 8
        # A re-run is the finished task's job, prepared again (as the dashboard's form does).
        with pytest.raises(CapExceeded) as raised:
            await engine.submit(prepare(done.spec))
        assert raised.value.usage == Usage(spent=8)
        assert store.count() == 1
    finally:
        await engine.aclose()
        store.close()


async def test_an_orphan_counts_at_its_estimate_until_settled(capped, sim) -> None:
    capped.providers[Provider.NANOPHOTO].daily_cap = 12
    store = Store.open(capped.db_path)
    engine = Engine(capped, store)
    try:
        [lost] = store.create_intents([(JOB, 8, "fp")], now=engine.clock())
        store.record_refusal(lost.id, TaskStatus.ORPHANED, "interrupted", engine.clock())
        with pytest.raises(CapExceeded) as raised:
            await engine.submit(prepare(JOB))
        assert raised.value.usage == Usage(at_risk=8)
        store.settle(lost.id, None, engine.clock())  # the provider's dashboard: not charged
        assert (await engine.submit(prepare(JOB))).status is TaskStatus.PROCESSING
    finally:
        await engine.aclose()
        store.close()


def batch_of(count: int) -> Batch:
    return Batch([BatchJob(i + 1, prepare(JOB)) for i in range(count)], [])


def test_a_batch_over_a_cap_queues_nothing(capped) -> None:
    store = Store.open(capped.db_path)
    try:
        with pytest.raises(CapExceeded) as raised:
            queue_batch(batch_of(3), store, capped, 1_800_000_000.0)
        assert (raised.value.cost, raised.value.jobs) == (24, 3)
        assert "these 3 jobs would cost ~24" in str(raised.value)
        assert store.count() == 0
        assert len(queue_batch(batch_of(2), store, capped, 1_800_000_000.0)) == 2
    finally:
        store.close()


async def test_the_queue_stops_at_the_cap_when_the_estimates_were_low(capped, sim) -> None:
    """Queued within the cap, then other work spent: the drainer sends what the cap
    still allows and keeps the rest queued, saying why."""
    store = Store.open(capped.db_path)
    queued = queue_batch(batch_of(2), store, capped, time.time())  # 16 of 20
    notices: list[Notice] = []
    async with Session(capped, store=store, with_engine=True) as session:
        engine = session.engine
        assert engine is not None
        engine.subscribe(lambda e: notices.append(e) if isinstance(e, Notice) else None)
        await engine.submit(prepare(JOB), over_cap=False)  # 8 spent outside the batch
        await asyncio.wait_for(engine.run(until_idle=True), 30)
        statuses = sorted(store.get(t.id).status.value for t in queued)
        assert statuses == ["completed", "queued"]
        assert store.count(Filter(status=("completed",))) == 2
        assert session.queue is not None and "nanophoto" in session.queue.capped()
    assert len(sim_tasks(sim)) == 2
    [stopped] = [n for n in notices if "spending cap" in n.message]
    assert "daily cap of nanophoto" in stopped.message and "1 nanophoto job(s) stay queued" in (
        stopped.message
    )


def test_the_day_turns_at_local_midnight_in_auckland(capped, monkeypatch) -> None:
    """TZ=Pacific/Auckland: jobs just before local midnight fill the day; one just after
    counts in the next day, though both are the same UTC day."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    monkeypatch.setenv("TZ", "Pacific/Auckland")
    time.tzset()
    try:
        auckland = ZoneInfo("Pacific/Auckland")
        before = dt.datetime(2027, 1, 15, 23, 59, 0, tzinfo=auckland).timestamp()
        after = dt.datetime(2027, 1, 16, 0, 0, 30, tzinfo=auckland).timestamp()
        rows = [(JOB, 8, "fp")]
        store = Store.open(capped.db_path)
        try:
            for _ in range(2):  # 16 of the 15th's 20
                store.create_intents(
                    rows, now=before, windows=capped.cap_windows([JOB.provider], before)
                )
            with pytest.raises(CapExceeded):
                store.create_intents(
                    rows, now=before + 30, windows=capped.cap_windows([JOB.provider], before + 30)
                )
            [next_day] = store.create_intents(
                rows, now=after, windows=capped.cap_windows([JOB.provider], after)
            )
            [window] = capped.cap_windows([JOB.provider], after)
            assert store.spending(JOB.provider, window.start, window.end) == Usage(held=8)
            utc_day = dt.datetime.fromtimestamp(next_day.created_at, dt.UTC).date()
            assert utc_day == dt.datetime.fromtimestamp(before, dt.UTC).date()  # one UTC day
        finally:
            store.close()
    finally:
        monkeypatch.undo()
        time.tzset()
