"""Damaged files: a corrupt history, one from a newer schema, another program's SQLite
file, an unwritable path. Each gets a clear message (exit 2 from the CLI), and the file
is never changed: not a byte, and no -wal/-shm files are left beside it."""

from __future__ import annotations

import asyncio
import hashlib
import os
import sqlite3
from pathlib import Path

import pytest

from seedance_tui import cli
from seedance_tui.models import JobSpec, Provider
from seedance_tui.store import SCHEMA_VERSION, Store, StoreError, opening


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def siblings(path: Path) -> set[str]:
    return {p.name for p in path.parent.iterdir()}


def make_history(path: Path, rows: int = 200) -> None:
    store = Store.open(path)
    for i in range(rows):
        spec = JobSpec(Provider.NANOPHOTO, f"prompt {i} " + "x" * 400)
        store.create_intent(spec, estimate=4, key_fingerprint="fp", now=1.7e9 + i)
    store.close()
    # Fold the WAL into the file so the damage below hits real pages.
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.close()


def garbage(path: Path) -> None:
    path.write_bytes(b"this is not a database, just some bytes\n" * 300)


def damaged_pages(path: Path) -> None:
    make_history(path)
    data = bytearray(path.read_bytes())
    for offset in range(4096 * 2, len(data), 4096 * 3):
        data[offset : offset + 1500] = bytes((offset + i) % 251 for i in range(1500))
    path.write_bytes(bytes(data))


def newer_schema(path: Path) -> None:
    make_history(path)
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 7}")
    conn.close()


def foreign(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, amount REAL)")
    conn.execute("INSERT INTO invoices (amount) VALUES (12.5)")
    conn.commit()
    conn.close()


def foreign_versioned(path: Path, *, version: int = 1, wal: bool = False) -> None:
    """Another program's file that numbers its schema too (`PRAGMA user_version`)."""
    conn = sqlite3.connect(path)
    if wal:
        conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO users (name) VALUES ('ada')")
    conn.execute(f"PRAGMA user_version = {version}")
    conn.commit()
    if wal:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def foreign_with_our_table_names(path: Path) -> None:
    """Another program that also has a `tasks` and a `_migrations` table (its own)."""
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE tasks (id INTEGER PRIMARY KEY, title TEXT, done INTEGER)")
    conn.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
    conn.execute("INSERT INTO _migrations VALUES ('0001_create_tasks', '2026-01-01')")
    conn.execute("PRAGMA user_version = 2")
    conn.commit()
    conn.close()


def foreign_migrations_table(path: Path) -> None:
    """Another program's `_migrations`, with columns of its own."""
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE _migrations (version INTEGER, checksum TEXT)")
    conn.execute("CREATE TABLE tasks (id INTEGER PRIMARY KEY)")
    conn.commit()
    conn.close()


def newer_migration(path: Path) -> None:
    """Ours, with a migration this version does not know (a newer seedance-tui added it)."""
    make_history(path)
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO _migrations VALUES ('m999_from_the_future', '2027-01-01')")
    conn.commit()
    conn.close()


