"""The only place that speaks SQL: the history file.

Plain SQLite (WAL) that `sqlite3` or Datasette can open. Tables:

  tasks     one row per job: spec, normalised status, the provider's task id,
            estimated/charged/refunded credits, result URLs, error, times.
  events    append-only: each status change and a summary of each server answer.
  requests  one row per HTTP request to a provider: time, provider, key fingerprint
            (never the key), endpoint, HTTP status. The rate budget is computed from it.
  tasks_fts FTS5 index of prompts (kept by triggers that fire only when a prompt changes).
  _migrations  named migrations applied, in order.

Times are ISO 8601 UTC text with milliseconds ("2026-11-21T05:33:00.000Z"), which sort
as text. Every write is its own short transaction, committed before the caller goes on.
"""

from __future__ import annotations

import heapq
import itertools
import json
import math
import os
import socket
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .models import (
    PENDING_STATUSES,
    JobSpec,
    Provider,
    Task,
    TaskStatus,
    TaskUpdate,
    from_iso,
    iso,
)

if TYPE_CHECKING:
    import sqlite_utils


class StoreError(Exception):
    """The history file cannot be used; the message says why and what to do."""


class StoreWriteError(StoreError):
    """A write to the history failed (and was rolled back). `transient`: the same write
    may succeed later as it is (space freed, a lock released)."""

    transient = False


class StoreFullError(StoreWriteError):
    """The disk (or the filesystem's quota) holding the history is full: nothing was
    written. Writes succeed again once space is freed."""

    transient = True


class StoreBusyError(StoreWriteError):
    """Another program held the history file locked for longer than the busy timeout."""

    transient = True


def is_transient(exc: BaseException) -> bool:
    """Is this a store error that the same write may overcome later?"""
    return isinstance(exc, StoreWriteError) and exc.transient


class StoreDamagedError(StoreError, sqlite3.DatabaseError):
    """SQLite found the file damaged while writing (also a DatabaseError, as a damaged
    page found while reading is, so that one handler reports both)."""


class StoreConflictError(StoreWriteError, sqlite3.IntegrityError):
    """A row breaks a constraint (e.g. a provider's task id already in the history)."""


def is_damage(exc: sqlite3.Error) -> bool:
    """Did SQLite find the file damaged (or not a database) while reading it?"""
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)


def damaged_message(path: Path | None, detail: str, *, untouched: bool = True) -> str:
    left = "; it was left untouched" if untouched else ""
    return (
        f"{path} is damaged ({detail}){left}. Move it aside (`sqlite3 FILE .recover` may "
        "save its rows) or pass another path with --db"
    )


# -- migrations ------------------------------------------------------------------------

Migration = Callable[["sqlite_utils.Database"], None]
MIGRATIONS: list[tuple[str, Migration]] = []


def migration(fn: Migration) -> Migration:
    MIGRATIONS.append((fn.__name__, fn))
    return fn


@migration
def m001_initial(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        CREATE TABLE tasks (
            id TEXT PRIMARY KEY,
            provider TEXT NOT NULL,
            task_id TEXT,
            key_fingerprint TEXT,
            status TEXT NOT NULL,
            prompt TEXT NOT NULL,
            params TEXT NOT NULL,
            credits_estimated INTEGER,
            credits_charged INTEGER,
            credits_refunded INTEGER NOT NULL DEFAULT 0,
            video_urls TEXT NOT NULL DEFAULT '[]',
            error TEXT,
            created_at TEXT NOT NULL,
            submitted_at TEXT,
            completed_at TEXT,
            updated_at TEXT,
            generation_time REAL,
            last_polled_at TEXT,
            owner TEXT,
            local_path TEXT
        );
        CREATE UNIQUE INDEX idx_tasks_provider_task ON tasks(provider, task_id);
        CREATE INDEX idx_tasks_created ON tasks(created_at);
        CREATE INDEX idx_tasks_status_created ON tasks(status, created_at);
        CREATE INDEX idx_tasks_provider_created ON tasks(provider, created_at);
        CREATE INDEX idx_tasks_credits ON tasks(credits_charged, created_at);

        CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            task TEXT NOT NULL REFERENCES tasks(id),
            at TEXT NOT NULL,
            kind TEXT NOT NULL,
            status TEXT,
            detail TEXT
        );
        CREATE INDEX idx_events_task ON events(task, id);

        CREATE TABLE requests (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            provider TEXT NOT NULL,
            key_fingerprint TEXT NOT NULL,
            endpoint TEXT NOT NULL,
            http_status INTEGER,
            sent INTEGER NOT NULL,
            elapsed_ms INTEGER,
            error TEXT
        );
        CREATE INDEX idx_requests_key_at ON requests(provider, key_fingerprint, at);

        CREATE VIRTUAL TABLE tasks_fts USING fts5(
            prompt, content='tasks', content_rowid='rowid', tokenize='unicode61'
        );
        CREATE TRIGGER tasks_fts_insert AFTER INSERT ON tasks BEGIN
            INSERT INTO tasks_fts(rowid, prompt) VALUES (new.rowid, new.prompt);
        END;
        CREATE TRIGGER tasks_fts_delete AFTER DELETE ON tasks BEGIN
            INSERT INTO tasks_fts(tasks_fts, rowid, prompt) VALUES ('delete', old.rowid, old.prompt);
        END;
        CREATE TRIGGER tasks_fts_update AFTER UPDATE OF prompt ON tasks BEGIN
            INSERT INTO tasks_fts(tasks_fts, rowid, prompt) VALUES ('delete', old.rowid, old.prompt);
            INSERT INTO tasks_fts(rowid, prompt) VALUES (new.rowid, new.prompt);
        END;
        """
    )


@migration
def m002_app_state(db: sqlite_utils.Database) -> None:
    """Small persisted flags of the app, e.g. `queue_paused` ("1" or "0")."""
    db.executescript("CREATE TABLE app_state (name TEXT PRIMARY KEY, value TEXT)")


@migration
def m003_index_completed(db: sqlite_utils.Database) -> None:
    """`generation_history` (run at every start) reads the newest completed renders."""
    db.executescript("CREATE INDEX idx_tasks_status_completed ON tasks(status, completed_at)")


@migration
def m004_poll_lease(db: sqlite_utils.Database) -> None:
    """A poll in flight holds its task until the answer, so a second instance sharing the
    file never polls the same task concurrently (only a crashed poller's lease expires)."""
    db.executescript("ALTER TABLE tasks ADD COLUMN poll_lease_until TEXT")


@migration
def m005_index_credit_totals(db: sqlite_utils.Database) -> None:
    """`credits_summary` (the dashboard's credits panel, `credits`) sums every task's
    credits per provider and status: this index holds all it reads, a fraction of the
    table's pages."""
    db.executescript(
        "CREATE INDEX idx_tasks_credit_totals "
        "ON tasks(provider, status, credits_charged, credits_refunded)"
    )


@migration
def m006_request_task(db: sqlite_utils.Database) -> None:
    """Which task a request was sent for: a submission interrupted before its `generate`
    left (no such request) is `cancelled`, never `orphaned`."""
    db.executescript(
        "ALTER TABLE requests ADD COLUMN task TEXT;"
        "CREATE INDEX idx_requests_task ON requests(task) WHERE task IS NOT NULL;"
    )


SCHEMA_VERSION = len(MIGRATIONS)
# A persisted 429 pause further ahead than this is not believed (a clock set back, a
# bogus Retry-After): it is cut to this.
MAX_KEY_PAUSE = 3600.0
# Sane ranges of what the store records (a server's figure outside them is dropped).
MAX_CREDITS = 1_000_000
MAX_GENERATION_SECONDS = 86_400.0
# A history file up to this size is checked page by page (`PRAGMA quick_check`) each time
# it is opened: about 25 ms when the file is in the page cache, seconds when it is not
# (the check reads every page: 14 s for 1M tasks, 750 MB, here). A larger file already in
# WAL mode gets the cheap checks only: SQLite still refuses a damaged page when it reads
# one (stricter with `cell_size_check`), which `is_damage` tells apart from other errors.
FULL_CHECK_MAX_BYTES = 32 * 1024 * 1024

# -- the store -------------------------------------------------------------------------

TASK_COLUMNS = (
    "id, provider, task_id, key_fingerprint, status, prompt, params, credits_estimated, "
    "credits_charged, credits_refunded, video_urls, error, created_at, submitted_at, "
    "completed_at, updated_at, generation_time, last_polled_at, owner, local_path"
)

_ID, _CREATED_AT = (TASK_COLUMNS.split(", ").index(name) for name in ("id", "created_at"))


def new_task_id(now: float) -> str:
    """Time-ordered id: 12 hex digits of milliseconds, 8 random."""
    return f"{int(now * 1000):012x}{os.urandom(4).hex()}"


def this_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _owner_alive(owner: str | None) -> bool:
    """Is the process that wrote an intent row still running (on this host)?"""
    if not owner or ":" not in owner:
        return False
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname():
        return True  # can't tell: another machine sharing the file
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError):
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True, slots=True)
class Page:
    tasks: list[Task]
    total: int | None = None


