"""Dead networks, refused keys, long waits (issue #10, items 5, 15, 17, 18).

* item 5: connections never made back off per key, exponentially with jitter, capped;
  one request at a time probes the host; it recovers by itself — tested on a virtual
  clock (no sleeps), then end to end against a server that goes away and comes back;
* item 15: a task is polled only with the key it was submitted with; a 404 is never
  a refund;
* item 17: every long wait says what it waits for and until when;
* item 18: `watch` ends (exit 1, saying why) when nothing it can do is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import NANO_KEY
from hostile import HostileServer, Request, json_answer
from test_hostile_server import (
    NANO_GENERATE,
    NANO_JOB,
    NANO_STATUS,
    settings_for,
    status_of,
    wait_for,
)
from test_ledger import _kill, _spend_the_hour, _submit_process, processing

from seedance_tui import cli
from seedance_tui.engine import Engine, Notice, budget_key
from seedance_tui.ledger import BACKOFF_CAP, BudgetWait, Ledger
from seedance_tui.models import Provider, Task, TaskStatus
from seedance_tui.providers import TransportError
from seedance_tui.scheduler import Scheduler
from seedance_tui.store import Store

KEY = budget_key(Provider.NANOPHOTO, "abc123")
OTHER_KEY = "sk-nano-OTHER-1b2c3d4e5f60"


# -- item 5: the backoff, on a virtual clock ----------------------------------------------


class VirtualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Unreachable:
    """A client whose connections are never made; it notes when each was tried."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.attempts: list[float] = []
        self.hold: asyncio.Event | None = None

    def host(self, provider: Provider) -> str:
        return "127.0.0.1:9"

    async def status(self, provider, task_id, *, key, note):
        note.started = True
        self.attempts.append(self.clock.now)
        if self.hold is not None:
            await self.hold.wait()
        raise TransportError(
            "cannot connect to 127.0.0.1:9 (ConnectError)", sent=False, provider=provider
        )


def ledger_on(clock: VirtualClock, client: Unreachable) -> tuple[Ledger, list[str]]:
    said: list[str] = []
    ledger = Ledger(
        Store.open(None), Scheduler(clock, {"nanophoto": None}), client,  # type: ignore[arg-type]
        wall=lambda: 1_800_000_000.0 + clock.now, mono=clock, rng=random.Random(7),
        notify=lambda topic, level, message: said.append(message),
    )  # fmt: skip
    return ledger, said


def task(n: int = 1) -> Task:
    return Task(
        id=f"task-{n}", provider=Provider.NANOPHOTO, status=TaskStatus.PROCESSING, prompt="p",
        params={}, created_at=0.0, task_id=f"t-{n}", key_fingerprint=KEY.fingerprint,
    )  # fmt: skip


async def test_an_unreachable_host_is_tried_ever_more_rarely_with_jitter_up_to_a_cap() -> None:
    clock = VirtualClock()
    client = Unreachable(clock)
    ledger, said = ledger_on(clock, client)
    waits = 0
    while clock.now < 1000.0 + 3 * 3600:  # three hours of an outage
        try:
            await ledger.status(task(), KEY, "secret")
        except TransportError:
            continue  # an attempt; the next one waits
        except BudgetWait as wait:
            waits += 1
            clock.now = wait.until  # nothing sent: jump to when the ledger allows one
    gaps = [b - a for a, b in zip(client.attempts, client.attempts[1:], strict=False)]
    for n, gap in enumerate(gaps, start=1):
        ceiling = min(BACKOFF_CAP, 2.0 ** (n - 1))
        assert ceiling / 2 <= gap <= ceiling + 1e-9, (n, gap)
    assert len(set(round(g, 6) for g in gaps[-10:])) > 1  # jittered, not in lockstep
    assert max(gaps) <= BACKOFF_CAP
    # The first minute of an outage costs a handful of attempts, not hundreds.
    assert sum(1 for at in client.attempts if at < 1060.0) <= 8
    assert len(client.attempts) < 3 * 3600 / (BACKOFF_CAP / 2) + 10
    assert waits >= len(client.attempts) - 1  # every wait is one the ledger chose
    assert said and "cannot reach 127.0.0.1:9" in said[0] and "retrying in" in said[0]


