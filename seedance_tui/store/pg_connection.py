"""The PostgreSQL backend's connections and their boundary.

A handle holds a pool of connections (psycopg_pool), so that the dashboard's worker
threads read through handles sharing it (`reader()`). Every statement runs through
`_tx` (one transaction on one pooled connection) or the read helpers, which turn a
`psycopg.Error` into a StoreError — the one place that does.

The mixins (lifecycle.py, request_ledger.py, …) are written once for both backends:
their statements use `?` placeholders and SQL both databases speak. `PgTx` is what
they get as `tx` here: it turns `?` into psycopg's `%s` and gives the one statement
whose PostgreSQL form differs — a task's insert, which also fills the `search` column —
its PostgreSQL form.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import errors as pg_errors

from ..models import Task
from .connection import Connection
from .errors import (
    StoreBusyError,
    StoreConflictError,
    StoreError,
    StoreFullError,
    StoreReadError,
    StoreUnreachableError,
    StoreWriteError,
    damaged,
)
from .pg_schema import LEDGER_LINK_MIGRATION, SCHEMA_VERSION
from .pg_search import lexemes
from .rows import _NAMES, INSERT_TASK, task_of

PROMPT = _NAMES.index("prompt")
# A task's insert (rows.INSERT_TASK, lifecycle.INSERT_NEW: the task's columns first,
# maybe more after them) also fills `search` from the prompt.
_INSERT_PREFIX = INSERT_TASK.split(") VALUES")[0]


def inserts_task(sql: str) -> bool:
    return sql.startswith(_INSERT_PREFIX) and sql.endswith(")")


@functools.lru_cache(maxsize=512)
def pg_sql(sql: str) -> str:
    """A statement of the shared mixins in psycopg's placeholder style."""
    if inserts_task(sql):
        columns, _, values = sql.partition(") VALUES (")
        sql = f"{columns}, search) VALUES ({values[:-1]}, array_to_tsvector(?::text[]))"
    return sql.replace("%", "%%").replace("?", "%s")


def pg_args(sql: str, args: Sequence[Any]) -> Sequence[Any]:
    if inserts_task(sql):
        return (*args, lexemes(args[PROMPT]))
    return args


class PgTx:
    """The `tx` of a write transaction: execute/executemany as the mixins use them."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, args: Sequence[Any] = ()) -> psycopg.Cursor:
        return self.conn.execute(pg_sql(sql), pg_args(sql, args))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self.conn.cursor() as cursor:
            cursor.executemany(pg_sql(sql), [pg_args(sql, row) for row in rows])


def translate(exc: psycopg.Error, location: str, *, writing: bool) -> StoreError:
    """The StoreError for a psycopg error met while using an open history."""
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, pg_errors.DataCorrupted | pg_errors.IndexCorrupted):
        return damaged(None, f"{location}: {detail}", untouched=False)
    if isinstance(exc, pg_errors.DiskFull):
        return StoreFullError(
            f"cannot write {location}: the database server's disk is full. Free some "
            "space there: work resumes by itself once it can be recorded"
        )
    if isinstance(
        exc,
        pg_errors.LockNotAvailable | pg_errors.DeadlockDetected
        | pg_errors.SerializationFailure | pg_errors.QueryCanceled,
    ):  # fmt: skip
        return StoreBusyError(f"{location} stayed locked by another program: {detail}")
    if isinstance(exc, psycopg.IntegrityError):
        return StoreConflictError(detail)
    if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        return StoreUnreachableError(
            f"cannot reach {location}: {detail}. Check that the server runs and the "
            "network; the call may be tried again",
            detail=f"{location}: {detail}",
        )
    if writing:
        return StoreWriteError(f"cannot write {location}: {detail}")
    return StoreReadError(f"cannot read {location}: {detail}")


class PgConnection(Connection):
    """A handle on a PostgreSQL history: a pool of connections (shared by the handles
    `reader()` gives), `location` the database's URL without its password."""

    LEDGER_LINK_MIGRATION = LEDGER_LINK_MIGRATION
    schema_version = SCHEMA_VERSION

    def __init__(
        self, pool: Any, location: str, *, owner: str | None = None, owns_pool: bool = True
    ) -> None:
        self.pool = pool
        self.location = location
        self.path = None
        self._owner = owner
        self._owns_pool = owns_pool
        self._url = ""  # to connect the change feed (set by PgStore.open)
        self._writer = ""  # this process's application_name

    def close(self) -> None:
        if self._owns_pool:
            self.pool.close()

    @contextmanager
    def _tx(self) -> Iterator[PgTx]:
        try:
            with self.pool.connection() as conn, conn.transaction():
                yield PgTx(conn)
        except psycopg.Error as exc:
            raise translate(exc, self.location, writing=True) from None

    def _lock_key(self, tx: Any, name: str) -> None:
        """Take turns with every handle, on every machine, counting this key's requests:
        a lock held until the transaction ends (READ COMMITTED alone would let two
        handles count the same free slot)."""
        tx.conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (name,))

    def _all(self, sql: str, args: Any = ()) -> list[tuple]:
        try:
            with self.pool.connection() as conn:
                return conn.execute(pg_sql(sql), args).fetchall()
        except psycopg.Error as exc:
            raise translate(exc, self.location, writing=False) from None

    def _one(self, sql: str, args: Any = ()) -> tuple | None:
        try:
            with self.pool.connection() as conn:
                return conn.execute(pg_sql(sql), args).fetchone()
        except psycopg.Error as exc:
            raise translate(exc, self.location, writing=False) from None

    def _stream(self, sql: str, args: Any, size: int) -> Iterator[Task]:
        """The tasks of one statement through a server-side cursor, `size` rows at a
        time (the memory of one page, at any size)."""
        try:
            with (
                self.pool.connection() as conn,
                conn.transaction(),
                conn.cursor(name="seedance_tui_stream") as cursor,
            ):
                cursor.itersize = size
                cursor.execute(pg_sql(sql), args)
                while chunk := cursor.fetchmany(size):
                    yield from map(task_of, chunk)
        except psycopg.Error as exc:
            raise translate(exc, self.location, writing=False) from None