@dataclass(frozen=True, slots=True)
class Filter:
    status: tuple[str, ...] = ()
    provider: str | None = None
    search: str | None = None
    since: float | None = None

    def where(self, *, walk: bool = False) -> tuple[list[str], list[Any]]:
        clauses: list[str] = []
        args: list[Any] = []
        if self.status:
            clauses.append(f"status IN ({','.join('?' * len(self.status))})")
            args.extend(self.status)
        if self.provider:
            clauses.append("provider = ?")
            args.append(self.provider)
        if self.since is not None:
            clauses.append("created_at >= ?")
            args.append(iso(self.since))
        query = fts_query(self.search or "")
        if query:
            # `+rowid` keeps SQLite from looking each match up by rowid: it walks an index
            # in the sort's order instead and tests each row against the match set.
            column = "+rowid" if walk else "rowid"
            clauses.append(f"{column} IN (SELECT rowid FROM tasks_fts WHERE tasks_fts MATCH ?)")
            args.append(query)
        return clauses, args


def fts_query(text: str) -> str:
    """User text → an FTS5 query: every word must match, as a prefix, literally."""
    words = [w for w in "".join(c if c.isalnum() else " " for c in text).split() if w]
    return " ".join(f'"{w}"*' for w in words[:16])


# Paging a search in a time sort can go two ways: look every match up and sort them (a row
# fetch per match), or walk the time index and test each row against the matches (about
# depth × rows ÷ matches index steps). A row fetch and its share of the sort cost about
# as much as WALK_STEPS_PER_MATCH steps of the walk (measured at 100k and 1M tasks).
WALK_STEPS_PER_MATCH = 40

SORTS = {
    "newest": "created_at DESC, id DESC",
    "oldest": "created_at ASC, id ASC",
    "credits": "COALESCE(credits_charged - credits_refunded, credits_estimated, 0) DESC, created_at DESC",
}