async def test_while_a_host_is_unreachable_one_request_probes_it_the_others_wait() -> None:
    clock = VirtualClock()
    client = Unreachable(clock)
    ledger, _said = ledger_on(clock, client)
    with contextlib.suppress(TransportError):
        await ledger.status(task(0), KEY, "secret")  # the first failure
    clock.now += BACKOFF_CAP  # the backoff is over: five tasks are due at once
    client.hold = asyncio.Event()
    polls = [asyncio.create_task(ledger.status(task(n), KEY, "secret")) for n in range(1, 6)]
    await asyncio.sleep(0)
    client.hold.set()
    outcomes = await asyncio.gather(*polls, return_exceptions=True)
    assert len(client.attempts) == 2  # the first failure, then one probe for all five
    assert sum(isinstance(o, TransportError) for o in outcomes) == 1
    assert sum(isinstance(o, BudgetWait) for o in outcomes) == 4


async def test_watch_recovers_by_itself_when_the_server_comes_back(tmp_path) -> None:
    server = HostileServer()
    server.route(NANO_GENERATE, processing("t-1"))
    server.start()
    port = server.port
    settings = settings_for(server.base_url, tmp_path)
    store = Store.open(settings.db_path)
    engine = Engine(settings, store)
    said: list[Notice] = []
    engine.subscribe(lambda e: isinstance(e, Notice) and said.append(e))
    run = None
    try:
        job = await engine.submit(NANO_JOB)
        server.stop()  # gone
        run = asyncio.create_task(engine.run(until_idle=True))
        await wait_for(lambda: any("cannot reach" in n.message for n in said), "cannot reach")
        trouble = engine.key_trouble(budget_key(Provider.NANOPHOTO, job.key_fingerprint))
        assert trouble and re.search(rf"cannot reach 127\.0\.0\.1:{port}", trouble), trouble
        server = HostileServer(port=port)  # back, on the same port
        server.route(
            NANO_STATUS, json_answer(status_of("t-1", status="completed", videoUrl="https://e/v"))
        )
        server.start()
        async with asyncio.timeout(60):
            await run
    finally:
        server.stop()
        if run is not None:
            run.cancel()
            await asyncio.gather(run, return_exceptions=True)
        await engine.aclose()
    assert store.get(job.id).status is TaskStatus.COMPLETED
    assert any("answers again" in n.message for n in said)


# -- item 15: the key a task was submitted with -------------------------------------------


def _env(monkeypatch, server: HostileServer, key: str, db: Path) -> None:
    monkeypatch.setenv("NANOPHOTO_BASE_URL", server.base_url)
    monkeypatch.setenv("NANOPHOTO_API_KEY", key)
    monkeypatch.setenv("SEEDANCE_TUI_DB", str(db))


def _fast_config(tmp_path: Path) -> None:
    config = tmp_path / "home" / "config" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(
        "[polling]\nmin_interval = 0.1\ntarget_latency = 0.3\nmax_interval = 1.0\n"
        "prior = [0.2, 0.5]\n"
    )


def test_a_task_is_polled_only_with_the_key_it_was_submitted_with(
    tmp_path, monkeypatch, capsys
) -> None:
    """Submitted with key A; the environment now has key B. The provider does not know
    the task under key B (404): asking with B would book a refund it never gave."""
    with HostileServer() as server:
        server.route(NANO_GENERATE, processing("t-a"))

        def status(request: Request):
            if request.headers.get("authorization") == f"Bearer {NANO_KEY}":
                return json_answer(status_of("t-a", status="processing"))
            return json_answer({"error": "not found", "errorCode": "TASK_NOT_FOUND"}, 404)

        server.route(NANO_STATUS, make=status)
        db = tmp_path / "history.db"
        _fast_config(tmp_path)
        _env(monkeypatch, server, NANO_KEY, db)
        assert cli.main(["submit", "--prompt", "a lighthouse"]) == 0
        _env(monkeypatch, server, OTHER_KEY, db)
        capsys.readouterr()
        code = cli.main(["watch"])
        captured = capsys.readouterr()
        assert server.count(NANO_STATUS) == 0  # never asked with the other key
    assert code == 1
    assert "needs the key it was submitted with" in captured.err
    [task] = Store.open(db).list(limit=None)
    assert task.status is TaskStatus.PROCESSING and task.credits_refunded == 0


