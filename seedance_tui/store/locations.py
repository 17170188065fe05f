"""Where a history is: a SQLite file (a path) or a PostgreSQL database (a
`postgresql://` URL), and the one function that opens either.

A URL's password (when it carries one) is used to connect and nothing else: `redact`
gives the URL every message, `config show` and `history path` print, without it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .errors import StoreOpenError

if TYPE_CHECKING:
    from .interface import StoreBackend

URL_SCHEMES = ("postgresql://", "postgres://")
MISSING_EXTRA = (
    "{location} is a PostgreSQL database, and PostgreSQL support is not installed: "
    "install the extra with `pip install 'seedance-tui[postgres]'` (psycopg 3 and "
    "psycopg-pool), or pass a history file with --db"
)


def is_url(location: str | os.PathLike[str] | None) -> bool:
    """Does `location` name a PostgreSQL database rather than a file?"""
    return isinstance(location, str) and location.strip().lower().startswith(URL_SCHEMES)


def redact(url: str) -> str:
    """The URL without its password (in the user part or a `password=` parameter)."""
    parts = urlsplit(url.strip())
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}@{host}" if user else host
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k.lower() != "password"])
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def has_password(url: str) -> bool:
    """Does the URL carry a password (`user:password@` or a `password=` parameter)?"""
    parts = urlsplit(url.strip())
    userinfo = parts.netloc.rpartition("@")[0]
    return ":" in userinfo or any(k.lower() == "password" for k, _ in parse_qsl(parts.query))


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
