"""Opening a history file: where it may be, what it holds, whether it is sound, and its
migrations. A file we refuse — damaged, of a newer seedance-tui, another program's, or
at a place we cannot use — is left byte for byte as it was, with no -wal/-shm beside it:
every check before the first write only reads."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from ..models import iso
from . import schema
from .connection import transaction
from .errors import (
    StoreBusyError,
    StoreDamagedError,
    StoreError,
    StoreForeignError,
    StoreNewerError,
    StoreOpenError,
    damaged,
    is_damage,
)

# A history file up to this size is checked page by page (`PRAGMA quick_check`) each time
# it is opened: about 25 ms when the file is in the page cache, seconds when it is not
# (the check reads every page: 14 s for 1M tasks, 750 MB, here). A larger file already in
# WAL mode gets the cheap checks only: SQLite still refuses a damaged page when it reads
# one (stricter with `cell_size_check`), which the store reports as StoreDamagedError.
FULL_CHECK_MAX_BYTES = 32 * 1024 * 1024


def open_history(
    path: str | os.PathLike[str] | None, *, create: bool, busy_timeout: float
) -> tuple[sqlite3.Connection, Path | None]:
    """A connection to the history at `path` (None or ":memory:": a new one in memory),
    checked and migrated; a StoreError saying why when it cannot be used."""
    if path is None or str(path) == ":memory:":
        conn = sqlite3.connect(":memory:", isolation_level=None)
        migrate(conn, None)
        return conn, None
    file = Path(path).expanduser()
    _check_location(file, create)
    try:
        conn = sqlite3.connect(file, timeout=busy_timeout, isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
    except sqlite3.DatabaseError as exc:
        raise StoreOpenError(
            f"cannot open or create {file} ({exc}); check that its folder is writable "
            "or pass another path with --db",
            path=file,
        ) from None
    try:
        # Read-only checks first: switching to WAL rewrites the header, and a file we
        # refuse must be left byte for byte.
        if inspect(conn, file) == "ours":
            _check_integrity(conn, file)
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
        raise _unreadable(file, exc) from None
    except BaseException:
        conn.close()
        raise
    try:
        migrate(conn, file)
    except BaseException:
        conn.close()
        raise
    return conn, file


def open_reader(path: str | os.PathLike[str], *, busy_timeout: float) -> sqlite3.Connection:
    """A read-only connection to an existing history file. No migration and no integrity
    scan: the file was opened, checked and migrated by the Store that owns it."""
    file = Path(path).expanduser().resolve()
    try:
        conn = sqlite3.connect(
            file.as_uri() + "?mode=ro", uri=True, timeout=busy_timeout, isolation_level=None
        )
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
    except sqlite3.DatabaseError as exc:
        raise StoreOpenError(f"cannot read {file} ({exc})", path=file) from None
    return conn


def _check_location(file: Path, create: bool) -> None:
    if file.is_dir():
        raise StoreOpenError(
            f"{file} is a folder, not a history file; pass a file path with --db", path=file
        )
    if not file.exists():
        if not create:
            raise StoreOpenError(f"no history file at {file}", path=file)
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreOpenError(
                f"cannot create the folder for {file}: {exc.strerror}; choose another path "
                "with --db",
                path=file,
            ) from None
    elif not os.access(file, os.R_OK | os.W_OK):
        raise StoreOpenError(
            f"{file} is not readable and writable by you; fix its permissions or use --db",
            path=file,
        )


def _unreadable(file: Path, exc: sqlite3.DatabaseError) -> StoreError:
    """What an SQLite error met while checking a file at open means."""
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
    if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return StoreBusyError(
            f"{file} stayed locked by another program ({exc}); it was left untouched. Try "
            "again once it is done",
            path=file,
        )
    message = (
        f"{file} is not a readable history file ({exc}); it was left untouched. "
        "Move it aside or pass another path with --db"
    )
    if is_damage(exc):
        return StoreDamagedError(message, path=file, detail=str(exc), untouched=True)
    return StoreOpenError(message, path=file)


def inspect(conn: sqlite3.Connection, path: Path | None) -> str:
    """What the file holds, read without writing: "empty" (no table yet: a new history)
    or "ours"; a refusal for another program's file, one of a newer seedance-tui, or a
    damaged one.

    Told by our own tables — `tasks`, and `_migrations` naming our first migration —
    never by `PRAGMA user_version` alone: other programs number their schemas too."""
    tables: set[str] = set()
    try:
        tables = {
            row[0] for row in conn.execute("SELECT name FROM sqlite_schema WHERE type='table'")
        }
        applied: set[str] = set()
        if "_migrations" in tables:
            applied = {row[0] for row in conn.execute("SELECT name FROM _migrations")}
    except sqlite3.DatabaseError as exc:
        code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
        if code == sqlite3.SQLITE_CORRUPT:
            raise damaged(path, str(exc), untouched=True) from None
        if code == sqlite3.SQLITE_ERROR and "_migrations" in tables:
            raise _foreign(path) from None  # another program's `_migrations`, other columns
        raise
    if not tables or (tables == {"_migrations"} and not applied):
        return "empty"
    if "_migrations" not in tables or "tasks" not in tables:
        raise _foreign(path)
    if schema.MIGRATIONS[0][0] not in applied:
        raise _foreign(path)
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    known = len(schema.MIGRATIONS)
    unknown = tuple(sorted(applied - {name for name, _ in schema.MIGRATIONS}))
    if version > known or unknown:
        what = f"schema {version}" if version > known else "migration " + ", ".join(unknown)
        raise StoreNewerError(
            f"{path} was written by a newer seedance-tui ({what}; this version knows schema "
            f"{known}); it was left untouched. Upgrade seedance-tui to open it",
            path=path,
            version=version,
            unknown=unknown,
        )
    return "ours"


def _foreign(path: Path | None) -> StoreForeignError:
    return StoreForeignError(
        f"{path} is an SQLite file of another program; it was left untouched. "
        "Pass another path with --db",
        path=path,
    )


def _check_integrity(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse a damaged file. Every page of a file up to FULL_CHECK_MAX_BYTES or not yet
    in WAL mode (opening it rewrites its header: a file we never opened, or a backup); the
    schema and the small tables of a larger one we have (the rest as SQLite reads it)."""
    try:
        verdict = _quick_check(conn, path)
    except sqlite3.DatabaseError as exc:  # a check that trips over the damage
        verdict = str(exc)
    if verdict != "ok":
        raise damaged(path, verdict, untouched=True)


def _quick_check(conn: sqlite3.Connection, path: Path) -> str:
    wal = conn.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"
    if not wal or path.stat().st_size <= FULL_CHECK_MAX_BYTES:
        return conn.execute("PRAGMA quick_check(1)").fetchone()[0]
    small = conn.execute(
        "SELECT name FROM sqlite_schema WHERE type='table' AND name IN ('_migrations', 'app_state')"
    ).fetchall()
    for table in ["sqlite_schema", *(row[0] for row in small)]:
        verdict = conn.execute(f"PRAGMA quick_check({table})").fetchone()[0]
        if verdict != "ok":
            return verdict
    return "ok"


def migrate(conn: sqlite3.Connection, path: Path | None) -> None:
    """Apply the migrations the file has not had, in one transaction. The file is read
    again under the write lock: another instance may have migrated it meanwhile."""
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise _unreadable(path or Path(":memory:"), exc) from None
    if version == len(schema.MIGRATIONS):
        return
    with transaction(conn, path) as tx:
        inspect(tx, path)
        schema.apply_migrations(tx, iso(time.time()) or "")
