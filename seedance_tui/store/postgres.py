"""The PostgreSQL backend (studio mode): one history shared by many machines.

The same mixins as the SQLite store over a pool of connections (pg_connection.py), with
what differs: search through the `search` tsvector (pg_search.py), bulk writes with
COPY, imports staged in a temporary table, and a backup that is a plain SQLite history
file. Guarantees that SQLite gets from BEGIN IMMEDIATE (one writer at a time) come from
PostgreSQL's row locks (a second UPDATE of a row waits for the first to commit and
re-checks its WHERE against the row as written: one poll lease, one claimed queued job)
and from an advisory lock per key around the request ledger's count-then-insert.

Needs the optional extra `seedance-tui[postgres]` (psycopg 3, its binary package and
psycopg-pool); `locations.open_store` says so when it is missing.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from ..models import Task, iso
from .dsn import redact
from .errors import StoreError, StoreOpenError
from .interface import Filter
from .lifecycle import Lifecycle
from .pg_connection import PgConnection, translate
from .pg_feed import ChangeFeed, application_name
from .pg_schema import NOTIFY_CHANNEL, migrate
from .pg_search import tsquery, tsvector_text
from .queries import Queries, filter_clauses
from .queue_state import QueueState
from .reports import Reports
from .request_ledger import RequestLedger
from .rows import TASK_COLUMNS, task_row, this_owner
from .spending import Spending
from .transfer import Transfer

CONNECT_TIMEOUT = 10  # seconds to reach the server before the open is refused
POOL_SIZE = 4  # connections a handle and its readers share at most


class PgQueries(Queries):
    def _filter_clauses(
        self, filter: Filter | None, *, walk: bool = False
    ) -> tuple[list[str], list[Any]]:
        filter = filter or Filter()
        clauses, args = filter_clauses(replace(filter, search=None))
        query = tsquery(filter.search or "")
        if query:
            clauses.append("search @@ ?::tsquery")
            args.append(query)
        return clauses, args

    def _count_matches(self, search: str) -> int:
        query = tsquery(search)
        if not query:
            return self.count()
        return self._scalar("SELECT count(*) FROM tasks WHERE search @@ ?::tsquery", (query,))

    def _walk(self, filter: Filter | None, sort: str, depth: int, matches: int | None) -> bool:
        return False  # PostgreSQL's planner weighs the GIN index against the time index

    def _max_rowid(self) -> int:
        return 0


class PgTransfer(Transfer):
    def bulk_import(self, tasks: Iterator[Task] | list[Task], batch: int = 20_000) -> int:
        """Many tasks in one transaction through COPY, searchable, with one notification
        ("*": reload) instead of one per task."""
        columns = f"{TASK_COLUMNS}, search"
        count = 0
        try:
            with self.pool.connection() as conn, conn.transaction():
                conn.execute("SET LOCAL seedance_tui.quiet = 'on'")
                with conn.cursor().copy(f"COPY tasks ({columns}) FROM STDIN") as copy:
                    for task in tasks:
                        row = task_row(task)
                        copy.write_row((*row, tsvector_text(task.prompt)))
                        count += 1
                conn.execute("SELECT pg_notify(%s, '*')", (NOTIFY_CHANNEL,))
            with self.pool.connection() as conn:
                # The planner's figures for what just arrived, and the visibility map that
                # lets a count read the indexes alone.
                conn.execute("VACUUM (ANALYZE) tasks")
        except psycopg.Error as exc:
            raise translate(exc, self.location, writing=True) from None
        return count

    def import_tasks(self, tasks: Iterable[Task], batch: int = 5_000) -> tuple[int, int]:
        """Tasks staged first in a temporary table of one connection (an exception from
        `tasks` leaves the history as it was), then copied in batches, each its own
        short transaction, skipping those whose id or provider task id is known."""
        columns = f"{TASK_COLUMNS}, search"
        try:
            with self.pool.connection() as conn:
                try:
                    staged = self._pg_stage(conn, tasks, columns)
                    inserted = 0
                    for first in range(1, staged + 1, batch):
                        with conn.transaction():
                            inserted += conn.execute(
                                f"INSERT INTO tasks ({columns}) SELECT {columns} "
                                "FROM import_staging WHERE n BETWEEN %s AND %s "
                                "ON CONFLICT DO NOTHING",
                                (first, first + batch - 1),
                            ).rowcount
                    return inserted, staged - inserted
                finally:
                    conn.execute("DROP TABLE IF EXISTS import_staging")
        except psycopg.Error as exc:
            raise translate(exc, self.location, writing=True) from None

    def _pg_stage(self, conn: psycopg.Connection, tasks: Iterable[Task], columns: str) -> int:
        conn.execute("DROP TABLE IF EXISTS import_staging")
        conn.execute(
            "CREATE TEMP TABLE import_staging AS SELECT "
            f"0::bigint AS n, {columns} FROM tasks WITH NO DATA"
        )
        staged = 0
        source = iter(tasks)
        while chunk := list(itertools.islice(source, 5_000)):
            with (
                conn.transaction(),
                conn.cursor().copy(f"COPY import_staging (n, {columns}) FROM STDIN") as copy,
            ):
                for task in chunk:
                    staged += 1
                    copy.write_row((staged, *task_row(task), tsvector_text(task.prompt)))
        return staged

    def backup_to(self, path: Path) -> None:
        """A consistent snapshot (one REPEATABLE READ transaction) of every table,
        written as a new SQLite history file at `path`: it opens anywhere, and `import`
        or `history move` bring it back into a server."""
        from .sqlite import Store

        if path.exists():
            raise StoreOpenError(f"{path} exists already; choose a new file", path=path)
        target = Store.open(path)
        try:
            with self.pool.connection() as conn:
                conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
                try:
                    with conn.transaction():
                        copy_tables(conn, target)
                finally:
                    conn.isolation_level = None
        except psycopg.Error as exc:
            target.close()
            path.unlink(missing_ok=True)
            raise translate(exc, self.location, writing=False) from None
        except BaseException:
            target.close()
            path.unlink(missing_ok=True)
            raise
        target.close()


def copy_tables(conn: psycopg.Connection, target: Any) -> None:
    """Every row of the history read on `conn` into the (new, empty) SQLite `target`."""
    tables = [
        ("tasks", f"{TASK_COLUMNS}, committed_at, over_cap"),
        ("events", "id, task, at, kind, status, detail"),
        ("requests", "id, at, provider, key_fingerprint, endpoint, http_status, sent, "
                     "elapsed_ms, error, task"),
        ("app_state", "name, value"),
    ]  # fmt: skip
    with target._tx() as tx:
        for table, columns in tables:
            marks = ",".join("?" * len(columns.split(", ")))
            with conn.cursor(name=f"backup_{table}") as cursor:
                cursor.itersize = 5_000
                cursor.execute(f"SELECT {columns} FROM {table}")
                while chunk := cursor.fetchmany(5_000):
                    tx.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", chunk)


class PgStore(
    Lifecycle, Spending, RequestLedger, PgQueries, Reports, PgTransfer, QueueState, PgConnection
):
    """The history in a PostgreSQL database, shared by every machine that opens it.
    Conforms to `StoreBackend` (interface.py)."""

    @classmethod
    def open(cls, url: str, *, owner: str | None = None, location: str | None = None) -> PgStore:
        """Connect, check what the database holds (refusing another program's tables
        or a newer schema, untouched), migrate it, and pool connections to it. The
        password comes from the URL, PGPASSWORD or ~/.pgpass (libpq's lookup) and is
        kept in memory only; `location` (what messages name) never carries it."""
        location = location or redact(url)
        try:
            probe = psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT)
        except psycopg.Error as exc:
            raise StoreOpenError(
                f"cannot connect to {location}: {_first_line(exc)}. Check the URL, that "
                "the server runs and accepts you (password from the URL, PGPASSWORD or "
                "~/.pgpass)"
            ) from None
        try:
            migrate(probe, location, iso(time.time()) or "")
        except psycopg.Error as exc:
            raise StoreOpenError(f"cannot prepare {location}: {_first_line(exc)}") from None
        finally:
            probe.close()
        writer = application_name(owner or this_owner())
        pool = ConnectionPool(
            url,
            min_size=1,
            max_size=POOL_SIZE,
            kwargs={
                "autocommit": True,
                "connect_timeout": CONNECT_TIMEOUT,
                "application_name": writer,
            },
            open=False,
            num_workers=1,
            name="seedance-tui",
        )
        try:
            pool.open(wait=True, timeout=CONNECT_TIMEOUT + 5)
        except (psycopg.Error, StoreError) as exc:
            pool.close()
            raise StoreOpenError(f"cannot connect to {location}: {_first_line(exc)}") from None
        store = cls(pool, location, owner=owner)
        store._url, store._writer = url, writer
        return store

    def reader(self) -> PgStore:
        """A handle for another thread, on this handle's pool (closing it keeps the pool)."""
        handle = type(self)(self.pool, self.location, owner=self._owner, owns_pool=False)
        handle._url, handle._writer = self._url, self._writer
        return handle

    def changes(self, on_change: Callable[[str], None]) -> ChangeFeed:
        """Other processes' changes, live (LISTEN/NOTIFY on a connection of its own):
        `on_change(task id)`, or "*" for many at once, on the feed's thread."""
        return ChangeFeed(self._url, self._writer, on_change)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
