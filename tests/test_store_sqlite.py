"""What only the SQLite backend has: its migrations, run as plain SQL inside the opening
transaction, and its error boundary — whatever SQLite raises, a caller sees a
StoreError subclass. (Refusals of unusable files: test_damaged.py; the behaviour every
backend shares: test_store_conformance.py.)"""

from __future__ import annotations

import sqlite3
import threading
from contextlib import closing
from pathlib import Path

import pytest
from test_damaged import damage_task_pages_in_wal_mode

import seedance_tui.store as store_package
from seedance_tui.models import JobSpec, Provider
from seedance_tui.store import (
    SCHEMA_VERSION,
    Filter,
    Store,
    StoreBusyError,
    StoreDamagedError,
    StoreError,
    StoreOpenError,
    StoreWriteError,
    is_transient,
    opening,
    schema,
)

NOW = 1_800_000_000.0


def schema_of(path: Path) -> tuple[int, list[str], set[tuple[str, str]]]:
    """(user_version, migrations applied, every table/index/trigger with its SQL)."""
    with closing(sqlite3.connect(path)) as conn:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        names = [row[0] for row in conn.execute("SELECT name FROM _migrations ORDER BY rowid")]
        objects = set(
            conn.execute("SELECT name, sql FROM sqlite_schema WHERE sql IS NOT NULL").fetchall()
        )
    return version, names, objects


def history_at(path: Path, version: int) -> None:
    """A history as a seedance-tui that knew only the first `version` migrations left it,
    with one task in it."""
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("BEGIN")
        conn.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
        for index, (name, migrate) in enumerate(schema.MIGRATIONS[:version], start=1):
            migrate(conn)
            conn.execute("INSERT INTO _migrations VALUES (?, '2026-01-01T00:00:00.000Z')", (name,))
            conn.execute(f"PRAGMA user_version = {index}")
        conn.execute(
            "INSERT INTO tasks (id, provider, status, prompt, params, created_at) "
            "VALUES ('0001', 'nanophoto', 'completed', 'a koi pond', '{}', "
            "'2026-01-01T00:00:00.000Z')"
        )
        conn.execute("COMMIT")


@pytest.mark.parametrize("version", range(1, SCHEMA_VERSION))
def test_a_history_of_every_older_schema_migrates_to_the_new_one(tmp_path, version) -> None:
    Store.open(tmp_path / "new.db").close()
    old = tmp_path / "old.db"
    history_at(old, version)
    store = Store.open(old)
    try:
        assert [t.prompt for t in store.list(Filter(search="koi"), limit=None)] == ["a koi pond"]
    finally:
        store.close()
    assert schema_of(old) == schema_of(tmp_path / "new.db")
    assert schema_of(old)[0] == SCHEMA_VERSION


def test_a_migration_that_fails_half_way_writes_nothing(tmp_path, monkeypatch) -> None:
    path = tmp_path / "h.db"
    Store.open(path).close()
    before = schema_of(path)

    def m007_broken(conn: sqlite3.Connection) -> None:
        schema.execute_script(
            conn, "CREATE TABLE half_done (x); INSERT INTO no_such_table VALUES (1);"
        )

    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, ("m007_broken", m007_broken)])
    with pytest.raises(StoreWriteError, match="no_such_table"):
        Store.open(path)
    assert schema_of(path) == before  # no half_done table, no m007 recorded


def test_a_script_splits_into_whole_statements() -> None:
    script = """
        CREATE TABLE a (x TEXT DEFAULT 'semi;colon');
        CREATE TRIGGER t AFTER INSERT ON a BEGIN
            INSERT INTO a VALUES ('one;'); INSERT INTO a VALUES ('two');
        END;
        -- a comment; with a semicolon
        CREATE INDEX i ON a(x)
    """
    parts = list(schema.statements(script))
    assert len(parts) == 3, parts
    assert parts[1].startswith("CREATE TRIGGER") and parts[1].endswith("END;")
    assert parts[2].startswith("-- a comment; with") and "CREATE INDEX i ON a(x)" in parts[2]
    with pytest.raises(ValueError, match="incomplete"):
        list(schema.statements("CREATE TABLE b (x TEXT DEFAULT 'never closed;"))


def test_no_store_error_is_an_sqlite3_exception() -> None:
    errors = [
        value for value in vars(store_package).values()
        if isinstance(value, type) and issubclass(value, StoreError)
    ]  # fmt: skip
    assert len(errors) >= 10
    assert not [cls for cls in errors if issubclass(cls, sqlite3.Error)]


def test_reads_of_a_damaged_history_raise_store_damaged_error(tmp_path, monkeypatch) -> None:
    """A large history is not read page by page when opened; every read that meets a
    damaged page raises StoreDamagedError (with the path and SQLite's words), never an
    sqlite3 exception."""
    monkeypatch.setattr(opening, "FULL_CHECK_MAX_BYTES", 0)
    path = tmp_path / "history.db"
    damage_task_pages_in_wal_mode(path)
    store = Store.open(path)
    reads = {
        "list": lambda: store.list(limit=None),
        "iter_tasks": lambda: list(store.iter_tasks(None, page=7)),
        "search": lambda: list(store.iter_tasks(Filter(search="prompt"))),
        "pending": store.pending,
        "credits_summary": lambda: store.credits_summary(NOW),
        "generation_history": store.generation_history,
        "stats": store.stats,
        "count": lambda: store.count(Filter(status=("submitting",))),
    }
    damaged = []
    try:
        for name, read in reads.items():
            try:
                read()
            except StoreDamagedError as exc:
                assert exc.path == path and not exc.untouched and exc.detail, name
                assert str(path) in str(exc) and "damaged" in str(exc), name
                damaged.append(name)
    finally:
        store.close()
    assert "list" in damaged and "iter_tasks" in damaged, damaged


def test_a_history_locked_by_another_program_is_a_transient_busy_error(tmp_path) -> None:
    path = tmp_path / "h.db"
    store = Store.open(path, busy_timeout=0.05)
    task = store.create_intent(JobSpec(Provider.NANOPHOTO, "x"), estimate=4,
                               key_fingerprint="fp", now=NOW)  # fmt: skip
    with closing(sqlite3.connect(path, isolation_level=None)) as other:
        other.execute("BEGIN EXCLUSIVE")
        with pytest.raises(StoreBusyError) as busy:
            store.set_state("queue_paused", "1")
        assert is_transient(busy.value) and busy.value.path == path
        other.execute("ROLLBACK")
    store.set_state("queue_paused", "1")  # the same write, once the lock is gone
    assert store.get_state("queue_paused") == "1" and store.get(task.id).prompt == "x"
    store.close()


def test_a_history_in_memory_has_no_reader_and_a_missing_file_none_either(tmp_path) -> None:
    store = Store.open(None)
    assert store.path is None and store.reader() is None
    store.close()
    with pytest.raises(StoreOpenError, match="cannot read"):
        Store.open_reader(tmp_path / "missing.db")
    with pytest.raises(StoreOpenError, match="no history file"):
        Store.open(tmp_path / "missing.db", create=False)


def test_a_reader_cannot_write(tmp_path) -> None:
    path = tmp_path / "h.db"
    Store.open(path).close()
    failures: list[BaseException] = []

    def write() -> None:
        reader = Store.open_reader(path)
        try:
            reader.set_state("queue_paused", "1")
        except BaseException as exc:
            failures.append(exc)
        finally:
            reader.close()

    thread = threading.Thread(target=write)
    thread.start()
    thread.join(timeout=60)
    [failure] = failures
    assert isinstance(failure, StoreWriteError) and "readonly" in str(failure)
