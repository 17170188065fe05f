"""Studio mode: the history in PostgreSQL, chosen by `--db postgresql://…`,
`SEEDANCE_TUI_DB` or the config's `db`; the commands and the engine against it; the
database's password written nowhere; a clear refusal where the extra is missing.

Against the session's throwaway PostgreSQL server (conftest.py `pg_server`), which
trusts loopback: a password in the URL is accepted and ignored by it, which is what lets
these tests follow one everywhere it could leak."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import sys
import time
from pathlib import Path

import pytest
from conftest import NANO_KEY
from processes import wait_for

from seedance_tui import cli
from seedance_tui.config import load_settings
from seedance_tui.paths import config_path
from seedance_tui.simulator import SimConfig
from seedance_tui.store.locations import open_store, redact

psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed (the postgres extra)")
from seedance_tui.store.postgres import PgStore  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
PASSWORD = "pg-PASSWORD-5e3c91d7a2"
FAST = """
[polling]
min_interval = 0.1
target_latency = 0.3
max_interval = 1.0
prior = [0.3, 1.5]

[providers.nanophoto]
requests_per_hour = 0

[providers.seedance15pro]
requests_per_hour = 0
"""


def with_password(url: str) -> str:
    return url.replace("postgresql://postgres@", f"postgresql://postgres:{PASSWORD}@")


def dump(url: str) -> bytes:
    """Every row of every table of the database, as text."""
    with psycopg.connect(url, autocommit=True) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
            )
        ]
        text = [repr(list(conn.execute(f"SELECT * FROM {table}"))) for table in tables]
    return "\n".join(text).encode()


def test_the_url_selects_postgres_from_flag_env_or_config(pg_url, monkeypatch) -> None:
    assert load_settings(db=pg_url).db_url == pg_url
    monkeypatch.setenv("SEEDANCE_TUI_DB", pg_url)
    settings = load_settings()
    assert settings.db_url == pg_url and settings.db_location == pg_url
    monkeypatch.delenv("SEEDANCE_TUI_DB")
    config_path().parent.mkdir(parents=True, exist_ok=True)
    config_path().write_text(f'db = "{pg_url}"\n')
    store = open_store(load_settings().db_target)
    try:
        assert isinstance(store, PgStore) and store.path is None
    finally:
        store.close()
    assert load_settings(db="/tmp/h.db").db_url is None


def test_a_password_is_used_to_connect_and_written_nowhere(
    pg_server, sim, sim_env, isolated_home, tmp_path, capsys, monkeypatch
) -> None:
    """Every command that opens the history, errors included, with DEBUG logging to a
    file: the password is in none of the output, the log, the database, the backup,
    the home folder; `config show` and `history path` name the URL without it."""
    url = with_password(pg_server.create_database())
    config_path().parent.mkdir(parents=True, exist_ok=True)
    config_path().write_text(FAST)
    log_file = tmp_path / "debug.log"
    handler = logging.FileHandler(log_file)
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    outputs: list[str] = []
    capsys_out: list[str] = []

    def run(*argv: str) -> int:
        try:
            code = cli.main(list(argv))
        except SystemExit as exc:
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        outputs.append(captured.out + captured.err)
        capsys_out.append(captured.out)
        return code

    backup = tmp_path / "backup.db"
    try:
        assert run("--db", url, "submit", "--prompt", "a studio shot", "--wait", "--json") == 0
        task = json.loads(capsys_out[-1])
        assert run("--db", url, "status", task["id"], "--json") == 0
        assert run("--db", url, "list", "--json") == 0
        assert "a studio shot" in outputs[-1]
        assert run("--db", url, "list") == 0
        assert run("--db", url, "credits", "--json") == 0
        assert run("--db", url, "history", "stats", "--json") == 0
        assert json.loads(capsys_out[-1])["path"] == redact(url)
        assert run("--db", url, "history", "stats") == 0
        assert f"path        {redact(url)}" in outputs[-1] and "bytes" not in outputs[-1]
        assert run("--db", url, "history", "backup", str(backup)) == 0
        assert run("--db", url, "history", "path") == 0
        assert outputs[-1].strip() == redact(url)
        monkeypatch.setenv("SEEDANCE_TUI_DB", url)
        assert run("config", "show") == 0
        assert redact(url) in outputs[-1]
        assert run("config", "show", "--json") == 0
        assert run("status", "no-such-task") == 2
        # A server that is not there, and a config that would keep the password.
        monkeypatch.delenv("SEEDANCE_TUI_DB")
        refused = url.replace(f":{pg_server.port}/", ":1/")
        assert run("--db", refused, "list") == 2
        assert "cannot connect" in outputs[-1]
        assert run("config", "set", "db", url) == 2
        assert "~/.pgpass" in outputs[-1]
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()

    assert all("Traceback" not in text for text in outputs)
    assert log_file.stat().st_size > 0
    scanned = {
        "output": "\n".join(outputs).encode(),
        "debug log": log_file.read_bytes(),
        "database": dump(url),
        "backup": backup.read_bytes(),
    }
    assert {name for name, data in scanned.items() if PASSWORD.encode() in data} == set()
    leaked = [p for p in isolated_home.rglob("*") if p.is_file() and PASSWORD.encode() in
              p.read_bytes()]  # fmt: skip
    assert leaked == []
    assert NANO_KEY.encode() not in scanned["database"]


def test_without_the_extra_a_url_is_refused_with_exit_2_naming_it(processes) -> None:
    """psycopg missing (hidden from the import system): exit 2 and how to install it."""
    code = (
        "import sys\n"
        "sys.modules['psycopg'] = None\n"
        "sys.modules['psycopg_pool'] = None\n"
        "from seedance_tui.cli import main\n"
        "sys.exit(main(['--db', 'postgresql://me:secret@127.0.0.1:1/studio', 'list']))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = processes.run([sys.executable, "-c", code], env=env)
    err = done.stderr.decode()
    assert done.returncode == 2, err
    assert "pip install 'seedance-tui[postgres]'" in err
    assert "postgresql://me@127.0.0.1:1/studio" in err
    assert "secret" not in err and "Traceback" not in err


def load_studio_benchmark():
    """benchmarks/studio.py: the two machines the test and the benchmark run alike."""
    path = REPO / "benchmarks" / "studio.py"
    spec = importlib.util.spec_from_file_location("studio_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TWO_MACHINES = SimConfig(
    generation_time=(3.0, 12.0), failure_rate=0.0, seed=3, nanophoto_rate_limit=30,
    rate_window=10.0,
)  # fmt: skip


def two_machines(pg_url, sim, tmp_path, processes, jobs: int) -> dict:
    studio = load_studio_benchmark()
    counts = studio.run_studio(
        pg_url, sim.base_url, tmp_path, jobs=jobs, spawn=processes.spawn,
        wait_for=wait_for, limit=30, window=10.0, deadline=300.0,
    )  # fmt: skip
    assert counts["b_exit"] == 0, counts["b_stderr"]
    assert counts["rate_limited"] == 0, counts  # one budget: the limiter never refused
    assert counts["closest_polls"] >= studio.POLL_SPACING, counts  # one poller at a time
    assert counts["polled_closer"] == 0, counts
    assert counts["left_by_a"] > 0, counts  # A was killed with work left...
    assert counts["by_status"] == {"completed": 2 * jobs}, counts  # ...which B finished
    assert counts["listed"] == {"A": 2 * jobs, "B": 2 * jobs}, counts
    return counts


@pytest.mark.parametrize("sim_config", [TWO_MACHINES], indirect=True)
def test_two_machines_share_one_budget_and_one_poller_per_task(
    pg_url, sim, tmp_path, processes
) -> None:
    """Two processes with their own homes on one database and one key (30 requests per
    10 s): no 429, no task polled by two at once, both list every task; one killed
    mid-flight, the other finishes its tasks. 5 jobs each (`-m slow`: 20)."""
    two_machines(pg_url, sim, tmp_path, processes, jobs=5)


@pytest.mark.slow
@pytest.mark.parametrize("sim_config", [TWO_MACHINES], indirect=True)
def test_two_machines_with_twenty_jobs_each(pg_url, sim, tmp_path, processes) -> None:
    two_machines(pg_url, sim, tmp_path, processes, jobs=20)


def test_the_detail_pane_names_who_else_submitted_a_task() -> None:
    from rich.console import Console

    from seedance_tui.models import Provider, Task, TaskStatus
    from seedance_tui.store import this_submitter
    from seedance_tui.tui.detail import render_task

    def shown(who: str | None) -> str:
        task = Task(id="019aaaa000000001", provider=Provider.NANOPHOTO, prompt="a shot",
                    status=TaskStatus.COMPLETED, params={}, created_at=1.8e9, submitted_by=who)  # fmt: skip
        console = Console(width=100, record=True, color_system=None)
        console.print(render_task(task, [], now=1.8e9 + 60))
        return console.export_text()

    assert "ana@[b]render-box[/b]" in shown("ana@[b]render-box[/b]")  # literally, no markup
    assert "by " not in shown(this_submitter()).replace("by the", "")
    assert "by " not in shown(None)


def test_list_by_shows_one_submitters_tasks(pg_url, capsys) -> None:
    from seedance_tui.models import Provider, Task, TaskStatus

    store = open_store(pg_url)
    try:
        for i, who in enumerate(["ana@render-box", "ana@laptop", "ben@render-box", None]):
            store.insert_task(Task(id=f"019aaaa00000000{i}", provider=Provider.NANOPHOTO,
                                   prompt=f"shot {i}", status=TaskStatus.COMPLETED, params={},
                                   created_at=1.8e9 + i, submitted_by=who))  # fmt: skip
    finally:
        store.close()

    def listed(*argv: str) -> list[str]:
        assert cli.main(["--db", pg_url, "list", "--json", *argv]) == 0
        return sorted(t["submitted_by"] for t in json.loads(capsys.readouterr().out))

    assert listed("--by", "ana") == ["ana@laptop", "ana@render-box"]
    assert listed("--by", "@render-box") == ["ana@render-box", "ben@render-box"]
    assert listed("--by", "ben@render-box") == ["ben@render-box"]


# -- live across machines ---------------------------------------------------------------


def test_the_change_feed_tells_other_processes_writes_and_skips_its_own(pg_url) -> None:
    import queue

    from seedance_tui.models import JobSpec, Provider, TaskStatus, TaskUpdate

    here = PgStore.open(pg_url, owner="machine-b.invalid:2")
    there = PgStore.open(pg_url, owner="machine-a.invalid:1")
    heard: queue.Queue[str] = queue.Queue()
    feed = here.changes(heard.put)
    try:
        assert feed.listening.wait(30), "the feed never started listening"
        here.create_intent(JobSpec(Provider.NANOPHOTO, "mine"), estimate=4, key_fingerprint="k",
                           now=1.8e9)  # fmt: skip
        intent = there.create_intent(JobSpec(Provider.NANOPHOTO, "theirs"), estimate=4,
                                     key_fingerprint="k", now=1.8e9)  # fmt: skip
        assert heard.get(timeout=30) == intent.id  # theirs, not mine
        update = TaskUpdate("t-1", TaskStatus.PROCESSING)
        there.record_submitted(intent.id, "t-1", update, 1.8e9 + 1)
        assert heard.get(timeout=30) == intent.id
        there.claim_poll(intent.id, 1.8e9 + 10, 4.0)  # a lease is no visible change...
        there.apply_update(intent.id, TaskUpdate("t-1", TaskStatus.COMPLETED), 1.8e9 + 11)
        assert heard.get(timeout=30) == intent.id  # ...its answer is
        there.bulk_import([])
        assert heard.get(timeout=30) == "*"
        assert heard.empty()
        # The feed's connection dropped (a server restart, a network cut): it comes back
        # by itself and says "*", since changes may have been missed meanwhile.
        with psycopg.connect(pg_url, autocommit=True) as admin:
            ended = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE query LIKE 'LISTEN%' AND datname = current_database()"
            ).fetchall()
        assert ended == [(True,)]
        assert heard.get(timeout=30) == "*"
        later = there.create_intent(JobSpec(Provider.NANOPHOTO, "after"), estimate=4,
                                    key_fingerprint="k", now=1.8e9 + 20)  # fmt: skip
        assert heard.get(timeout=30) == later.id
    finally:
        feed.close()
        here.close()
        there.close()


async def test_a_dashboard_shows_another_machines_task_as_it_is_written(
    pg_url, live_settings
) -> None:
    """Machine A (another handle, another owner) submits and finishes a task; the
    dashboard on B lists it and follows its status without any resync."""
    from tui_helpers import wait_until

    from seedance_tui.models import JobSpec, Provider, TaskStatus, TaskUpdate
    from seedance_tui.tui.app import SeedanceApp
    from seedance_tui.tui.messages import CreditsComputed
    from seedance_tui.tui.task_list import TaskList

    live_settings.db_url = pg_url
    app = SeedanceApp(live_settings)
    machine_a = PgStore.open(pg_url, owner="machine-a.invalid:1")
    sums: list[dict] = []

    def hook(message) -> None:
        if isinstance(message, CreditsComputed):
            sums.append(message.summary)

    try:
        async with app.run_test(size=(120, 40), message_hook=hook) as pilot:
            tasks = app.query_one(TaskList)
            await wait_until(pilot, lambda: sums, "the credits panel summed the database")
            await wait_until(pilot, lambda: app.session.feed is not None)
            await wait_until(pilot, lambda: app.session.feed.listening.is_set())
            assert tasks.total == 0
            intent = machine_a.create_intent(
                JobSpec(Provider.NANOPHOTO, "from machine A"), estimate=4,
                key_fingerprint="elsewhere", now=app.clock(),
            )  # fmt: skip
            await wait_until(pilot, lambda: tasks.total == 1)
            assert tasks.task_at(0).id == intent.id
            update = TaskUpdate("t-a1", TaskStatus.PROCESSING)
            machine_a.record_submitted(intent.id, "t-a1", update, app.clock())
            await wait_until(pilot, lambda: tasks.task_at(0).status is TaskStatus.PROCESSING)
            done = TaskUpdate("t-a1", TaskStatus.FAILED, error="render failed on A")
            machine_a.apply_update(intent.id, done, app.clock())
            await wait_until(pilot, lambda: tasks.task_at(0).status is TaskStatus.FAILED)
    finally:
        machine_a.close()


# -- backups, imports and the move ------------------------------------------------------


def test_a_sqlite_history_moves_into_postgres_with_one_command_and_back(
    pg_url, tmp_path, capsys
) -> None:
    """`--db URL import FILE`: every task as it stands (key fingerprint, poll times,
    who submitted it) with its timeline; run again, nothing twice. `history backup` of
    the database is a SQLite history that imports into a new file the same way."""
    from seedance_tui.demo import seed_history
    from seedance_tui.models import JobSpec, Provider, TaskStatus, TaskUpdate
    from seedance_tui.store import Store

    old = tmp_path / "laptop.db"
    laptop = Store.open(old)
    seed_history(laptop, 1.8e9, media_base="http://127.0.0.1:1")
    pending = laptop.create_intent(JobSpec(Provider.NANOPHOTO, "still rendering"), estimate=8,
                                   key_fingerprint="fp-laptop", now=1.8e9)  # fmt: skip
    pending = laptop.record_submitted(pending.id, "t-pending", TaskUpdate("t-pending",
                                      TaskStatus.PROCESSING), 1.8e9 + 1)  # fmt: skip
    everything = laptop.list(limit=None)
    timelines = {t.id: laptop.events(t.id) for t in everything}
    laptop.close()

    assert cli.main(["--db", pg_url, "import", str(old)]) == 0
    assert f"imported {len(everything)} task(s), skipped 0" in capsys.readouterr().err
    studio = open_store(pg_url)
    try:
        assert studio.list(limit=None) == everything
        assert {t.id: studio.events(t.id) for t in everything} == timelines
        assert studio.get(pending.id).key_fingerprint == "fp-laptop"
        assert [t.id for t in studio.pending()] == [pending.id]
    finally:
        studio.close()
    assert cli.main(["--db", pg_url, "import", str(old)]) == 0
    assert f"imported 0 task(s), skipped {len(everything)}" in capsys.readouterr().err

    backup = tmp_path / "studio-backup.db"
    assert cli.main(["--db", pg_url, "history", "backup", str(backup)]) == 0
    fresh = tmp_path / "fresh.db"
    assert cli.main(["--db", str(fresh), "import", str(backup)]) == 0
    copy = Store.open(fresh)
    try:
        assert copy.list(limit=None) == everything
        assert copy.events(pending.id) == timelines[pending.id]
    finally:
        copy.close()


# -- the engine on two machines ---------------------------------------------------------


async def test_a_429_one_machine_draws_pauses_the_key_on_the_other(pg_url, tmp_path) -> None:
    """The Retry-After of a 429 machine A drew holds machine B's next request of the same
    key too: B's `generate` leaves only once A's pause is over."""
    from hostile import HostileServer, json_answer
    from test_hostile_server import NANO_GENERATE, NANO_JOB, NANO_STATUS, settings_for

    from seedance_tui.engine import Engine
    from seedance_tui.keys import fingerprint
    from seedance_tui.models import Provider, TaskStatus

    def processing(task_id: str):
        return json_answer({"taskId": task_id, "status": "processing", "creditsUsed": 4})

    with HostileServer() as server:
        server.route(NANO_GENERATE, processing("t-1"), times=1)
        server.route(
            NANO_STATUS,
            json_answer({"error": "slow down", "errorCode": "API_KEY_RATE_LIMIT_EXCEEDED"},
                        status=429, headers={"Retry-After": "2"}),
        )  # fmt: skip
        server.route(NANO_GENERATE, processing("t-2"))
        settings = settings_for(server.base_url, tmp_path)
        settings.db_url = pg_url
        a = Engine(settings, PgStore.open(pg_url, owner="machine-a.invalid:1"))
        b = Engine(settings, PgStore.open(pg_url, owner="machine-b.invalid:2"))
        try:
            task = await a.submit(NANO_JOB)
            assert a.store.claim_poll(task.id, time.time(), 0)
            await a.poll(task.id)  # 429, Retry-After 2 s
            key = fingerprint(Provider.NANOPHOTO, NANO_KEY)
            until = b.store.key_pause(Provider.NANOPHOTO, key, time.time())
            assert until is not None  # in the database, for every machine
            later = await b.submit(NANO_JOB)
        finally:
            await a.aclose()
            await b.aclose()
            a.store.close()
            b.store.close()
        assert later.status is TaskStatus.PROCESSING
        store = open_store(pg_url)
        try:
            rows = store.request_rows(Provider.NANOPHOTO, key, 0)
        finally:
            store.close()
        last = max(at for _row, at in rows)  # B's generate
        assert last >= until - 0.01, (last, until)


async def test_the_dashboards_search_takes_by_who(pg_url, live_settings) -> None:
    """`by:WHO` in the search box narrows the list to one submitter's tasks (the rest of
    the box still searches the prompts)."""
    from tui_helpers import wait_until

    from seedance_tui.models import Provider, Task, TaskStatus
    from seedance_tui.tui.app import SeedanceApp
    from seedance_tui.tui.query import search_and_submitter
    from seedance_tui.tui.task_list import TaskList

    assert search_and_submitter("fox by:ana@box beach") == ("fox beach", "ana@box")
    assert search_and_submitter("by: fox") == ("by: fox", None)
    store = open_store(pg_url)
    try:
        for i, who in enumerate(["ana@render-box", "ben@render-box", "ana@laptop"]):
            store.insert_task(Task(id=f"019aaaa00000000{i}", provider=Provider.NANOPHOTO,
                                   prompt=f"fox {i}", status=TaskStatus.COMPLETED, params={},
                                   created_at=1.8e9 + i, submitted_by=who))  # fmt: skip
    finally:
        store.close()
    live_settings.db_url = pg_url
    app = SeedanceApp(live_settings, poll=False)
    async with app.run_test(size=(120, 40)) as pilot:
        tasks = app.query_one(TaskList)
        await wait_until(pilot, lambda: tasks.total == 3)
        app.dashboard.set_search("by:@render-box")
        await wait_until(pilot, lambda: tasks.total == 2)
        app.dashboard.set_search("fox 2 by:ana")
        await wait_until(pilot, lambda: tasks.total == 1 and tasks.task_at(0).prompt == "fox 2")


def test_a_database_server_out_of_reach_says_to_check_the_server(pg_url) -> None:
    """The writers' backoff notice for a shared history whose server dropped the
    connection names the server (and never the password), not a lock to close."""
    from seedance_tui.store import StoreUnreachableError
    from seedance_tui.write_backoff import WriteBackoff

    store = PgStore.open(with_password(pg_url))
    try:
        store.set_state("reachable", "1")  # the pool's connection, used once
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        with pytest.raises(StoreUnreachableError) as caught:
            store.set_state("reachable", "2")
    finally:
        store.close()
    notices: list[tuple[str, str, str]] = []
    backoff = WriteBackoff(lambda: 0.0, lambda *notice: notices.append(notice))
    assert backoff.failed(caught.value) == 1.0
    [(topic, level, text)] = notices
    assert (topic, level) == ("store", "error")
    assert text.startswith("the history's database server cannot be reached (")
    assert redact(pg_url) in text and PASSWORD not in text
    assert "check that the server runs and that this machine reaches it" in text
    assert "close what holds it" not in text and "trying again in 1 s" in text


def test_serve_hands_a_url_to_its_dashboards_in_the_environment(monkeypatch) -> None:
    """A browser tab's dashboard gets the database URL from SEEDANCE_TUI_DB, never on
    its command line (which other users of the machine can read)."""
    from seedance_tui.cli.common import Options
    from seedance_tui.cli.serving import serve_command

    url = f"postgresql://postgres:{PASSWORD}@127.0.0.1:5432/studio"
    monkeypatch.setenv("SEEDANCE_TUI_DB", "")  # restored afterwards, whatever serve sets
    command = serve_command(Options(db=url))
    assert PASSWORD not in command and "postgresql" not in command and "--db" not in command
    assert os.environ["SEEDANCE_TUI_DB"] == url


def test_list_by_someone_with_no_tasks_says_none_match(pg_url, capsys) -> None:
    assert cli.main(["--db", pg_url, "list", "--by", "nobody@nowhere"]) == 0
    assert capsys.readouterr().err.strip() == "no tasks match"
