"""The history file read or changed behind the store's back, on a connection of the
test's own: what a test inspects (the requests table) or arranges (another machine's
owner) that no public method of the store does."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any


def raw_sql(path: Path | str | None, sql: str, args: Any = ()) -> list[tuple]:
    """Run one statement on the file at `path`, committed; its rows."""
    assert path is not None, "an in-memory history has no file to open"
    with closing(sqlite3.connect(path, timeout=10.0)) as conn, conn:
        return conn.execute(sql, args).fetchall()
