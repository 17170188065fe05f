"""The engine against the simulator over loopback: submissions, polls, restarts, faults."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path

import httpx
import pytest
from conftest import NANO_KEY, SEED_KEY
from raw_sql import raw_sql

from seedance_tui.client import Client
from seedance_tui.config import Settings
from seedance_tui.engine import Engine, TaskChanged
from seedance_tui.models import JobSpec, Mode, Provider, TaskStatus
from seedance_tui.simulator import SimConfig, SimulatorServer
from seedance_tui.store import Store

FAST_POLLING = {
    "min_interval": 0.1,
    "target_latency": 0.3,
    "max_interval": 1.0,
    "prior": (0.3, 1.0),
}

JOBS = [
    JobSpec(Provider.NANOPHOTO, "a golden retriever on a beach", resolution="720p", duration="8", audio=True),
    JobSpec(Provider.NANOPHOTO, "the character comes alive", mode=Mode.IMAGE_TO_VIDEO,
            image_urls=("https://static.nanophoto.ai/demo/nano-banana-pro.webp",), resolution="1080p"),
    JobSpec(Provider.SEEDANCE15PRO, "drone shot over a night market", duration="10"),
    JobSpec(Provider.SEEDANCE15PRO, "a frame comes alive", mode=Mode.IMAGE_TO_VIDEO,
            image_urls=("https://cdn.example.com/reference/frame01.png",), audio=True),
]  # fmt: skip


@pytest.fixture
def fast(settings: Settings) -> Settings:
    settings.polling = dict(FAST_POLLING)
    return settings


def sim_ledger(sim: SimulatorServer) -> dict:
    return httpx.get(sim.base_url + "/_sim/ledger").json()


def sim_tasks(sim: SimulatorServer) -> list[dict]:
    body = httpx.get(sim.base_url + "/_sim/tasks").json()
    return body["tasks"] if isinstance(body, dict) else body


async def run_jobs(settings: Settings, jobs: list[JobSpec]) -> tuple[Store, list]:
    store = Store.open(settings.db_path)
    engine = Engine(settings, store)
    try:
        submitted = [await engine.submit(job) for job in jobs]
        await engine.run(until_idle=True)
    finally:
        await engine.aclose()
    return store, [store.get(t.id) for t in submitted]


async def test_every_provider_and_mode_completes_with_urls_and_charges(fast, sim):
    store, tasks = await run_jobs(fast, JOBS)
    assert [t.status for t in tasks] == [TaskStatus.COMPLETED] * 4
    for task in tasks:
        assert task.task_id and task.video_urls
        assert task.video_urls[0].startswith(sim.base_url + "/media/")
        assert task.credits_charged == task.credits_estimated
    assert [t.credits_charged for t in tasks] == [16, 8, 130, 130]
    summary = store.credits_summary(tasks[0].created_at)["providers"]
    ledger = sim_ledger(sim)["providers"]
    for provider in ("nanophoto", "seedance15pro"):
        assert summary[provider]["all"] == ledger[provider]["net"]
    assert len(sim_tasks(sim)) == 4  # none submitted twice


async def test_a_failed_render_is_refunded_and_counted_so(fast, sim):
    httpx.post(sim.base_url + "/_sim/config", json={"failure_rate": 1.0})
    store, tasks = await run_jobs(fast, [JOBS[0], JOBS[2]])
    for task in tasks:
        assert task.status is TaskStatus.FAILED
        assert task.error
        assert task.credits_refunded == task.credits_charged > 0
        assert task.credits_net == 0
    ledger = sim_ledger(sim)["providers"]
    summary = store.credits_summary(tasks[0].created_at)["providers"]
    for provider in ("nanophoto", "seedance15pro"):
        assert summary[provider]["all"] == ledger[provider]["net"] == 0
        assert summary[provider]["refunded"] == ledger[provider]["refunded"] > 0


class Spy(httpx.AsyncBaseTransport):
    """Forwards to loopback, noting what the history file held when each request left."""

    def __init__(self, db_path) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.db_path = db_path
        self.seen: list[tuple[str, list]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        with sqlite3.connect(self.db_path) as conn:
            rows = conn.execute("SELECT status, task_id FROM tasks").fetchall()
        self.seen.append((request.url.path, rows))
        return await self.inner.handle_async_request(request)


async def test_the_intent_is_committed_before_generate_is_sent(fast, sim):
    store = Store.open(fast.db_path)
    spy = Spy(fast.db_path)
    engine = Engine(fast, store)
    engine.client = engine.ledger.client = Client(
        {p: s.base_url for p, s in fast.providers.items()},
        {p: fast.key(p) for p in Provider}, transport=spy,
    )  # fmt: skip
    shown: list[tuple[str, str | None]] = []
    engine.subscribe(
        lambda e: (
            isinstance(e, TaskChanged)
            and shown.append((e.task.status.value, Store.open(fast.db_path).get(e.task.id).task_id))
        )
    )
    task = await engine.submit(JOBS[0])
    await engine.aclose()
    path, rows = spy.seen[0]
    assert path.endswith("/generate")
    assert rows == [("submitting", None)]  # durable before it was sent
    # ...and the answer was durable before it was shown: the row had its task id then.
    assert shown[-1] == ("processing", task.task_id)


async def test_pending_tasks_are_polled_after_a_restart(fast, sim):
    store = Store.open(fast.db_path)
    first = Engine(fast, store)
    submitted = [await first.submit(job) for job in JOBS[:2]]
    await first.aclose()
    store.close()
    assert all(t.status is TaskStatus.PROCESSING for t in submitted)

    # A new process: nothing but the history file tells it what is pending.
    store = Store.open(fast.db_path)
    second = Engine(fast, store)
    await second.run(until_idle=True)
    await second.aclose()
    assert [store.get(t.id).status for t in submitted] == [TaskStatus.COMPLETED] * 2
    assert len(sim_tasks(sim)) == 2


async def test_an_intent_left_by_a_dead_process_becomes_orphaned(fast, sim):
    store = Store.open(fast.db_path)
    task = store.create_intent(JOBS[0], estimate=16, key_fingerprint="x", now=1_700_000_000)
    raw_sql(store.path, "UPDATE tasks SET owner=? WHERE id=?", ("nohost-here:1", task.id))
    raw_sql(
        store.path,
        "UPDATE tasks SET owner=? WHERE id=?",
        (f"{os.uname().nodename}:999999", task.id),
    )
    engine = Engine(fast, store)
    engine.start()
    await engine.aclose()
    orphan = store.get(task.id)
    assert orphan.status is TaskStatus.ORPHANED
    assert "may have accepted" in orphan.error


async def test_a_lost_generate_answer_is_orphaned_not_resent(fast, sim):
    httpx.post(
        sim.base_url + "/_sim/config",
        json={"fault_rate": 1.0, "fault_kinds": {"reset": 1}, "fault_after_accept": True},
    )
    store = Store.open(fast.db_path)
    engine = Engine(fast, store)
    task = await engine.submit(JOBS[0])
    await engine.aclose()
    assert task.status is TaskStatus.ORPHANED
    assert "may have accepted" in task.error
    assert len(sim_tasks(sim)) == 1  # the server took it once; we did not send it again


async def test_a_refused_generate_is_retried_safely(fast, sim):
    """A 429 means the server created nothing: the client waits Retry-After and resends."""
    flips = []

    async def sleep_and_heal(seconds: float) -> None:
        flips.append(seconds)
        httpx.post(sim.base_url + "/_sim/config", json={"fault_rate": 0.0})
        await asyncio.sleep(seconds)

    httpx.post(
        sim.base_url + "/_sim/config", json={"fault_rate": 1.0, "fault_kinds": {"rate_limit": 1}}
    )
    # A key with no known limit: after a 429 the next request waits the Retry-After alone
    # (a limited key's requests are then spaced at the limit's pace: 6 s at 600/hour).
    fast.providers[JOBS[2].provider].requests_per_hour = None
    store = Store.open(fast.db_path)
    # The engine waits out the 429's Retry-After (the ledger's retry loop) with this sleep.
    engine = Engine(fast, store, sleep=sleep_and_heal)
    task = await engine.submit(JOBS[2])
    await engine.aclose()
    assert task.status is TaskStatus.PROCESSING
    assert flips and flips[0] <= 5  # honoured the simulator's short Retry-After
    assert len(sim_tasks(sim)) == 1


@pytest.mark.parametrize(
    "sim_config", [SimConfig(generation_time=(0.3, 0.5), balances={NANO_KEY: 1})], indirect=True
)
async def test_a_rejected_submission_charges_nothing_and_says_why(fast, sim):
    store = Store.open(fast.db_path)
    engine = Engine(fast, store)
    task = await engine.submit(JOBS[0])
    await engine.aclose()
    assert task.status is TaskStatus.REJECTED
    assert "INSUFFICIENT_CREDITS" in task.error and "top up" in task.error
    assert store.credits_summary(task.created_at)["providers"]["nanophoto"]["all"] == 0


async def test_every_request_is_in_the_ledger_without_the_key(fast, sim):
    store, tasks = await run_jobs(fast, JOBS[:3])
    rows = raw_sql(
        store.path, "SELECT provider, endpoint, http_status, key_fingerprint FROM requests"
    )
    assert len(rows) == sim_ledger(sim)["totals"]["requests"]
    assert {r[1] for r in rows} == {"generate", "status"}
    store.close()
    for suffix in ("", "-wal", "-shm"):
        path = str(fast.db_path) + suffix
        if os.path.exists(path):
            data = Path(path).read_bytes()
            assert NANO_KEY.encode() not in data and SEED_KEY.encode() not in data
