"""The PostgreSQL history's schema: its own named, append-only migrations.

The same tables and columns as the SQLite history (schema.py), with PostgreSQL's types:
times stay ISO 8601 UTC text, compared byte by byte (`COLLATE "C"`, as SQLite compares
text) so that every query reads alike on both; ids of events and requests are
`bigserial`. What SQLite's FTS5 table does is a `search` column of `tasks` (a tsvector of
the prompt's words, folded as `pg_search.lexemes` does) with a GIN index. A trigger
tells listeners which task changed (LISTEN/NOTIFY, channel NOTIFY_CHANNEL).

Each migration runs once, in order, inside the opening transaction (which holds an
advisory lock, so two machines opening a new database at once migrate it once), and is
recorded by name in `_migrations`; the schema version is how many are recorded. A
released migration is never edited or removed.
"""

from __future__ import annotations

from typing import Any

from .errors import StoreForeignError, StoreNewerError

NOTIFY_CHANNEL = "seedance_tui_tasks"
# pg_advisory_xact_lock's key for opening (and migrating) a history.
MIGRATION_LOCK = 0x5EED_0001

_INITIAL = """
CREATE TABLE tasks (
    id TEXT COLLATE "C" PRIMARY KEY,
    provider TEXT COLLATE "C" NOT NULL,
    task_id TEXT COLLATE "C",
    key_fingerprint TEXT COLLATE "C",
    status TEXT COLLATE "C" NOT NULL,
    prompt TEXT NOT NULL,
    params TEXT NOT NULL,
    credits_estimated INTEGER,
    credits_charged INTEGER,
    credits_refunded INTEGER NOT NULL DEFAULT 0,
    video_urls TEXT NOT NULL DEFAULT '[]',
    error TEXT,
    created_at TEXT COLLATE "C" NOT NULL,
    submitted_at TEXT COLLATE "C",
    completed_at TEXT COLLATE "C",
    updated_at TEXT COLLATE "C",
    generation_time DOUBLE PRECISION,
    last_polled_at TEXT COLLATE "C",
    owner TEXT COLLATE "C",
    local_path TEXT,
    poll_lease_until TEXT COLLATE "C",
    search TSVECTOR NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX idx_tasks_provider_task ON tasks(provider, task_id);
CREATE INDEX idx_tasks_created ON tasks(created_at, id);
CREATE INDEX idx_tasks_status_created ON tasks(status, created_at, id);
CREATE INDEX idx_tasks_provider_created ON tasks(provider, created_at, id);
CREATE INDEX idx_tasks_status_completed ON tasks(status, completed_at);
CREATE INDEX idx_tasks_credit_totals
    ON tasks(provider, status, credits_charged, credits_refunded);
CREATE INDEX idx_tasks_search ON tasks USING GIN (search);

CREATE TABLE events (
    id BIGSERIAL PRIMARY KEY,
    task TEXT COLLATE "C" NOT NULL REFERENCES tasks(id),
    at TEXT COLLATE "C" NOT NULL,
    kind TEXT NOT NULL,
    status TEXT,
    detail TEXT
);
CREATE INDEX idx_events_task ON events(task, id);

CREATE TABLE requests (
    id BIGSERIAL PRIMARY KEY,
    at TEXT COLLATE "C" NOT NULL,
    provider TEXT COLLATE "C" NOT NULL,
    key_fingerprint TEXT COLLATE "C" NOT NULL,
    endpoint TEXT NOT NULL,
    http_status INTEGER,
    sent INTEGER NOT NULL,
    elapsed_ms BIGINT,
    error TEXT,
    task TEXT COLLATE "C"
);
CREATE INDEX idx_requests_key_at ON requests(provider, key_fingerprint, at);
CREATE INDEX idx_requests_task ON requests(task) WHERE task IS NOT NULL;

CREATE TABLE app_state (name TEXT COLLATE "C" PRIMARY KEY, value TEXT)
"""

