"""A PostgreSQL history's URL: told apart from a file's path, and shown without its
password (used to connect, never written anywhere)."""

from __future__ import annotations

import os
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

URL_SCHEMES = ("postgresql://", "postgres://")


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


__all__ = ["URL_SCHEMES", "has_password", "is_url", "redact"]
