"""Where a history is: a SQLite file (a path) or a PostgreSQL database (a
`postgresql://` URL), and the one function that opens either.

A URL's password (when it carries one) is used to connect and nothing else: `redact`
gives the URL every message, `config show` and `history path` print, without it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from .dsn import has_password, is_url, redact
from .errors import StoreOpenError

if TYPE_CHECKING:
    from .interface import StoreBackend

MISSING_EXTRA = (
    "{location} is a PostgreSQL database, and PostgreSQL support is not installed: "
    "install the extra with `pip install 'seedance-tui[postgres]'` (psycopg 3 and "
    "psycopg-pool), or pass a history file with --db"
)


def open_store(
    location: str | os.PathLike[str] | None, *, owner: str | None = None, create: bool = True
) -> StoreBackend:
    """The history at `location`: a `postgresql://` URL opens the PostgreSQL backend
    (StoreOpenError naming the extra when it is not installed), anything else the
    SQLite file (None: a new one in memory)."""
    if is_url(location):
        url = str(location).strip()
        try:
            from .postgres import PgStore
        except ImportError:
            raise StoreOpenError(MISSING_EXTRA.format(location=redact(url))) from None
        return PgStore.open(url, owner=owner)
    from .sqlite import Store

    path = None if location is None else Path(location)
    return Store.open(path, owner=owner, create=create)


__all__ = ["MISSING_EXTRA", "has_password", "is_url", "open_store", "redact"]