async def test_a_task_the_provider_no_longer_knows_is_orphaned_never_refunded(tmp_path) -> None:
    with HostileServer() as server:
        server.route(NANO_GENERATE, processing("t-gone"))
        server.route(
            NANO_STATUS, json_answer({"error": "not found", "errorCode": "TASK_NOT_FOUND"}, 404)
        )
        settings = settings_for(server.base_url, tmp_path)
        store = Store.open(settings.db_path)
        engine = Engine(settings, store)
        try:
            job = await engine.submit(NANO_JOB)
            async with asyncio.timeout(60):
                await engine.run(until_idle=True)
        finally:
            await engine.aclose()
    lost = store.get(job.id)
    assert lost.status is TaskStatus.ORPHANED
    assert lost.credits_charged == 4 and lost.credits_refunded == 0
    assert "may have rendered and been charged" in lost.error
    summary = store.credits_summary(time.time())["providers"]["nanophoto"]
    assert summary["all"] == 4 and summary["refunded"] == 0


def test_the_detail_pane_says_a_task_waits_for_its_key() -> None:
    from rich.console import Console

    from seedance_tui.tui.detail import render_task

    waiting = task()
    console = Console(width=100, record=True)
    console.print(render_task(waiting, [], now=10.0, waiting="needs the key it was submitted with"))
    assert "not checked: needs the key it was submitted with" in console.export_text()


# -- item 17: long waits say what for and until when --------------------------------------


def test_a_submission_waiting_for_budget_says_until_when(tmp_path) -> None:
    with HostileServer() as server:
        server.route(NANO_GENERATE, processing("never"))
        _spend_the_hour(tmp_path / "history.db", time.time())
        process = _submit_process(tmp_path, server.base_url)
        try:
            assert process.stderr is not None
            lines: list[str] = []
            deadline = time.monotonic() + 60
            while not any("waiting for rate budget" in line for line in lines):
                line = process.stderr.readline().decode()
                if not line or time.monotonic() > deadline:
                    pytest.fail(f"no word of the wait: {lines}")
                lines.append(line)
        finally:
            _kill(process)
    said = next(line for line in lines if "waiting for rate budget" in line)
    assert re.search(r"until \d\d:\d\d:\d\d \(in \d+ s\)", said), said


def test_watch_says_what_goes_wrong_through_repeated_server_errors(
    tmp_path, monkeypatch, capsys
) -> None:
    with HostileServer() as server:
        server.route(NANO_GENERATE, processing("t-1"))
        server.route(NANO_STATUS, json_answer({"error": "oops", "errorCode": "INTERNAL_ERROR"},
                                              500), times=2)  # fmt: skip
        server.route(NANO_STATUS, json_answer(status_of("t-1", status="completed",
                                                        videoUrl="https://e/v")))  # fmt: skip
        db = tmp_path / "history.db"
        _fast_config(tmp_path)
        _env(monkeypatch, server, NANO_KEY, db)
        assert cli.main(["submit", "--prompt", "a lighthouse"]) == 0
        capsys.readouterr()
        assert cli.main(["watch"]) == 0
    err = capsys.readouterr().err
    assert re.search(r"checking \w{8} failed: .*HTTP 500.*; next check in \d+ s", err), err


