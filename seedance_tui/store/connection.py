"""The SQLite backend's connection and its boundary: every statement of an open history
runs through `Connection`'s write transaction (`_tx`) or its read helpers (`_all`,
`_one`, `_stream`), which turn an `sqlite3.Error` into a StoreError (errors.py) — the
one place that does, so no caller ever sees an `sqlite3` exception.

Each concern of the store is a mixin over this class (lifecycle.py, request_ledger.py,
queries.py, reports.py, transfer.py, queue_state.py); `sqlite.py` assembles them.
Mixins share one connection and one transaction discipline, and the public API stays
the flat set of methods every caller uses (`store.claim_poll(...)`), with no layer of
delegation to keep in step with it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from ..models import Task
from .errors import translate
from .rows import task_of, this_owner
from .schema import SCHEMA_VERSION


@contextmanager
def transaction(conn: sqlite3.Connection, path: Path | None) -> Iterator[sqlite3.Connection]:
    """One short write transaction (BEGIN IMMEDIATE: a second writer waits, not fails).

    An SQLite error comes out as a StoreError (StoreFullError when the disk is full),
    after the rollback; SQLite may have rolled back already (it does on a full disk), so
    the rollback is only asked for while a transaction is open."""
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as exc:
        raise translate(exc, path, writing=True) from None
    try:
        yield conn
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        _rollback(conn)
        raise translate(exc, path, writing=True) from None
    except BaseException:
        _rollback(conn)
        raise


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        with suppress(sqlite3.Error):  # SQLite may have ended it itself
            conn.execute("ROLLBACK")


class Connection:
    """One connection to a history file (or an in-memory one: `path` None). It belongs
    to the thread that opened it; `reader()` gives another thread its own."""

    # The migration from which the ledger links each request to its task (see
    # `orphan_stale_intents`), and how many migrations this backend has.
    LEDGER_LINK_MIGRATION = "m006_request_task"
    schema_version = SCHEMA_VERSION

    def __init__(
        self, conn: sqlite3.Connection, path: Path | None, *, owner: str | None = None
    ) -> None:
        self.conn = conn
        self.path = path
        self._owner = owner
        # A REPLACE that deletes a row fires its delete triggers (the prompt index's).
        conn.execute("PRAGMA recursive_triggers = ON")

    @property
    def owner(self) -> str:
        """Who this handle writes intents and holds poll leases as ("host:pid"): this
        process (asked each time: a forked child is another) unless opened as another."""
        return self._owner or this_owner()

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with transaction(self.conn, self.path) as tx:
            yield tx

    def _lock_key(self, tx: Any, name: str) -> None:
        """Hold `name` (a key's budget) until the write transaction ends, so that
        handles counting the same key's requests take turns. Nothing to do here: SQLite's
        BEGIN IMMEDIATE already makes every writer of the file wait for the one before."""

    def _all(self, sql: str, args: Any = ()) -> list[tuple]:
        try:
            return self.conn.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise translate(exc, self.path, writing=False) from None

    def _one(self, sql: str, args: Any = ()) -> tuple | None:
        try:
            return self.conn.execute(sql, args).fetchone()
        except sqlite3.Error as exc:
            raise translate(exc, self.path, writing=False) from None

    def _scalar(self, sql: str, args: Any = ()) -> Any:
        """The first column of the first row (None: no row)."""
        row = self._one(sql, args)
        return row[0] if row else None

    def _tasks(self, sql: str, args: Any = ()) -> list[Task]:
        return [task_of(row) for row in self._all(sql, args)]

    def _stream(self, sql: str, args: Any, size: int) -> Iterator[Task]:
        """The tasks of one statement, read `size` rows at a time."""
        try:
            cursor = self.conn.execute(sql, args)
        except sqlite3.Error as exc:
            raise translate(exc, self.path, writing=False) from None
        while True:
            try:
                chunk = cursor.fetchmany(size)
            except sqlite3.Error as exc:
                raise translate(exc, self.path, writing=False) from None
            if not chunk:
                return
            yield from map(task_of, chunk)
