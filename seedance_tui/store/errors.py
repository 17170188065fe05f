"""What the store raises: one tree under StoreError, never an `sqlite3` exception.

Callers catch StoreError (or a subclass) and show its message, which says what is wrong
and what to do; `path` names the history (None: in memory). `transient`: the same call
may succeed later as it is (space freed, a lock released). The SQLite backend turns
every `sqlite3.Error` into one of these in one place (`connection.py`), the PostgreSQL
backend every `psycopg.Error` (`pg_connection.py`); opening has its own refusals
(`opening.py`, `pg_schema.py`).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path


class StoreError(Exception):
    """The history cannot be used as asked; the message says why and what to do."""

    transient = False

    def __init__(self, message: str, *, path: Path | None = None) -> None:
        super().__init__(message)
        self.path = path


class StoreOpenError(StoreError):
    """No history can be opened or created at this location (a folder, a file without
    read and write rights, a folder that cannot be created, no file where one must be).
    A file found there was left untouched."""


class StoreForeignError(StoreError):
    """The file is another program's SQLite database; it was left untouched."""


class StoreNewerError(StoreError):
    """The history was written by a newer seedance-tui (a higher schema version, or a
    migration this version does not know); it was left untouched."""

    def __init__(
        self, message: str, *, path: Path | None, version: int, unknown: tuple[str, ...]
    ) -> None:
        super().__init__(message, path=path)
        self.version = version
        self.unknown = unknown


class StoreDamagedError(StoreError):
    """The history is damaged or not a database at all. `detail`: what the database
    engine said; `untouched`: refused at open, before anything was written (False: the
    damage was found later, as pages were read or written)."""

    def __init__(self, message: str, *, path: Path | None, detail: str, untouched: bool) -> None:
        super().__init__(message, path=path)
        self.detail = detail
        self.untouched = untouched


class TaskNotFoundError(StoreError):
    """No task of the history has this id."""

    def __init__(self, task: str, *, path: Path | None = None) -> None:
        super().__init__(f"no task {task}", path=path)
        self.task = task


class StoreReadError(StoreError):
    """A read of the history failed (an I/O error, say); nothing was changed."""


class StoreWriteError(StoreError):
    """A write to the history failed and was rolled back: nothing of it was written."""


class StoreFullError(StoreWriteError):
    """The disk (or the filesystem's quota) holding the history is full: nothing was
    written. Writes succeed again once space is freed."""

    transient = True


class StoreBusyError(StoreWriteError):
    """Another program held the history locked for longer than the busy timeout: the
    write (or read) did not happen and may be tried again."""

    transient = True


class StoreUnreachableError(StoreError):
    """The database server of a shared history (PostgreSQL) cannot be reached or dropped
    the connection: nothing was changed by the call, which may be tried again. `detail`:
    what the driver said (never the password)."""

    transient = True

    def __init__(self, message: str, *, path: Path | None = None, detail: str = "") -> None:
        super().__init__(message, path=path)
        self.detail = detail


class StoreConflictError(StoreWriteError):
    """A row breaks a constraint (e.g. a provider's task id already in the history)."""


def is_transient(exc: BaseException) -> bool:
    """Is this a store error that the same call may overcome later?"""
    return isinstance(exc, StoreError) and exc.transient


def is_damage(exc: BaseException) -> bool:
    """Is this the history found damaged (or not a database)?"""
    if isinstance(exc, StoreDamagedError):
        return True
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)


def damaged_message(path: Path | None, detail: str, *, untouched: bool = True) -> str:
    left = "; it was left untouched" if untouched else ""
    return (
        f"{path} is damaged ({detail}){left}. Move it aside (`sqlite3 FILE .recover` may "
        "save its rows) or pass another path with --db"
    )


def damaged(path: Path | None, detail: str, *, untouched: bool) -> StoreDamagedError:
    return StoreDamagedError(
        damaged_message(path, detail, untouched=untouched),
        path=path,
        detail=detail,
        untouched=untouched,
    )


def translate(exc: sqlite3.Error, path: Path | None, *, writing: bool) -> StoreError:
    """The StoreError for an SQLite error met while using an open history."""
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
    where = path or "the history"
    if is_damage(exc):
        return damaged(path, str(exc), untouched=False)
    if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return StoreBusyError(f"{where} stayed locked by another program: {exc}", path=path)
    if not writing:
        return StoreReadError(f"cannot read {where}: {exc}", path=path)
    if code == sqlite3.SQLITE_FULL:
        return StoreFullError(
            f"cannot write {where}: the disk is full. Free some space: work resumes by "
            "itself once it can be recorded",
            path=path,
        )
    if isinstance(exc, sqlite3.IntegrityError):
        return StoreConflictError(str(exc), path=path)
    return StoreWriteError(f"cannot write {where}: {exc}", path=path)
