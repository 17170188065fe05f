"""The request ledger (issue #10, items 7, 8, 9, 16): one object owns each request's life
— claim a slot in the history file, send, record that row's outcome, tell the scheduler.

  * item 7: a submission that never left is `cancelled`, never `orphaned`;
  * item 8: a claim is finished by its own request, never leaked, under one budget key;
  * item 9: timers run on a monotonic clock; a wall clock set back or forward an hour
    neither stops the polls nor empties the budget;
  * item 16: a 429's Retry-After stops every request of the key, both endpoints, every
    instance sharing the history; the provider's `rate_window` is the claim's window.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import NANO_KEY
from hostile import HostileServer, Request, drip, json_answer
from raw_sql import raw_sql
from test_hostile_server import (
    NANO_GENERATE,
    NANO_JOB,
    NANO_STATUS,
    settings_for,
    status_of,
    wait_for,
)

from seedance_tui.engine import Engine, budget_key
from seedance_tui.keys import fingerprint
from seedance_tui.models import Provider, TaskStatus, from_iso, iso
from seedance_tui.store import Store


def processing(task_id: str):
    return json_answer({"taskId": task_id, "status": "processing", "creditsUsed": 4})


def request_rows(store: Store) -> list[tuple]:
    return raw_sql(
        store.path, "SELECT task, endpoint, http_status, sent, error, at FROM requests ORDER BY id"
    )


# -- item 7: cancelled, not orphaned ------------------------------------------------------


def _spend_the_hour(db: Path, now: float) -> None:
    """One request of the nanophoto key a moment ago: a limit of 1/hour is spent."""
    store = Store.open(db)
    store.claim_request(
        provider=Provider.NANOPHOTO, key_fingerprint=fingerprint(Provider.NANOPHOTO, NANO_KEY),
        endpoint="status", now=now, limit=None,
    )  # fmt: skip
    store.close()


def _submit_process(tmp_path: Path, base_url: str) -> subprocess.Popen:
    home = tmp_path / "home"
    (home / "config").mkdir(parents=True, exist_ok=True)
    (home / "config" / "config.toml").write_text("[providers.nanophoto]\nrequests_per_hour = 1\n")
    env = {
        **os.environ,
        "SEEDANCE_TUI_HOME": str(home),
        "NANOPHOTO_BASE_URL": base_url,
        "NANOPHOTO_API_KEY": NANO_KEY,
        "SEEDANCE_TUI_KEYRING": "0",
        "PYTHONUNBUFFERED": "1",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "seedance_tui", "--db", str(tmp_path / "history.db"),
         "submit", "--prompt", "a lighthouse"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip


def _kill(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def test_a_submit_killed_while_waiting_for_budget_is_cancelled_not_orphaned(tmp_path) -> None:
    with HostileServer() as server:
        server.route(NANO_GENERATE, processing("never"))
        db = tmp_path / "history.db"
        _spend_the_hour(db, time.time())
        process = _submit_process(tmp_path, server.base_url)
        try:
            deadline = time.monotonic() + 60
            while True:
                with contextlib.suppress(sqlite3.Error), sqlite3.connect(db) as conn:
                    if conn.execute("SELECT count(*) FROM tasks").fetchone()[0]:
                        break  # the intent is recorded: the submission waits for budget
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"no intent row: {process.communicate()[1].decode()[-2000:]}")
                time.sleep(0.05)
        finally:
            _kill(process)
        assert server.count(NANO_GENERATE) == 0
    store = Store.open(db)
    settings = settings_for("http://127.0.0.1:9", tmp_path)
    engine = Engine(settings, store)
    engine.start()  # what the next start of any command does
    [task] = store.list(limit=None)
    assert task.status is TaskStatus.CANCELLED, task.error
    assert "nothing charged" in task.error
    summary = store.credits_summary(time.time())["providers"]["nanophoto"]
    assert summary["at_risk_orphaned"] == 0


async def test_a_submission_cancelled_while_waiting_is_cancelled(tmp_path) -> None:
    with HostileServer() as server:
        server.route(NANO_GENERATE, processing("never"))
        settings = settings_for(server.base_url, tmp_path)
        settings.providers[Provider.NANOPHOTO].requests_per_hour = 1
        _spend_the_hour(settings.db_path, time.time())
        store = Store.open(settings.db_path)
        engine = Engine(settings, store)
        submission = asyncio.create_task(engine.submit(NANO_JOB))
        await wait_for(lambda: store.list(limit=None), "the intent row")
        submission.cancel()
        await asyncio.gather(submission, return_exceptions=True)
        await engine.aclose()
        [task] = store.list(limit=None)
        assert task.status is TaskStatus.CANCELLED
        assert server.count(NANO_GENERATE) == 0


# -- item 8: each request's own row -------------------------------------------------------


async def test_concurrent_polls_each_finish_their_own_ledger_row(tmp_path) -> None:
    """A slow 500 and a quick 200 of the same endpoint, concurrently: each row says how
    its own request went (the claims were once finished by whichever answer came first)."""
    with HostileServer() as server:
        ids = iter(["t-slow", "t-fast"])
        server.route(NANO_GENERATE, make=lambda r: processing(next(ids)))

        def status(request: Request):
            if request.json()["taskId"] == "t-slow":
                return drip(b'{"error": "busy", "errorCode": "INTERNAL_ERROR"}', every=0.02,
                            status=500)  # fmt: skip
            return json_answer(status_of("t-fast", status="completed", videoUrl="https://e/v"))

        server.route(NANO_STATUS, make=status)
        settings = settings_for(server.base_url, tmp_path)
        store = Store.open(settings.db_path)
        engine = Engine(settings, store)
        try:
            slow = await engine.submit(NANO_JOB)
            fast = await engine.submit(NANO_JOB)
            for task in (slow, fast):
                assert store.claim_poll(task.id, time.time(), 0)
            await asyncio.gather(engine.poll(slow.id), engine.poll(fast.id))
        finally:
            await engine.aclose()
        rows = {
            (task, endpoint): (http, sent) for task, endpoint, http, sent, *_ in request_rows(store)
        }
        assert rows[(slow.id, "status")] == (500, 1)
        assert rows[(fast.id, "status")] == (200, 1)
        assert rows[(slow.id, "generate")] == (200, 1)


async def test_a_request_refused_before_it_left_is_recorded_as_not_sent(tmp_path) -> None:
    """An error before anything is sent (here: a key would go over plain http to a host
    that is not loopback) must not leave a claim counted against the budget for an hour."""
    settings = settings_for("http://example.com", tmp_path)
    store = Store.open(settings.db_path)
    engine = Engine(settings, store)
    try:
        task = await engine.submit(NANO_JOB)
    finally:
        await engine.aclose()
    assert task.status is TaskStatus.REJECTED and "plain http" in task.error
    [(row_task, endpoint, http, sent, error, _at)] = request_rows(store)
    assert (row_task, endpoint, http, sent, error) == (task.id, "generate", None, 0, "insecure")
    key = fingerprint(Provider.NANOPHOTO, NANO_KEY)
    assert store.request_rows(Provider.NANOPHOTO, key, time.time() - 3600) == []


# -- item 9: clocks -----------------------------------------------------------------------


class WallClock:
    """The wall clock, which a test may set back or forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


