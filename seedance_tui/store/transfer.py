"""Whole tasks in and out: a task inserted as it stands (demo history, imports), many at
once (benchmarks, `import`), and a consistent copy of the whole file (`history backup`)."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

from ..models import Task, TaskStatus
from .connection import Connection
from .errors import is_damage, translate
from .lifecycle import add_event_row
from .rows import INSERT_TASK, PLACEHOLDERS, TASK_COLUMNS, task_row

_TRIGGER = "SELECT sql FROM sqlite_schema WHERE type='trigger' AND name='tasks_fts_insert'"


class Transfer(Connection):
    def insert_task(self, task: Task, events: list[dict[str, Any]] | None = None) -> None:
        """Insert a whole task as it stands (demo history, imports), with its events."""
        with self._tx() as tx:
            tx.execute(INSERT_TASK, task_row(task))
            for event in events or ():
                status = event.get("status")
                add_event_row(
                    tx, task.id, event["at"], event["kind"],
                    TaskStatus(status) if status else None, event.get("detail"),
                )  # fmt: skip

    def bulk_import(self, tasks: Iterator[Task] | list[Task], batch: int = 20_000) -> int:
        """Insert many finished tasks at once (benchmarks, imports): one transaction, the
        prompt index rebuilt once at the end instead of row by row. No events are written."""
        trigger_sql = self._one(_TRIGGER)
        count = 0
        with self._tx() as tx:
            if trigger_sql:
                tx.execute("DROP TRIGGER tasks_fts_insert")
            chunk: list[tuple] = []
            for task in tasks:
                chunk.append(task_row(task))
                if len(chunk) >= batch:
                    tx.executemany(INSERT_TASK, chunk)
                    count += len(chunk)
                    chunk = []
            if chunk:
                tx.executemany(INSERT_TASK, chunk)
                count += len(chunk)
            tx.execute("INSERT INTO tasks_fts(tasks_fts) VALUES ('rebuild')")
            if trigger_sql:
                tx.execute(trigger_sql[0])
        return count

    def import_tasks(self, tasks: Iterable[Task], batch: int = 5_000) -> tuple[int, int]:
        """Insert tasks as they stand (an import), skipping any whose id or provider task
        id the history has already; returns (inserted, skipped). No events are written.

        All or nothing as far as `tasks` goes: every task is first staged in a temporary
        table (the connection's temp file, not the history), so an exception from the
        iterator (a bad row of an import file) leaves the history as it was. Then the
        staged rows are copied in batches, each its own short transaction, so memory
        stays flat and a writer sharing the file (a running dashboard) waits for one
        batch, never for the whole import. An import cut short there can be run again.

        The prompt index is filled once per batch from the new rows, which costs a third
        of what its per-row trigger does; the trigger is dropped and re-created inside the
        same transaction, so no other connection ever sees the table without it.
        """
        try:
            staged = self._stage(tasks, batch)
            inserted = 0
            for first in range(1, staged + 1, batch):
                with self._tx() as tx:
                    trigger = tx.execute(_TRIGGER).fetchone()
                    before = tx.execute("SELECT max(rowid) FROM tasks").fetchone()[0] or 0
                    if trigger:
                        tx.execute("DROP TRIGGER tasks_fts_insert")
                    inserted += tx.execute(
                        f"INSERT INTO tasks ({TASK_COLUMNS}) SELECT {TASK_COLUMNS} "
                        "FROM temp.import_staging WHERE rowid BETWEEN ? AND ? "
                        "ON CONFLICT DO NOTHING",
                        (first, first + batch - 1),
                    ).rowcount
                    tx.execute(
                        "INSERT INTO tasks_fts (rowid, prompt) SELECT rowid, prompt FROM tasks "
                        "WHERE rowid > ?",
                        (before,),
                    )
                    if trigger:
                        tx.execute(trigger[0])
            return inserted, staged - inserted
        finally:
            with suppress(sqlite3.Error):
                self.conn.execute("DROP TABLE IF EXISTS temp.import_staging")

    def _stage(self, tasks: Iterable[Task], batch: int) -> int:
        """Copy every task into a fresh temp.import_staging; how many there were."""
        conn = self.conn
        try:
            conn.execute("DROP TABLE IF EXISTS temp.import_staging")
            conn.execute(f"CREATE TEMP TABLE import_staging ({TASK_COLUMNS})")
            staged = 0
            source = iter(tasks)
            insert = f"INSERT INTO temp.import_staging VALUES ({PLACEHOLDERS})"
            while chunk := [task_row(task) for task in itertools.islice(source, batch)]:
                # A deferred transaction: it writes the temp file only, so it takes no
                # lock on the history (BEGIN IMMEDIATE would).
                conn.execute("BEGIN")
                try:
                    conn.executemany(insert, chunk)
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
                staged += len(chunk)
            return staged
        except sqlite3.Error as exc:
            raise translate(exc, self.path, writing=True) from None

    def backup_to(self, path: Path) -> None:
        """Copy the history into a new file with SQLite's online backup API: all pages in
        one step, so a consistent snapshot even while another instance writes."""
        try:
            target = sqlite3.connect(path)
        except sqlite3.Error as exc:
            raise translate(exc, path, writing=True) from None
        try:
            self.conn.backup(target)
            target.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
        except sqlite3.Error as exc:
            # Damage is the history's; anything else (a full disk, say) the copy's.
            raise translate(exc, self.path if is_damage(exc) else path, writing=True) from None
        finally:
            target.close()