def _watch_process(tmp_path: Path, base_url: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "SEEDANCE_TUI_HOME": str(tmp_path / "home"),
        "NANOPHOTO_BASE_URL": base_url,
        "NANOPHOTO_API_KEY": NANO_KEY,
        "SEEDANCE_TUI_KEYRING": "0",
        "SEEDANCE_TUI_AUTO_DOWNLOAD": "0",
        "PYTHONUNBUFFERED": "1",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "seedance_tui", "--db", str(tmp_path / "history.db"), "watch"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip


def test_watch_says_it_cannot_reach_the_host_then_finishes_when_it_is_back(
    tmp_path, monkeypatch
) -> None:
    server = HostileServer()
    server.route(NANO_GENERATE, processing("t-1"))
    server.start()
    port = server.port
    _fast_config(tmp_path)
    _env(monkeypatch, server, NANO_KEY, tmp_path / "history.db")
    assert cli.main(["submit", "--prompt", "a lighthouse"]) == 0
    server.stop()
    process = _watch_process(tmp_path, f"http://127.0.0.1:{port}")
    try:
        assert process.stderr is not None
        lines: list[str] = []
        deadline = time.monotonic() + 60
        while not any("cannot reach" in line for line in lines):
            line = process.stderr.readline().decode()
            if not line or time.monotonic() > deadline:
                pytest.fail(f"watch said nothing of the unreachable host: {lines}")
            lines.append(line)
        said = next(line for line in lines if "cannot reach" in line)
        assert re.search(rf"cannot reach 127\.0\.0\.1:{port} .*retrying in \d+ s", said), said
        server = HostileServer(port=port)
        server.route(NANO_STATUS, json_answer(status_of("t-1", status="completed",
                                                        videoUrl="https://e/v")))  # fmt: skip
        server.start()
        _out, rest = process.communicate(timeout=120)
    finally:
        server.stop()
        _kill(process)
    assert process.returncode == 0, "".join(lines) + rest.decode()
    assert "answers again" in rest.decode()


# -- item 18: nothing left to do ----------------------------------------------------------


def test_watch_exits_1_saying_why_when_every_pending_task_s_key_is_refused(
    tmp_path, monkeypatch
) -> None:
    with HostileServer() as server:
        server.route(NANO_GENERATE, processing("t-1"), times=1)
        server.route(NANO_GENERATE, processing("t-2"))
        server.route(
            NANO_STATUS, json_answer({"error": "bad key", "errorCode": "INVALID_API_KEY"}, 401)
        )
        _fast_config(tmp_path)
        _env(monkeypatch, server, NANO_KEY, tmp_path / "history.db")
        assert cli.main(["submit", "--prompt", "one"]) == 0
        assert cli.main(["submit", "--prompt", "two"]) == 0
        process = _watch_process(tmp_path, server.base_url)
        try:
            _out, err = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail("watch did not end although its key is refused")
        finally:
            _kill(process)
    text = err.decode()
    assert process.returncode == 1, text
    assert "INVALID_API_KEY" in text and "2 task(s) left processing" in text, text
    assert "Traceback" not in text


def test_submit_wait_ends_when_its_key_is_refused(tmp_path, monkeypatch, capsys) -> None:
    with HostileServer() as server:
        server.route(NANO_GENERATE, processing("t-1"))
        server.route(
            NANO_STATUS, json_answer({"error": "bad key", "errorCode": "INVALID_API_KEY"}, 401)
        )
        _fast_config(tmp_path)
        _env(monkeypatch, server, NANO_KEY, tmp_path / "history.db")
        code = cli.main(["submit", "--prompt", "one", "--wait"])
    err = capsys.readouterr().err
    assert code == 1 and "cannot be checked" in err and "INVALID_API_KEY" in err


def test_the_credits_panel_says_why_a_key_waits() -> None:
    from textual.app import App
    from textual.widgets import Static

    from seedance_tui.scheduler import BudgetState
    from seedance_tui.tui.credits import CreditsPanel

    class One(App[None]):
        def compose(self):
            yield CreditsPanel()

    async def check() -> str:
        app = One()
        async with app.run_test():
            panel = app.query_one(CreditsPanel)
            state = BudgetState(limit=100, used=3, remaining=97, paused_until=None, resets_at=None)
            panel.show_budget(
                {Provider.NANOPHOTO: state},
                {Provider.NANOPHOTO: "cannot reach 127.0.0.1:9, retrying in 40 s"},
            )
            return str(app.query_one("#credits-budget", Static).render())

    shown = asyncio.run(check())
    assert "nanophoto: cannot reach 127.0.0.1:9, retrying in 40 s" in shown


async def test_the_loop_sleeps_between_tries_of_an_unreachable_host(tmp_path) -> None:
    """Waiting costs no CPU: with five tasks and the host gone, the poll loop turns a few
    times per try of the host, never hundreds (a refused claim or a skipped poll once
    made the loop spin until the cross-instance poll spacing had passed)."""
    with HostileServer() as server:
        ids = iter(range(100))
        server.route(NANO_GENERATE, make=lambda r: processing(f"t-{next(ids)}"))
        settings = settings_for(server.base_url, tmp_path)
        settings.polling = {"min_interval": 2, "target_latency": 5, "max_interval": 30,
                            "prior": (2, 4)}  # fmt: skip
        store = Store.open(settings.db_path)
        engine = Engine(settings, store)
        jobs = [await engine.submit(NANO_JOB) for _ in range(5)]
    # The server is gone now.
    turns = 0
    due_polls = engine.scheduler.due_polls

    def counted() -> list[str]:
        nonlocal turns
        turns += 1
        return due_polls()

    engine.scheduler.due_polls = counted  # type: ignore[method-assign]
    key = budget_key(Provider.NANOPHOTO, jobs[0].key_fingerprint)
    run = asyncio.create_task(engine.run())
    try:
        await wait_for(lambda: engine.ledger._state(key).failures >= 4, "four tries", 60)
    finally:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
        await engine.aclose()
    failures = engine.ledger._state(key).failures
    assert turns <= 8 * (failures + 1), f"{turns} loop turns for {failures} tries"
