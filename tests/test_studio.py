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