async def test_a_wall_clock_set_back_an_hour_does_not_stop_the_polls(tmp_path) -> None:
    with HostileServer() as server:
        server.route(NANO_GENERATE, processing("t-1"))
        server.route(NANO_STATUS, json_answer(status_of("t-1", status="processing")))
        settings = settings_for(server.base_url, tmp_path)
        store = Store.open(settings.db_path)
        wall = WallClock()
        engine = Engine(settings, store, clock=wall)
        loop = asyncio.create_task(engine.run())
        try:
            await engine.submit(NANO_JOB)
            await wait_for(lambda: server.count(NANO_STATUS) >= 2, "polls before the change")
            wall.offset = -3600.0
            before = server.count(NANO_STATUS)
            await wait_for(
                lambda: server.count(NANO_STATUS) >= before + 3,
                "three more polls after the clock was set back an hour",
            )
        finally:
            loop.cancel()
            await asyncio.gather(loop, return_exceptions=True)
            await engine.aclose()


async def test_a_wall_clock_set_forward_an_hour_does_not_empty_the_budget(tmp_path) -> None:
    with HostileServer() as server:
        server.route(NANO_GENERATE, processing("t-1"))
        server.route(NANO_STATUS, json_answer(status_of("t-1", status="processing")))
        settings = settings_for(server.base_url, tmp_path)
        # 4 an hour: the submission, two polls, and a third once the reserve kept for the
        # next submission yields to it (the task is overdue and most likely done, and one
        # submission an hour makes another unlikely to come soon).
        settings.providers[Provider.NANOPHOTO].requests_per_hour = 4
        store = Store.open(settings.db_path)
        wall = WallClock()
        engine = Engine(settings, store, clock=wall)
        loop = asyncio.create_task(engine.run())
        try:
            task = await engine.submit(NANO_JOB)
            key = budget_key(Provider.NANOPHOTO, task.key_fingerprint)
            # The server counts a request as it arrives, the engine once its answer is in.
            await wait_for(
                lambda: (
                    server.count(NANO_STATUS) >= 3
                    and engine.budget(Provider.NANOPHOTO).state.used >= 4
                ),
                "the hour's budget spent and the three answers recorded",
            )
            assert engine.budget(Provider.NANOPHOTO).key == key
            assert engine.budget(Provider.NANOPHOTO).state.used == 4
            wall.offset = 3600.0
            engine.resync()  # re-reads the ledger, whose times now look an hour old
            assert engine.budget(Provider.NANOPHOTO).state.used == 4
            next_at = engine.next_check(task.id)
            assert next_at is not None and next_at - wall() > 3000
        finally:
            loop.cancel()
            await asyncio.gather(loop, return_exceptions=True)
            await engine.aclose()
        assert server.count(NANO_STATUS) + server.count(NANO_GENERATE) == 4