# A change a dashboard shows: "<task id> <writer>" on NOTIFY_CHANNEL, the writer being
# the connection's application_name (pg_feed.py), so that a process can skip its own.
# A bulk write says `SET LOCAL seedance_tui.quiet = 'on'` and notifies "*" once instead.
_NOTIFY = f"""
CREATE FUNCTION seedance_tui_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('seedance_tui.quiet', true), '') <> 'on' THEN
        PERFORM pg_notify('{NOTIFY_CHANNEL}',
            NEW.id || ' ' || coalesce(current_setting('application_name', true), ''));
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER tasks_notify_insert AFTER INSERT ON tasks
    FOR EACH ROW EXECUTE FUNCTION seedance_tui_notify();
CREATE TRIGGER tasks_notify_update AFTER UPDATE ON tasks FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status
          OR OLD.task_id IS DISTINCT FROM NEW.task_id
          OR OLD.credits_charged IS DISTINCT FROM NEW.credits_charged
          OR OLD.credits_refunded IS DISTINCT FROM NEW.credits_refunded
          OR OLD.video_urls IS DISTINCT FROM NEW.video_urls
          OR OLD.error IS DISTINCT FROM NEW.error
          OR OLD.local_path IS DISTINCT FROM NEW.local_path)
    EXECUTE FUNCTION seedance_tui_notify()
"""

# Who submitted each task ("user@host"), shown and filtered by.
_SUBMITTED_BY = """
ALTER TABLE tasks ADD COLUMN submitted_by TEXT;
CREATE INDEX idx_tasks_submitted_by ON tasks(submitted_by, created_at)
"""

# What spending caps count (spending.py, caps.py): the two tasks of a compare share a
# "group"; `committed_at`, when a job's money was committed (NULL in rows from before:
# `created_at` stands for it); `over_cap` 1 for a queued job let past the caps.
_SPENDING = """
ALTER TABLE tasks ADD COLUMN "group" TEXT COLLATE "C";
CREATE INDEX idx_tasks_group ON tasks("group") WHERE "group" IS NOT NULL;
ALTER TABLE tasks ADD COLUMN committed_at TEXT COLLATE "C";
ALTER TABLE tasks ADD COLUMN over_cap INTEGER NOT NULL DEFAULT 0;
CREATE INDEX idx_tasks_spending ON tasks(provider, (COALESCE(committed_at, created_at)))
"""

# (name, SQL): run as one script each. Append only.
MIGRATIONS: list[tuple[str, str]] = [
    ("pg001_initial", _INITIAL),
    ("pg002_notify", _NOTIFY),
    ("pg003_submitted_by", _SUBMITTED_BY),
    ("pg004_group_spending", _SPENDING),
]
SCHEMA_VERSION = len(MIGRATIONS)
# From this migration on, the ledger links each request to its task.
LEDGER_LINK_MIGRATION = "pg001_initial"


def inspect(conn: Any, location: str) -> str:
    """What the database holds, read without writing: "empty" or "ours"; a refusal for
    another program's tables or a history of a newer seedance-tui. Told by our own
    tables (`tasks`, `_migrations` naming our first migration), as for SQLite."""
    tables = {
        row[0]
        for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        ).fetchall()
    }
    applied: list[str] = []
    if "_migrations" in tables:
        columns = {
            row[0]
            for row in conn.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = '_migrations'"
            ).fetchall()
        }
        if "name" not in columns:
            raise foreign(location)
        applied = [row[0] for row in conn.execute("SELECT name FROM _migrations").fetchall()]
    if not tables or (tables == {"_migrations"} and not applied):
        return "empty"
    if "_migrations" not in tables or "tasks" not in tables or MIGRATIONS[0][0] not in applied:
        raise foreign(location)
    known = {name for name, _ in MIGRATIONS}
    unknown = tuple(sorted(set(applied) - known))
    if unknown:
        raise StoreNewerError(
            f"{location} was written by a newer seedance-tui (migration "
            f"{', '.join(unknown)}; this version knows schema {SCHEMA_VERSION}); it was left "
            "untouched. Upgrade seedance-tui to open it",
            path=None,
            version=len(applied),
            unknown=unknown,
        )
    return "ours"


def foreign(location: str) -> StoreForeignError:
    return StoreForeignError(
        f"{location} holds another program's tables; it was left untouched. "
        "Pass another database with --db",
        path=None,
    )


def migrate(conn: Any, location: str, applied_at: str) -> None:
    """Apply the migrations the database has not had, in one transaction, under an
    advisory lock (another machine may be opening it at the same moment)."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        inspect(conn, location)
        conn.execute(
            'CREATE TABLE IF NOT EXISTS _migrations (name TEXT COLLATE "C" PRIMARY KEY, '
            "applied_at TEXT)"
        )
        applied = {row[0] for row in conn.execute("SELECT name FROM _migrations").fetchall()}
        for name, script in MIGRATIONS:
            if name in applied:
                continue
            conn.execute(script)
            conn.execute(
                "INSERT INTO _migrations (name, applied_at) VALUES (%s, %s)", (name, applied_at)
            )
