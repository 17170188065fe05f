"""The history's schema: named, append-only migrations and the schema version.

Each migration runs once, in order, inside the opening transaction, and is recorded by
name in `_migrations`; `PRAGMA user_version` is the number applied. A released migration
is never edited or removed: a change to the schema is a new migration at the end.

Migrations are plain SQL run statement by statement on the open transaction
(`execute_script`): `sqlite3`'s own `executescript` commits first, which would apply half a
migration and record none of it if the next statement failed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator

Migration = Callable[[sqlite3.Connection], None]
MIGRATIONS: list[tuple[str, Migration]] = []


def migration(fn: Migration) -> Migration:
    MIGRATIONS.append((fn.__name__, fn))
    return fn


def statements(script: str) -> Iterator[str]:
    """The statements of an SQL script, each whole (a trigger's body included): a
    statement ends at the `;` after which SQLite finds it complete."""
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \t\r\n;"):
                yield pending.strip()
            pending = ""
    if pending.strip(" \t\r\n;"):
        raise ValueError(f"an incomplete SQL statement ends the script: {pending.strip()!r}")


def execute_script(conn: sqlite3.Connection, script: str) -> None:
    """Run a script inside the transaction that is open, without committing it."""
    for statement in statements(script):
        conn.execute(statement)


@migration
def m001_initial(conn: sqlite3.Connection) -> None:
    execute_script(
        conn,
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
        """,
    )


@migration
def m002_app_state(conn: sqlite3.Connection) -> None:
    """Small persisted flags of the app, e.g. `queue_paused` ("1" or "0")."""
    execute_script(conn, "CREATE TABLE app_state (name TEXT PRIMARY KEY, value TEXT)")


@migration
def m003_index_completed(conn: sqlite3.Connection) -> None:
    """`generation_history` (run at every start) reads the newest completed renders."""
    execute_script(conn, "CREATE INDEX idx_tasks_status_completed ON tasks(status, completed_at)")


@migration
def m004_poll_lease(conn: sqlite3.Connection) -> None:
    """A poll in flight holds its task until the answer, so a second instance sharing the
    file never polls the same task concurrently (only a crashed poller's lease expires)."""
    execute_script(conn, "ALTER TABLE tasks ADD COLUMN poll_lease_until TEXT")


@migration
def m005_index_credit_totals(conn: sqlite3.Connection) -> None:
    """`credits_summary` (the dashboard's credits panel, `credits`) sums every task's
    credits per provider and status: this index holds all it reads, a fraction of the
    table's pages."""
    execute_script(
        conn,
        "CREATE INDEX idx_tasks_credit_totals "
        "ON tasks(provider, status, credits_charged, credits_refunded)",
    )


@migration
def m006_request_task(conn: sqlite3.Connection) -> None:
    """Which task a request was sent for: a submission interrupted before its `generate`
    left (no such request) is `cancelled`, never `orphaned`."""
    execute_script(
        conn,
        "ALTER TABLE requests ADD COLUMN task TEXT;"
        "CREATE INDEX idx_requests_task ON requests(task) WHERE task IS NOT NULL;",
    )


@migration
def m007_group(conn: sqlite3.Connection) -> None:
    """Tasks submitted together to compare providers (`submit --compare`) share a
    `group` id; NULL for a task of its own."""
    execute_script(
        conn,
        'ALTER TABLE tasks ADD COLUMN "group" TEXT;'
        'CREATE INDEX idx_tasks_group ON tasks("group") WHERE "group" IS NOT NULL;',
    )


@migration
def m008_spending(conn: sqlite3.Connection) -> None:
    """What spending caps count (caps.py): `committed_at`, when a job's money was
    committed — its intent written, or for a batch job when it left the queue (NULL in
    rows written before: their `created_at` stands for it) —, with an index per provider
    on that time; `over_cap` 1 for a queued job the user let past the caps."""
    execute_script(
        conn,
        "ALTER TABLE tasks ADD COLUMN committed_at TEXT;"
        "ALTER TABLE tasks ADD COLUMN over_cap INTEGER NOT NULL DEFAULT 0;"
        "CREATE INDEX idx_tasks_spending ON tasks(provider, COALESCE(committed_at, created_at));",
    )


SCHEMA_VERSION = len(MIGRATIONS)


def apply_migrations(conn: sqlite3.Connection, applied_at: str) -> None:
    """Apply, inside the open write transaction, every migration the file has not had."""
    conn.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    for index, (name, fn) in enumerate(MIGRATIONS, start=1):
        if index <= version:
            continue
        fn(conn)
        conn.execute("INSERT OR REPLACE INTO _migrations VALUES (?, ?)", (name, applied_at))
        conn.execute(f"PRAGMA user_version = {index}")