# -- item 16: a 429 holds the whole key ---------------------------------------------------


async def test_a_429_on_a_poll_holds_the_key_in_every_instance_and_both_endpoints(
    tmp_path,
) -> None:
    with HostileServer() as server:
        server.route(NANO_GENERATE, processing("t-1"), times=1)
        server.route(
            NANO_STATUS,
            json_answer({"error": "slow down", "errorCode": "API_KEY_RATE_LIMIT_EXCEEDED"},
                        status=429, headers={"Retry-After": "2"}),
        )  # fmt: skip
        server.route(NANO_GENERATE, processing("t-2"))
        settings = settings_for(server.base_url, tmp_path)
        first = Engine(settings, Store.open(settings.db_path))
        second = Engine(settings, Store.open(settings.db_path))
        try:
            task = await first.submit(NANO_JOB)
            assert first.store.claim_poll(task.id, time.time(), 0)
            await first.poll(task.id)  # 429, Retry-After 2 s
            key = fingerprint(Provider.NANOPHOTO, NANO_KEY)
            until = second.store.key_pause(Provider.NANOPHOTO, key, time.time())
            assert until is not None  # persisted for every instance
            later = await second.submit(NANO_JOB)  # the other endpoint, another instance
        finally:
            await first.aclose()
            await second.aclose()
        assert later.status is TaskStatus.PROCESSING
        sent = [(e, from_iso(at)) for _t, e, _h, s, _e, at in request_rows(second.store) if s]
        generate_at = [at for endpoint, at in sent if endpoint == "generate"][-1]
        assert generate_at >= until - 0.01, (iso(generate_at), iso(until))


async def test_a_429_on_a_submission_stops_the_polls_of_its_key_too(tmp_path) -> None:
    with HostileServer() as server:
        server.route(NANO_GENERATE, processing("t-0"), times=1)
        server.route(
            NANO_GENERATE,
            json_answer({"error": "slow down", "errorCode": "API_KEY_RATE_LIMIT_EXCEEDED"},
                        status=429, headers={"Retry-After": "2"}),
            times=1,
        )  # fmt: skip
        server.route(NANO_GENERATE, processing("t-1"))
        server.route(NANO_STATUS, make=lambda r: json_answer(
            status_of(r.json()["taskId"], status="processing")))  # fmt: skip
        settings = settings_for(server.base_url, tmp_path)
        store = Store.open(settings.db_path)
        engine = Engine(settings, store)
        loop = asyncio.create_task(engine.run())
        try:
            await engine.submit(NANO_JOB)
            await wait_for(lambda: server.count(NANO_STATUS) >= 2, "t-0 being polled")
            second = await engine.submit(NANO_JOB)  # 429, waits Retry-After, then accepted
            assert second.status is TaskStatus.PROCESSING
        finally:
            loop.cancel()
            await asyncio.gather(loop, return_exceptions=True)
            await engine.aclose()
        rows = [(e, h, from_iso(at)) for _t, e, h, s, _e, at in request_rows(store) if s]
        refused = next(at for e, h, at in rows if h == 429)
        key = fingerprint(Provider.NANOPHOTO, NANO_KEY)
        assert store.get_state(f"rate_pause:nanophoto:{key}") is not None
        during = [e for e, _h, at in rows if refused < at < refused + 1.9]
        assert during == [], f"requests sent during the Retry-After: {during}"


def test_the_engine_claims_over_the_configured_window(tmp_path) -> None:
    settings = settings_for("http://127.0.0.1:9", tmp_path)
    settings.providers[Provider.NANOPHOTO].rate_window = 60.0
    engine = Engine(settings, Store.open(settings.db_path))
    assert engine.ledger.window(budget_key(Provider.NANOPHOTO, "k")) == 60.0