class Store:
    def __init__(self, conn: sqlite3.Connection, path: Path | None) -> None:
        self.conn = conn
        self.path = path
        self._db: sqlite_utils.Database | None = None
        # As sqlite-utils sets it on the connections it wraps: a REPLACE that deletes a
        # row fires its delete triggers (the prompt index's among them).
        conn.execute("PRAGMA recursive_triggers = ON")

    @property
    def db(self) -> sqlite_utils.Database:
        """The connection as a sqlite-utils Database (migrations, tools). Imported on first
        use: sqlite-utils takes longer to import than the dashboard takes to read its first
        page, and a start-up with nothing to migrate never needs it."""
        if self._db is None:
            import sqlite_utils

            self._db = sqlite_utils.Database(self.conn)
        return self._db

    # -- opening -----------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | os.PathLike[str] | None, *, create: bool = True) -> Store:
        """Open (and if new, create) the history file; never overwrites one we can't read."""
        if path is None or str(path) == ":memory:":
            conn = sqlite3.connect(":memory:", isolation_level=None)
            store = cls(conn, None)
            store._migrate()
            return store
        file = Path(path).expanduser()
        if file.is_dir():
            raise StoreError(f"{file} is a folder, not a history file; pass a file path with --db")
        if not file.exists():
            if not create:
                raise StoreError(f"no history file at {file}")
            try:
                file.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"cannot create the folder for {file}: {exc.strerror}; choose another path with --db"
                ) from None
        elif not os.access(file, os.R_OK | os.W_OK):
            raise StoreError(
                f"{file} is not readable and writable by you; fix its permissions or use --db"
            )
        try:
            conn = sqlite3.connect(file, timeout=10.0, isolation_level=None)
            conn.execute("PRAGMA busy_timeout = 10000")
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"cannot open or create {file} ({exc}); check that its folder is writable "
                "or pass another path with --db"
            ) from None
        store = cls(conn, file)
        try:
            # Read-only checks first: switching to WAL rewrites the header, and a file we
            # refuse (damaged, newer, another program's) must be left byte for byte.
            store._check_usable()
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                conn.execute("PRAGMA journal_mode = DELETE")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            # Damage found as pages are read, before a write can spread it (a large file is
            # not checked page by page at open).
            conn.execute("PRAGMA cell_size_check = ON")
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise StoreError(
                f"{file} is not a readable history file ({exc}); it was left untouched. "
                "Move it aside or pass another path with --db"
            ) from None
        except StoreError:
            conn.close()
            raise
        store._migrate()
        return store

    def _check_usable(self) -> None:
        """Refuse, without writing, a file of another program, of a newer schema, or damaged."""
        if self._refuse_unless_ours() == "ours":
            try:
                verdict = self._quick_check()
            except sqlite3.DatabaseError as exc:  # a check that trips over the damage
                verdict = str(exc)
            if verdict != "ok":
                raise StoreError(damaged_message(self.path, verdict))

    def _schema(self) -> str:
        """What the file holds, read without writing: "empty" (no table yet: a new
        history), "ours", "newer" (ours, from a newer seedance-tui) or "foreign".

        Told by our own tables — `tasks`, and `_migrations` naming our first migration —
        never by `PRAGMA user_version` alone: other programs number their schemas too."""
        conn = self.conn
        tables: set[str] = set()
        try:
            tables = {
                row[0] for row in conn.execute("SELECT name FROM sqlite_schema WHERE type='table'")
            }
            applied: set[str] = set()
            if "_migrations" in tables:
                applied = {row[0] for row in conn.execute("SELECT name FROM _migrations")}
        except sqlite3.DatabaseError as exc:
            code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
            if code == sqlite3.SQLITE_CORRUPT:
                raise StoreError(damaged_message(self.path, str(exc))) from None
            if code == sqlite3.SQLITE_ERROR and "_migrations" in tables:
                return "foreign"  # another program's `_migrations`, with other columns
            raise
        if not tables:
            return "empty"
        if "_migrations" not in tables:
            return "foreign"
        if tables == {"_migrations"} and not applied:
            return "empty"
        if MIGRATIONS[0][0] not in applied or "tasks" not in tables:
            return "foreign"
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION or applied - {name for name, _ in MIGRATIONS}:
            return "newer"
        return "ours"

    def _refuse_unless_ours(self) -> str:
        """The file's schema ("empty" or "ours"); a StoreError for any other."""
        schema = self._schema()
        if schema == "foreign":
            raise StoreError(
                f"{self.path} is an SQLite file of another program; it was left untouched. "
                "Pass another path with --db"
            )
        if schema == "newer":
            version = self.conn.execute("PRAGMA user_version").fetchone()[0]
            applied = [row[0] for row in self.conn.execute("SELECT name FROM _migrations")]
            unknown = sorted(set(applied) - {name for name, _ in MIGRATIONS})
            what = (
                f"schema {version}"
                if version > SCHEMA_VERSION
                else "migration " + ", ".join(unknown)
            )
            raise StoreError(
                f"{self.path} was written by a newer seedance-tui ({what}; this version "
                f"knows schema {SCHEMA_VERSION}); it was left untouched. Upgrade "
                "seedance-tui to open it"
            )
        return schema

    def _quick_check(self) -> str:
        """The verdict, "ok" or what is wrong. Every page of a file up to
        FULL_CHECK_MAX_BYTES or not yet in WAL mode (opening it rewrites its header: a file
        we never opened, or a backup); the schema and the small tables of a larger one we
        have (the rest as SQLite reads it)."""
        conn = self.conn
        assert self.path is not None
        wal = conn.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"
        if not wal or self.path.stat().st_size <= FULL_CHECK_MAX_BYTES:
            return conn.execute("PRAGMA quick_check(1)").fetchone()[0]
        small = conn.execute(
            "SELECT name FROM sqlite_schema WHERE type='table' "
            "AND name IN ('_migrations', 'app_state')"
        ).fetchall()
        for table in ["sqlite_schema", *(row[0] for row in small)]:
            verdict = conn.execute(f"PRAGMA quick_check({table})").fetchone()[0]
            if verdict != "ok":
                return verdict
        return "ok"

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction (BEGIN IMMEDIATE: a second writer waits, not fails).

        An SQLite error comes out as a StoreError subclass (StoreFullError when the disk
        is full), after the rollback; SQLite may have rolled back already (it does on a
        full disk), so the rollback is only asked for while a transaction is open."""
        conn = self.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise self._write_error(exc) from None
        try:
            yield conn
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            raise self._write_error(exc) from None
        except BaseException:
            self._rollback()
            raise

    def _rollback(self) -> None:
        if self.conn.in_transaction:
            with suppress(sqlite3.Error):  # SQLite may have ended it itself
                self.conn.execute("ROLLBACK")

    def _write_error(self, exc: sqlite3.Error) -> StoreError:
        code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
        where = self.path or "the history"
        error: StoreError
        if code == sqlite3.SQLITE_FULL:
            error = StoreFullError(
                f"cannot write {where}: the disk is full. Free some space: work resumes by "
                "itself once it can be recorded"
            )
        elif is_damage(exc):
            error = StoreDamagedError(damaged_message(self.path, str(exc), untouched=False))
        elif code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            error = StoreBusyError(f"{where} stayed locked by another program: {exc}")
        elif isinstance(exc, sqlite3.IntegrityError):
            error = StoreConflictError(str(exc))
        else:
            error = StoreWriteError(f"cannot write {where}: {exc}")
        error.sqlite_errorcode = getattr(exc, "sqlite_errorcode", None)  # type: ignore[attr-defined]
        return error

    def _migrate(self) -> None:
        conn = self.conn
        try:
            self._refuse_unless_ours()
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"{self.path} is not a readable history file ({exc}); it was left untouched. "
                "Move it aside or pass another path with --db"
            ) from None
        if version == SCHEMA_VERSION:
            return
        with self._tx() as tx:
            tx.execute(
                "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT)"
            )
            version = tx.execute("PRAGMA user_version").fetchone()[0]  # re-read under the lock
            for index, (name, fn) in enumerate(MIGRATIONS, start=1):
                if index <= version:
                    continue
                fn(self.db)
                tx.execute(
                    "INSERT OR REPLACE INTO _migrations VALUES (?, ?)", (name, iso(time.time()))
                )
                tx.execute(f"PRAGMA user_version = {index}")

    # -- writes ------------------------------------------------------------------------

    def create_intent(
        self, spec: JobSpec, *, estimate: int | None, key_fingerprint: str | None, now: float
    ) -> Task:
        """Record a submission before it is sent (status `submitting`), committed."""
        with self._tx() as tx:
            task = self._insert_new(
                tx, spec, TaskStatus.SUBMITTING, now, estimate, key_fingerprint, this_owner()
            )
            self._event(tx, task.id, now, "intent", task.status, f"estimate={estimate}")
        return task

    def _insert_new(
        self, tx: sqlite3.Connection, spec: JobSpec, status: TaskStatus, now: float,
        estimate: int | None, key_fingerprint: str | None, owner: str | None,
    ) -> Task:  # fmt: skip
        """Insert the row of a job not yet sent (submitting, or queued in a batch)."""
        task = Task(
            id=new_task_id(now), provider=spec.provider, status=status, prompt=spec.prompt,
            params=spec.params(), created_at=now, key_fingerprint=key_fingerprint,
            credits_estimated=estimate, updated_at=now,
        )  # fmt: skip
        tx.execute(
            "INSERT INTO tasks (id, provider, key_fingerprint, status, prompt, params, "
            "credits_estimated, created_at, updated_at, owner) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                task.id, task.provider.value, key_fingerprint, status.value, task.prompt,
                json.dumps(task.params), estimate, iso(now), iso(now), owner,
            ),
        )  # fmt: skip
        return task

    def record_submitted(
        self, id: str, answer_task_id: str, update: TaskUpdate, now: float
    ) -> Task:
        """The provider accepted the job: its task id and first answer, committed."""
        with self._tx() as tx:
            tx.execute(
                "UPDATE tasks SET task_id=?, status=?, submitted_at=?, updated_at=?, owner=NULL "
                "WHERE id=?",
                (answer_task_id, TaskStatus.PROCESSING.value, iso(now), iso(now), id),
            )
            self._event(
                tx,
                id,
                now,
                "submitted",
                TaskStatus.PROCESSING,
                f"task_id={answer_task_id} {update.summary}",
            )
            self._apply(tx, id, update, now, event=False)
        return self.get(id)

    def record_refusal(self, id: str, status: TaskStatus, error: str, now: float) -> Task:
        """The submission ended without a task id: `rejected` (refused), `cancelled` (its
        request never left) or `orphaned` (it left; the outcome is unknown)."""
        with self._tx() as tx:
            tx.execute(
                "UPDATE tasks SET status=?, error=?, updated_at=?, completed_at=?, owner=NULL "
                "WHERE id=? AND task_id IS NULL",
                (status.value, error, iso(now), iso(now), id),
            )
            self._event(tx, id, now, "status", status, error)
        return self.get(id)

    def record_lost(self, id: str, error: str, now: float) -> Task:
        """The provider no longer knows an accepted task (asked with the key it was
        submitted with): `orphaned`, its credits left as the server last reported them
        (it may have rendered and been charged; no refund is booked that no server
        reported)."""
        with self._tx() as tx:
            tx.execute(
                "UPDATE tasks SET status=?, error=?, updated_at=?, completed_at=?, "
                "poll_lease_until=NULL WHERE id=? AND status IN ('submitting', 'processing')",
                (TaskStatus.ORPHANED.value, error, iso(now), iso(now), id),
            )
            self._event(tx, id, now, "status", TaskStatus.ORPHANED, error)
        return self.get(id)

    def apply_update(self, id: str, update: TaskUpdate, now: float) -> tuple[Task, bool]:
        """Apply a status answer; returns the task and whether anything visible changed."""
        with self._tx() as tx:
            changed = self._apply(tx, id, update, now, event=True)
        return self.get(id), changed

    def _apply(
        self, tx: sqlite3.Connection, id: str, update: TaskUpdate, now: float, *, event: bool
    ) -> bool:
        row = tx.execute(
            "SELECT status, credits_charged, credits_refunded, credits_estimated, video_urls, "
            "error, generation_time, submitted_at FROM tasks WHERE id=?",
            (id,),
        ).fetchone()
        if row is None:
            raise StoreError(f"no task {id}")
        old_status = TaskStatus(row[0])
        if old_status.is_terminal and old_status is not TaskStatus.ORPHANED:
            return False  # a late answer never reopens a finished task
        charged, refunded, estimated = row[1], row[2], row[3]
        status = update.status
        reported = _sane_credits(update.credits_charged)
        if reported:
            charged = max(charged or 0, reported)
        if status is TaskStatus.FAILED:
            # Failed renders are refunded (both providers' docs). When the server only ever
            # said "0" (seedance15pro reports 0 once refunded), the charge was the estimate.
            if not charged:
                charged = estimated
            refunded = charged or 0
        urls = json.dumps(list(update.video_urls)) if update.video_urls else row[4]
        error = update.error if update.error else row[5]
        reported_time = _sane_seconds(update.generation_time)
        generation_time = reported_time if reported_time is not None else row[6]
        completed_at = None
        if status.is_terminal:
            completed_at = iso(now)
            if generation_time is None and row[7]:
                # From the submission to now; a clock set back can make it negative.
                generation_time = _sane_seconds(round(now - (from_iso(row[7]) or now), 1))
        new = (status.value, charged, refunded, urls, error, generation_time)
        old = (row[0], row[1], row[2], row[4], row[5], row[6])
        changed = new != old
        tx.execute(
            "UPDATE tasks SET status=?, credits_charged=?, credits_refunded=?, video_urls=?, "
            "error=?, generation_time=?, updated_at=?, last_polled_at=?, poll_lease_until=NULL, "
            "completed_at=COALESCE(completed_at, ?) WHERE id=?",
            (*new, iso(now), iso(now), completed_at, id),
        )
        if event and (changed or update.summary):
            self._event(
                tx,
                id,
                now,
                "status" if status is not old_status else "answer",
                status,
                update.summary,
            )
        if update.oddities:
            # What the server sent that could not be used, kept for the user to see.
            self._event(tx, id, now, "oddity", None, "; ".join(update.oddities))
        return changed

    def _event(
        self,
        tx: sqlite3.Connection,
        id: str,
        now: float,
        kind: str,
        status: TaskStatus | None,
        detail: str | None,
    ) -> None:
        tx.execute(
            "INSERT INTO events (task, at, kind, status, detail) VALUES (?,?,?,?,?)",
            (id, iso(now), kind, status.value if status else None, (detail or "")[:1000]),
        )

    def add_event(
        self, id: str, kind: str, detail: str, now: float, status: TaskStatus | None = None
    ) -> None:
        with self._tx() as tx:
            self._event(tx, id, now, kind, status, detail)

    def claim_poll(
        self,
        id: str,
        now: float,
        min_interval: float,
        lease: float = 120.0,
        slack: float = 30.0,
        own: float | None = None,
    ) -> bool:
        """Take a task's poll: refused while another poll of it is in flight (its lease) or
        when some instance polled it within min_interval.

        One statement, so two instances sharing the file never both claim the same poll.
        The lease is released with the answer (`_apply`) or by `release_poll`. The row's
        `owner` names the poller holding the lease: a lease whose poller is gone (killed
        on this machine) ends with it, instead of delaying the task until it expires. A
        poll time more than `slack` in the future, or a lease longer than `lease` from
        now, is not believed (it was written before the clock was set back). `own`: the
        poll time this instance wrote last; if it is still the task's, the spacing is this
        instance's own schedule's business.
        """
        owner = this_owner()
        with self._tx() as tx:
            cursor = tx.execute(
                "UPDATE tasks SET last_polled_at=?, poll_lease_until=?, owner=? WHERE id=? "
                "AND status IN ('processing') "
                "AND (last_polled_at IS NULL OR last_polled_at <= ? OR last_polled_at > ? "
                "OR last_polled_at = ?) "
                "AND (poll_lease_until IS NULL OR poll_lease_until <= ? "
                "OR poll_lease_until > ?)",
                (
                    iso(now), iso(now + lease), owner, id, iso(now - min_interval),
                    iso(now + slack), iso(own) if own is not None else "", iso(now),
                    iso(now + lease + slack),
                ),
            )  # fmt: skip
            if cursor.rowcount == 1:
                return True
            held = tx.execute(
                "SELECT owner, poll_lease_until FROM tasks WHERE id=? "
                "AND status IN ('processing') AND poll_lease_until > ?",
                (id, iso(now)),
            ).fetchone()
            if held is None or not held[0] or held[0] == owner or _owner_alive(held[0]):
                return False
            cursor = tx.execute(
                "UPDATE tasks SET last_polled_at=?, poll_lease_until=?, owner=? WHERE id=? "
                "AND owner=? AND poll_lease_until=?",
                (iso(now), iso(now + lease), owner, id, held[0], held[1]),
            )
            return cursor.rowcount == 1

    def release_poll(self, id: str, now: float) -> None:
        """The poll ended without an answer to apply: free the task for the next poll."""
        with self._tx() as tx:
            tx.execute(
                "UPDATE tasks SET poll_lease_until=NULL, last_polled_at=? WHERE id=? "
                "AND poll_lease_until IS NOT NULL",
                (iso(now), id),
            )

    # -- the request ledger (written by `ledger.py` only) ---------------------------

    def claim_request(
        self,
        *,
        provider: Provider,
        key_fingerprint: str,
        endpoint: str,
        now: float,
        limit: int | None,
        window: float = 3600.0,
        task: str | None = None,
    ) -> Claim:
        """Count a request in the ledger before it is sent, unless the key is paused by a
        429 (persisted by any instance) or its limit over the last `window` seconds is
        spent. One transaction, so instances sharing the file never both take the last
        request of the window; `finish_request` then records how it went.

        Times written by other instances (or before a clock change) are believed within
        bounds: a request time in the future still counts, a pause is cut to
        MAX_KEY_PAUSE from now."""
        with self._tx() as tx:
            paused = tx.execute(
                "SELECT value FROM app_state WHERE name=?",
                (_pause_name(provider, key_fingerprint),),
            ).fetchone()
            until = _pause_until(paused[0] if paused else None, now)
            if until is not None:
                return Claim(None, retry_at=until, paused=True)
            if limit is not None:
                used = tx.execute(
                    "SELECT count(*) FROM requests WHERE provider=? AND key_fingerprint=? "
                    "AND sent=1 AND at > ?",
                    (provider.value, key_fingerprint, iso(now - window)),
                ).fetchone()[0]
                if used >= limit:
                    # The request that frees the slot: the oldest of the last `limit`.
                    oldest = tx.execute(
                        "SELECT at FROM requests WHERE provider=? AND key_fingerprint=? "
                        "AND sent=1 AND at > ? ORDER BY at DESC LIMIT 1 OFFSET ?",
                        (provider.value, key_fingerprint, iso(now - window), limit - 1),
                    ).fetchone()
                    frees = (from_iso(oldest[0]) or now) + window if oldest else now + window
                    return Claim(None, retry_at=min(max(frees, now + 1.0), now + window))
            cursor = tx.execute(
                "INSERT INTO requests (at, provider, key_fingerprint, endpoint, http_status, sent, "
                "elapsed_ms, error, task) VALUES (?,?,?,?,NULL,1,NULL,'in flight',?)",
                (iso(now), provider.value, key_fingerprint, endpoint, task),
            )
            return Claim(cursor.lastrowid)

    def finish_request(
        self, row: int, *, http_status: int | None, sent: bool, elapsed: float, error: str | None
    ) -> None:
        """How a claimed request went: its HTTP status, and `sent=False` when the
        connection was never made (the server cannot have counted it)."""
        with self._tx() as tx:
            tx.execute(
                "UPDATE requests SET http_status=?, sent=?, elapsed_ms=?, error=? WHERE id=?",
                (http_status, int(sent), min(int(elapsed * 1000), 2**31), error, row),
            )

    def request_rows(
        self, provider: Provider, key_fingerprint: str, since: float
    ) -> list[tuple[int, float]]:
        """(row, time) of the requests that reached (or may have reached) the server
        since `since`."""
        rows = self.conn.execute(
            "SELECT id, at FROM requests WHERE provider=? AND key_fingerprint=? AND at > ? "
            "AND sent=1",
            (provider.value, key_fingerprint, iso(since)),
        ).fetchall()
        return [(row, from_iso(at) or 0.0) for row, at in rows]

    def pause_key(self, provider: Provider, key_fingerprint: str, until: float, now: float) -> None:
        """A 429 stops every request of this key, of every instance, until `until`."""
        until = min(until, now + MAX_KEY_PAUSE)
        name = _pause_name(provider, key_fingerprint)
        with self._tx() as tx:
            current = tx.execute("SELECT value FROM app_state WHERE name=?", (name,)).fetchone()
            known = _pause_until(current[0] if current else None, now)
            if known is not None and known >= until:
                return
            tx.execute(
                "INSERT INTO app_state (name, value) VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET value=excluded.value",
                (name, iso(until)),
            )

    def key_pause(self, provider: Provider, key_fingerprint: str, now: float) -> float | None:
        """Until when a 429 stops this key (None: it does not)."""
        row = self.conn.execute(
            "SELECT value FROM app_state WHERE name=?", (_pause_name(provider, key_fingerprint),)
        ).fetchone()
        return _pause_until(row[0] if row else None, now)

    def generate_left(self, task: str) -> bool:
        """May a `generate` for this task have reached the server? A request counted
        before sending whose connection was never made did not."""
        row = self.conn.execute(
            "SELECT 1 FROM requests WHERE task=? AND endpoint='generate' AND sent=1 LIMIT 1",
            (task,),
        ).fetchone()
        return row is not None

    def insert_task(self, task: Task, events: list[dict[str, Any]] | None = None) -> None:
        """Insert a whole task as it stands (demo history, imports), with its events."""
        with self._tx() as tx:
            tx.execute(
                f"INSERT INTO tasks ({TASK_COLUMNS}) VALUES ({','.join('?' * 20)})",
                (
                    task.id,
                    task.provider.value,
                    task.task_id,
                    task.key_fingerprint,
                    task.status.value,
                    task.prompt,
                    json.dumps(task.params),
                    task.credits_estimated,
                    task.credits_charged,
                    task.credits_refunded,
                    json.dumps(list(task.video_urls)),
                    task.error,
                    iso(task.created_at),
                    iso(task.submitted_at),
                    iso(task.completed_at),
                    iso(task.updated_at or task.created_at),
                    task.generation_time,
                    iso(task.last_polled_at),
                    None,
                    task.local_path,
                ),
            )
            for event in events or ():
                status = event.get("status")
                self._event(
                    tx,
                    task.id,
                    event["at"],
                    event["kind"],
                    TaskStatus(status) if status else None,
                    event.get("detail"),
                )

    def set_local_path(self, id: str, path: str | None, now: float) -> None:
        with self._tx() as tx:
            tx.execute(
                "UPDATE tasks SET local_path=?, updated_at=? WHERE id=?", (path, iso(now), id)
            )

    def orphan_stale_intents(self, now: float, max_age: float = 900.0) -> list[Task]:
        """Intent rows whose submitter is gone: `orphaned` when their `generate` may have
        left (the outcome is unknown), `cancelled` when the ledger shows it never did
        (stopped while waiting for budget, say: nothing was sent, nothing charged).

        Intents older than the ledger's link between requests and tasks (migration
        m006) cannot be told apart: they stay `orphaned`."""
        rows = self.conn.execute(
            "SELECT id, owner, created_at FROM tasks WHERE status='submitting' AND task_id IS NULL"
        ).fetchall()
        linked_since = self.conn.execute(
            "SELECT applied_at FROM _migrations WHERE name='m006_request_task'"
        ).fetchone()
        linked_from = from_iso(linked_since[0]) if linked_since and linked_since[0] else None
        ended = []
        for id, owner, created in rows:
            created_at = from_iso(created) or now
            age = now - created_at
            if owner == this_owner():
                continue
            if _owner_alive(owner) and age < max_age:
                continue
            linked = linked_from is not None and created_at >= linked_from
            if linked and not self.generate_left(id):
                ended.append(
                    self.record_refusal(
                        id,
                        TaskStatus.CANCELLED,
                        "stopped before its request was sent (the program ended while it "
                        "waited): nothing was sent and nothing charged; submit it again",
                        now,
                    )
                )
                continue
            ended.append(
                self.record_refusal(
                    id,
                    TaskStatus.ORPHANED,
                    "interrupted while submitting: the provider may have accepted and charged "
                    "this job, but its task id was never received. Neither API can list tasks; "
                    "check the provider's dashboard before re-running.",
                    now,
                )
            )
        return ended

    # -- reads -------------------------------------------------------------------------

    def _rows(self, sql: str, args: Any = ()) -> list[Task]:
        return [_task(row) for row in self.conn.execute(sql, args).fetchall()]

    def get(self, id: str) -> Task:
        rows = self._rows(f"SELECT {TASK_COLUMNS} FROM tasks WHERE id=?", (id,))
        if not rows:
            raise StoreError(f"no task {id}")
        return rows[0]

    def find(self, ref: str) -> Task | None:
        """A task by our id, its last 8 characters, or the provider's task id."""
        ref = ref.strip()
        rows = self._rows(
            f"SELECT {TASK_COLUMNS} FROM tasks WHERE id=? OR task_id=? LIMIT 2", (ref, ref)
        )
        if not rows and 6 <= len(ref) < 20:
            rows = self._rows(
                f"SELECT {TASK_COLUMNS} FROM tasks WHERE id LIKE ? ESCAPE '\\' LIMIT 2",
                ("%" + ref.replace("%", "\\%").replace("_", "\\_"),),
            )
        return rows[0] if len(rows) == 1 else None

    def pending(self) -> list[Task]:
        marks = ",".join("?" * len(PENDING_STATUSES))
        return self._rows(
            f"SELECT {TASK_COLUMNS} FROM tasks WHERE status IN ({marks}) ORDER BY created_at",
            [s.value for s in PENDING_STATUSES],
        )

    def list(
        self,
        filter: Filter | None = None,
        *,
        sort: str = "newest",
        limit: int | None = 50,
        offset: int = 0,
        matches: int | None = None,
    ) -> list[Task]:
        """A page of tasks. `matches`, when the caller knows it, is how many rows the filter
        matches: it picks how a search is paged (asked of the prompt index otherwise)."""
        walk = limit is not None and self._walk(filter, sort, offset + limit, matches)
        clauses, args = (filter or Filter()).where(walk=walk)
        sql = f"SELECT {TASK_COLUMNS} FROM tasks"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += f" ORDER BY {SORTS[sort]}"
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            args += [limit, offset]
        return self._rows(sql, args)

    def count(self, filter: Filter | None = None) -> int:
        filter = filter or Filter()
        if filter.search and not (filter.status or filter.provider or filter.since is not None):
            return self._count_matches(filter.search)
        clauses, args = filter.where()
        sql = "SELECT count(*) FROM tasks" + (" WHERE " + " AND ".join(clauses) if clauses else "")
        return self.conn.execute(sql, args).fetchone()[0]

    def _count_matches(self, search: str) -> int:
        """How many prompts match a search: the prompt index alone answers (triggers keep
        it in step with `tasks`), no task row is read."""
        query = fts_query(search)
        if not query:
            return self.count()
        return self.conn.execute(
            "SELECT count(*) FROM tasks_fts WHERE tasks_fts MATCH ?", (query,)
        ).fetchone()[0]

    def _walk(self, filter: Filter | None, sort: str, depth: int, matches: int | None) -> bool:
        """Should a page of a search, `depth` rows deep in a time sort, walk the time index
        (many matches: the first are near) rather than look every match up and sort them
        (few matches)? See WALK_STEPS_PER_MATCH."""
        if filter is None or sort not in ("newest", "oldest") or not fts_query(filter.search or ""):
            return False
        if matches is None:
            matches = self._count_matches(filter.search or "")
        rows = self.conn.execute("SELECT max(rowid) FROM tasks").fetchone()[0] or 0
        return depth * rows < WALK_STEPS_PER_MATCH * matches * matches

    def events(self, id: str) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT at, kind, status, detail FROM events WHERE task=? ORDER BY id", (id,)
        ).fetchall()
        return [
            {"at": from_iso(at), "kind": kind, "status": status, "detail": detail}
            for at, kind, status, detail in rows
        ]

    def request_times(self, provider: Provider, key_fingerprint: str, since: float) -> list[float]:
        """Times of requests that reached (or may have reached) the server since `since`."""
        rows = self.conn.execute(
            "SELECT at FROM requests WHERE provider=? AND key_fingerprint=? AND at > ? AND sent=1",
            (provider.value, key_fingerprint, iso(since)),
        ).fetchall()
        return [from_iso(r[0]) for r in rows]

    def generation_history(self, limit_per_profile: int = 50) -> list[tuple[tuple, float]]:
        """(profile, seconds) of recent completed renders, oldest first: what ETAs learn from."""
        rows = self.conn.execute(
            "SELECT provider, params, generation_time FROM tasks WHERE status='completed' "
            "AND generation_time IS NOT NULL ORDER BY completed_at DESC LIMIT 2000"
        ).fetchall()
        seen: dict[tuple, int] = {}
        out: list[tuple[tuple, float]] = []
        for provider, params, seconds in rows:
            if _sane_seconds(seconds) is None or not seconds:
                continue  # recorded before such values were refused: it would skew ETAs
            profile = profile_of(provider, json.loads(params))
            if seen.get(profile, 0) >= limit_per_profile:
                continue
            seen[profile] = seen.get(profile, 0) + 1
            out.append((profile, float(seconds)))
        out.reverse()
        return out

    def credits_summary(self, now: float, days: int = 14) -> dict[str, Any]:
        """Credits per provider: today, last 7 days, all time, refunds, held; and per day.

        Three reads, none of them of whole task rows: totals per provider and status from
        a covering index, what pending and orphaned tasks hold (few rows, by status), and
        the per-day sums of the recent days (by creation time), which also give "today"
        and "last 7 days"."""
        import datetime as dt

        today = dt.datetime.fromtimestamp(now, tz=dt.UTC).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        net = "COALESCE(credits_charged, 0) - credits_refunded"
        providers: dict[str, dict[str, int]] = {}

        def row_of(provider: str) -> dict[str, int]:
            return providers.setdefault(provider, {
                "today": 0, "last_7_days": 0, "all": 0, "refunded": 0, "held_by_pending": 0,
                "at_risk_orphaned": 0, "tasks": 0, "completed": 0, "failed": 0,
            })  # fmt: skip

        totals = self.conn.execute(
            "SELECT provider, status, COUNT(*), SUM(COALESCE(credits_charged, 0)), "
            "SUM(credits_refunded) FROM tasks GROUP BY provider, status"
        ).fetchall()
        for provider, status, count, charged, refunded in totals:
            row = row_of(provider)
            row["all"] += (charged or 0) - (refunded or 0)
            row["refunded"] += refunded or 0
            row["tasks"] += count
            if status in (TaskStatus.COMPLETED.value, TaskStatus.FAILED.value):
                row[status] += count
        # An orphan's estimate is at risk only while no server reported its charge (a
        # reported charge is in the totals already).
        holds = self.conn.execute(
            "SELECT provider, status, SUM(COALESCE(credits_charged, credits_estimated, 0)), "
            "SUM(CASE WHEN credits_charged IS NULL THEN COALESCE(credits_estimated, 0) "
            "ELSE 0 END) FROM tasks "
            "WHERE status IN ('submitting', 'processing', 'orphaned') GROUP BY provider, status"
        ).fetchall()
        for provider, status, held, estimated in holds:
            row = row_of(provider)
            if status == TaskStatus.ORPHANED.value:
                row["at_risk_orphaned"] += estimated or 0
            else:
                row["held_by_pending"] += held or 0

        start = today - dt.timedelta(days=days - 1)
        week = today - dt.timedelta(days=6)
        since = min(start, week)
        series_rows = self.conn.execute(
            f"SELECT substr(created_at, 1, 10), provider, SUM({net}) FROM tasks "
            "WHERE created_at >= ? GROUP BY 1, 2",
            (iso(since.timestamp()),),
        ).fetchall()
        today_day, week_day, start_day = (d.strftime("%Y-%m-%d") for d in (today, week, start))
        per_day: dict[str, dict[str, int]] = {}
        for i in range(days):
            per_day[(start + dt.timedelta(days=i)).strftime("%Y-%m-%d")] = {}
        for day, p, credits in series_rows:
            credits = credits or 0
            if day >= week_day:
                row_of(p)["last_7_days"] += credits
                if day >= today_day:
                    row_of(p)["today"] += credits
            if day >= start_day:
                per_day.setdefault(day, {})[p] = credits
        return {"providers": providers, "per_day": per_day}

    def backup_to(self, path: Path) -> None:
        """Copy the history into a new file with SQLite's online backup API: all pages in
        one step, so a consistent snapshot even while another instance writes."""
        target = sqlite3.connect(path)
        try:
            self.conn.backup(target)
            target.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
        finally:
            target.close()

    def stats(self) -> dict[str, Any]:
        counts = dict(
            self.conn.execute("SELECT status, count(*) FROM tasks GROUP BY status").fetchall()
        )
        return {
            "tasks": sum(counts.values()),
            "by_status": counts,
            "events": self.conn.execute("SELECT count(*) FROM events").fetchone()[0],
            "requests": self.conn.execute("SELECT count(*) FROM requests").fetchone()[0],
            "schema_version": SCHEMA_VERSION,
        }

    # -- paging for the dashboard's lazy list ------------------------------------------

    def list_after(
        self,
        filter: Filter | None,
        anchor_id: str,
        *,
        sort: str = "newest",
        limit: int = 100,
        backwards: bool = False,
        matches: int | None = None,
    ) -> list[Task]:
        """The rows that follow (or, `backwards`, precede) the row `anchor_id` in a time sort.

        Keyset paging: as cheap at the millionth row as at the first, where OFFSET must
        walk every row it skips. Only the "newest" and "oldest" sorts have a keyset.
        Rows come back in display order either way. `matches` as for `list`.
        """
        if sort not in ("newest", "oldest"):
            raise ValueError(f"no keyset for sort {sort!r}")
        anchor = self.conn.execute(
            "SELECT created_at, id FROM tasks WHERE id=?", (anchor_id,)
        ).fetchone()
        if anchor is None:
            return []
        created, id = anchor
        ascending = (sort == "oldest") != backwards
        if ascending:
            keyset = "created_at >= ? AND (created_at > ? OR id > ?)"
            order = "created_at ASC, id ASC"
        else:
            keyset = "created_at <= ? AND (created_at < ? OR id < ?)"
            order = "created_at DESC, id DESC"
        clauses, args = (filter or Filter()).where(walk=self._walk(filter, sort, limit, matches))
        clauses.append(keyset)
        args += [created, created, id]
        rows = self._rows(
            f"SELECT {TASK_COLUMNS} FROM tasks WHERE {' AND '.join(clauses)} "
            f"ORDER BY {order} LIMIT ?",
            [*args, limit],
        )
        if backwards:
            rows.reverse()
        return rows

    def iter_tasks(
        self, filter: Filter | None = None, *, sort: str = "oldest", page: int = 1000
    ) -> Iterator[Task]:
        """Every task matching `filter` in a time sort ("oldest" or "newest"), streamed:
        the memory of one page and time linear in the rows, at any size (exports, `list`
        of everything).

        Keyset pages, each read and released before its tasks are handed out: the
        millionth row costs what the first does (OFFSET walks every row it skips), and no
        read is held open while the caller works through a page, so a slow reader
        (`export | less`) never keeps the WAL from being checkpointed. Several statuses
        are merged from one ordered stream per status, each a walk of the (status,
        created_at) index: with an IN list SQLite sorts every remaining row for each page.
        A search is read by one statement in one pass, a page at a time: a keyset page
        would match the prompt index anew for each page.
        """
        if sort not in ("newest", "oldest"):
            raise ValueError(f"no keyset for sort {sort!r}")
        filter = filter or Filter()
        searching = bool(fts_query(filter.search or ""))
        if len(set(filter.status)) > 1 and not searching:
            streams = [
                self.iter_tasks(replace(filter, status=(status,)), sort=sort, page=page)
                for status in dict.fromkeys(filter.status)
            ]
            yield from heapq.merge(
                *streams, key=lambda task: (task.created_at, task.id), reverse=sort == "newest"
            )
            return
        if sort == "oldest":
            keyset, order = "created_at >= ? AND (created_at > ? OR id > ?)", SORTS["oldest"]
        else:
            keyset, order = "created_at <= ? AND (created_at < ? OR id < ?)", SORTS["newest"]
        if searching:
            rows = self.conn.execute("SELECT max(rowid) FROM tasks").fetchone()[0] or 0
            clauses, args = filter.where(walk=self._walk(filter, sort, rows, None))
            where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
            cursor = self.conn.execute(
                f"SELECT {TASK_COLUMNS} FROM tasks{where} ORDER BY {order}", args
            )
            while chunk := cursor.fetchmany(page):
                yield from map(_task, chunk)
            return
        clauses, args = filter.where()
        anchor: tuple[str, str] | None = None
        while True:
            page_clauses, page_args = list(clauses), list(args)
            if anchor is not None:
                page_clauses.append(keyset)
                page_args += [anchor[0], anchor[0], anchor[1]]
            where = f" WHERE {' AND '.join(page_clauses)}" if page_clauses else ""
            chunk = self.conn.execute(
                f"SELECT {TASK_COLUMNS} FROM tasks{where} ORDER BY {order} LIMIT ?",
                [*page_args, page],
            ).fetchall()
            yield from map(_task, chunk)
            if len(chunk) < page:
                return
            anchor = (chunk[-1][_CREATED_AT], chunk[-1][_ID])

    @classmethod
    def open_reader(cls, path: str | os.PathLike[str]) -> Store:
        """A read-only connection to an existing history file, for a worker thread (a
        connection belongs to its thread). No migration and no integrity scan: the file
        was opened, checked and migrated by the Store that owns it."""
        uri = Path(path).expanduser().resolve().as_uri() + "?mode=ro"
        conn = sqlite3.connect(uri, uri=True, timeout=10.0, isolation_level=None)
        conn.execute("PRAGMA busy_timeout = 10000")
        return cls(conn, Path(path))

    def bulk_import(self, tasks: Iterator[Task] | list[Task], batch: int = 20_000) -> int:
        """Insert many finished tasks at once (benchmarks, imports): one transaction, the
        prompt index rebuilt once at the end instead of row by row. No events are written."""
        conn = self.conn
        trigger_sql = conn.execute(
            "SELECT sql FROM sqlite_master WHERE type='trigger' AND name='tasks_fts_insert'"
        ).fetchone()
        count = 0
        with self._tx() as tx:
            if trigger_sql:
                tx.execute("DROP TRIGGER tasks_fts_insert")
            chunk: list[tuple] = []
            sql = f"INSERT INTO tasks ({TASK_COLUMNS}) VALUES ({','.join('?' * 20)})"
            for task in tasks:
                chunk.append(_values(task))
                if len(chunk) >= batch:
                    tx.executemany(sql, chunk)
                    count += len(chunk)
                    chunk = []
            if chunk:
                tx.executemany(sql, chunk)
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
        conn = self.conn
        columns = TASK_COLUMNS
        conn.execute("DROP TABLE IF EXISTS temp.import_staging")
        conn.execute(f"CREATE TEMP TABLE import_staging ({columns})")
        try:
            staged = 0
            source = iter(tasks)
            insert = f"INSERT INTO temp.import_staging VALUES ({','.join('?' * 20)})"
            while chunk := [_values(task) for task in itertools.islice(source, batch)]:
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
            inserted = 0
            for first in range(1, staged + 1, batch):
                with self._tx() as tx:
                    trigger = tx.execute(
                        "SELECT sql FROM sqlite_schema WHERE type='trigger' "
                        "AND name='tasks_fts_insert'"
                    ).fetchone()
                    before = tx.execute("SELECT max(rowid) FROM tasks").fetchone()[0] or 0
                    if trigger:
                        tx.execute("DROP TRIGGER tasks_fts_insert")
                    inserted += tx.execute(
                        f"INSERT INTO tasks ({columns}) SELECT {columns} FROM temp.import_staging "
                        "WHERE rowid BETWEEN ? AND ? ON CONFLICT DO NOTHING",
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
            conn.execute("DROP TABLE IF EXISTS temp.import_staging")

    # -- the batch queue and app state -------------------------------------------------

    def enqueue(self, jobs: list[tuple[JobSpec, int | None, str | None]], now: float) -> list[Task]:
        """Queue (spec, estimate, key fingerprint) jobs as `queued` tasks, all in one
        transaction: a batch is queued whole or not at all. Nothing is sent."""
        tasks = []
        with self._tx() as tx:
            for offset, (spec, estimate, key_fingerprint) in enumerate(jobs):
                at = now + offset * 0.001  # keeps the batch's order in a time sort
                task = self._insert_new(
                    tx, spec, TaskStatus.QUEUED, at, estimate, key_fingerprint, None
                )
                self._event(tx, task.id, at, "queued", task.status, f"estimate={estimate}")
                tasks.append(task)
        return tasks

    def next_queued(self, providers: list[str] | None = None) -> Task | None:
        """The oldest queued task (of these providers, when given)."""
        sql = f"SELECT {TASK_COLUMNS} FROM tasks WHERE status='queued'"
        args: list[Any] = []
        if providers is not None:
            if not providers:
                return None
            sql += f" AND provider IN ({','.join('?' * len(providers))})"
            args += providers
        rows = self._rows(sql + " ORDER BY created_at, id LIMIT 1", args)
        return rows[0] if rows else None

    def count_queued(self) -> dict[str, int]:
        """Queued tasks per provider."""
        return dict(
            self.conn.execute(
                "SELECT provider, count(*) FROM tasks WHERE status='queued' GROUP BY provider"
            ).fetchall()
        )

    def claim_queued(self, id: str, now: float) -> Task | None:
        """Turn a queued task into a submission intent owned by this process, unless another
        instance took it first (None). One statement: a job is never sent twice."""
        with self._tx() as tx:
            cursor = tx.execute(
                "UPDATE tasks SET status='submitting', owner=?, updated_at=? "
                "WHERE id=? AND status='queued'",
                (this_owner(), iso(now), id),
            )
            if cursor.rowcount != 1:
                return None
            self._event(tx, id, now, "intent", TaskStatus.SUBMITTING, "from the queue")
        return self.get(id)

    def get_state(self, name: str) -> str | None:
        row = self.conn.execute("SELECT value FROM app_state WHERE name=?", (name,)).fetchone()
        return row[0] if row else None

    def set_state(self, name: str, value: str | None) -> None:
        with self._tx() as tx:
            if value is None:
                tx.execute("DELETE FROM app_state WHERE name=?", (name,))
            else:
                tx.execute(
                    "INSERT INTO app_state (name, value) VALUES (?, ?) "
                    "ON CONFLICT(name) DO UPDATE SET value=excluded.value",
                    (name, value),
                )


def _values(task: Task) -> tuple:
    """A whole task as the row `INSERT INTO tasks (TASK_COLUMNS)` takes (no owner: a task
    inserted whole is not being submitted by anyone)."""
    return (
        task.id, task.provider.value, task.task_id, task.key_fingerprint, task.status.value,
        task.prompt, json.dumps(task.params), task.credits_estimated, task.credits_charged,
        task.credits_refunded, json.dumps(list(task.video_urls)), task.error,
        iso(task.created_at), iso(task.submitted_at), iso(task.completed_at),
        iso(task.updated_at or task.created_at), task.generation_time,
        iso(task.last_polled_at), None, task.local_path,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Claim:
    """The ledger's answer to "may this request be sent": its row, or when to ask again."""

    row: int | None  # the request's row in `requests` (None: refused, nothing written)
    retry_at: float | None = None  # refused: when a slot frees (or the pause ends)
    paused: bool = False  # refused by a 429's pause rather than by the window


def _pause_name(provider: Provider, key_fingerprint: str) -> str:
    return f"rate_pause:{provider.value}:{key_fingerprint}"


def _pause_until(value: str | None, now: float) -> float | None:
    """A persisted pause's end, believed up to MAX_KEY_PAUSE from now; None when over."""
    if not value:
        return None
    try:
        until = from_iso(value)
    except ValueError:
        return None
    if until is None or until <= now:
        return None
    return min(until, now + MAX_KEY_PAUSE)


def _sane_credits(value: Any) -> int | None:
    """A credit count the store records: a whole number in 0..MAX_CREDITS, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        return None
    return int(value) if 0 <= value <= MAX_CREDITS else None


def _sane_seconds(value: Any) -> float | None:
    """A render time the store records: finite, in 0..MAX_GENERATION_SECONDS, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or not 0 <= value <= MAX_GENERATION_SECONDS:
        return None
    return float(value)


def profile_of(provider: str, params: dict[str, Any]) -> tuple:
    """What a render's duration depends on: the scheduler learns ETAs per profile."""
    return (provider, params.get("resolution"), params.get("duration"), bool(params.get("audio")))


def _task(row: tuple) -> Task:
    (
        id,
        provider,
        task_id,
        key_fp,
        status,
        prompt,
        params,
        est,
        charged,
        refunded,
        urls,
        error,
        created,
        submitted,
        completed,
        updated,
        gen_time,
        polled,
        _owner,
        local_path,
    ) = row
    return Task(
        id=id,
        provider=Provider(provider),
        status=TaskStatus(status),
        prompt=prompt,
        params=json.loads(params),
        created_at=from_iso(created) or 0.0,
        task_id=task_id,
        key_fingerprint=key_fp,
        credits_estimated=est,
        credits_charged=charged,
        credits_refunded=refunded or 0,
        video_urls=tuple(json.loads(urls or "[]")),
        error=error,
        submitted_at=from_iso(submitted),
        completed_at=from_iso(completed),
        generation_time=gen_time,
        updated_at=from_iso(updated),
        last_polled_at=from_iso(polled),
        local_path=local_path,
    )