CASES = {
    "garbage": (garbage, "not a readable history file"),
    "damaged pages": (damaged_pages, "damaged"),
    "newer schema": (newer_schema, "newer seedance-tui"),
    "newer migration": (newer_migration, "newer seedance-tui"),
    "another program's file": (foreign, "another program"),
    "another program's versioned file": (foreign_versioned, "another program"),
    "another program's file, version above ours": (
        lambda path: foreign_versioned(path, version=SCHEMA_VERSION + 3),
        "another program",
    ),
    "another program's file in WAL mode": (
        lambda path: foreign_versioned(path, wal=True),
        "another program",
    ),
    "another program's tasks and _migrations": (foreign_with_our_table_names, "another program"),
    "another program's _migrations columns": (foreign_migrations_table, "another program"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_an_unusable_history_file_is_refused_and_left_untouched(case: str, tmp_path: Path):
    make, words = CASES[case]
    path = tmp_path / "history.db"
    make(path)
    before, names = digest(path), siblings(path)
    with pytest.raises(StoreError) as excinfo:
        Store.open(path)
    assert words in str(excinfo.value)
    assert "--db" in str(excinfo.value) or "Upgrade" in str(excinfo.value)
    if words != "newer seedance-tui":
        assert "newer" not in str(excinfo.value)  # only our own schema can be newer
    assert digest(path) == before
    assert siblings(path) == names  # no -wal/-shm left beside it


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("command", [["list"], ["credits", "--json"], ["watch"]])
def test_the_cli_says_what_is_wrong_and_exits_2(case, command, tmp_path, capsys):
    make, words = CASES[case]
    path = tmp_path / "history.db"
    make(path)
    before = digest(path)
    code = cli.main(["--db", str(path), *command])
    captured = capsys.readouterr()
    assert code == 2
    assert "Traceback" not in captured.err
    assert captured.err.startswith("error: ") and words in captured.err
    assert captured.out == ""
    assert digest(path) == before
    assert siblings(path) == {"history.db"}  # no -wal/-shm left beside it


def test_an_unwritable_location_gets_a_clear_message(tmp_path: Path, capsys) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    for path, words in (
        (blocker / "history.db", "cannot create the folder"),
        (Path("/proc/seedance-history.db"), "cannot open or create"),  # unwritable, even to root
    ):
        with pytest.raises(StoreError, match=words):
            Store.open(path)
        code = cli.main(["--db", str(path), "list"])
        captured = capsys.readouterr()
        assert code == 2 and "Traceback" not in captured.err and words in captured.err
    assert blocker.read_text() == "not a folder"


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write whatever the mode says")
def test_a_read_only_history_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    make_history(path, rows=3)
    path.chmod(0o400)
    before = digest(path)
    with pytest.raises(StoreError, match="readable and writable"):
        Store.open(path)
    assert digest(path) == before


def test_a_healthy_history_still_opens_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    make_history(path, rows=5)
    store = Store.open(path)
    assert store.count() == 5
    store.close()


def damage_task_pages_in_wal_mode(path: Path) -> None:
    """A history in WAL mode (as this app leaves every file) with some pages of the tasks
    table damaged; the schema and the small tables stay sound."""
    make_history(path)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    try:
        pages = [row[0] for row in conn.execute("SELECT pageno FROM dbstat WHERE name='tasks'")]
    except sqlite3.OperationalError:
        pytest.skip("this SQLite has no dbstat table to find the tasks' pages")
    finally:
        conn.close()
    data = bytearray(path.read_bytes())
    for page in pages[1::3]:
        offset = (page - 1) * 4096
        data[offset : offset + 1500] = bytes((offset + i) % 251 for i in range(1500))
    path.write_bytes(bytes(data))


def test_a_large_history_is_checked_as_it_is_read(tmp_path: Path, monkeypatch, capsys) -> None:
    """Above FULL_CHECK_MAX_BYTES a history already in WAL mode is not read page by page
    when opened (seconds for a large file out of the page cache); damage is found as
    SQLite reads, and the command says so (exit 2, no traceback). A large file not yet
    in WAL mode (one we never opened, a backup) is still checked whole: opening it would
    rewrite its header."""
    monkeypatch.setattr(opening, "FULL_CHECK_MAX_BYTES", 0)
    path = tmp_path / "history.db"
    damaged_pages(path)  # left in rollback-journal mode
    before = digest(path)
    with pytest.raises(StoreError, match="damaged"):
        Store.open(path)
    assert digest(path) == before

    wal = tmp_path / "wal.db"
    damage_task_pages_in_wal_mode(wal)
    Store.open(wal).close()  # the cheap checks pass
    code = cli.main(["--db", str(wal), "list", "--limit", "500"])
    captured = capsys.readouterr()
    assert code == 2
    assert "Traceback" not in captured.err
    assert captured.err.startswith("error: ") and "damaged" in captured.err
    assert "left untouched" not in captured.err  # found while reading, not at open


async def test_the_dashboard_ends_with_a_message_on_a_damaged_page(
    tmp_path: Path, monkeypatch, capfd
) -> None:
    """The dashboard on a large history whose task pages are damaged: it ends with exit
    code 2 and the damaged-file message, not a traceback."""
    from seedance_tui.config import load_settings
    from seedance_tui.tui.app import SeedanceApp

    monkeypatch.setattr(opening, "FULL_CHECK_MAX_BYTES", 0)
    path = tmp_path / "history.db"
    damage_task_pages_in_wal_mode(path)
    app = SeedanceApp(load_settings(db=path, env={}), poll=False)
    # It ends by itself as the list reads its first page (run_test would wait for the
    # widgets it stopped half-way through mounting).
    await asyncio.wait_for(app.run_async(headless=True, size=(120, 40)), timeout=30)
    assert app.return_code == 2
    shown = capfd.readouterr()
    assert "error: " in shown.err and "damaged" in shown.err and "Traceback" not in shown.err
