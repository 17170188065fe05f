"""Which links may leave the program: pure rules, no HTTP (the dashboard imports them
before its HTTP stack)."""

from __future__ import annotations

import ipaddress
import unicodedata
from urllib.parse import urlsplit


def is_loopback(host: str) -> bool:
    """ "localhost" itself or a loopback address: a name under .localhost is not
    guaranteed to resolve to loopback (plain DNS or /etc/hosts may send it anywhere)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def web_link_problem(url: str) -> str | None:
    """Why a link from a server may not be handed to a browser or the desktop's opener,
    or None when it may: https, or plain http to a loopback host, with a host and no
    space or control character. Everything else (file:, javascript:, data:, a bare path,
    "--help") is refused: the opener would read a file, run a script or take an option."""
    if any(c.isspace() or unicodedata.category(c) in ("Cc", "Cf") for c in url):
        return "a link has no spaces or control characters"
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return "it is not a valid link"
    scheme = parts.scheme.lower()
    if scheme == "https" and host:
        return None
    if scheme == "http" and host:
        if is_loopback(host):
            return None
        return "plain http links are opened only on this machine (loopback); this needs https"
    if scheme in ("https", "http"):
        return "the link names no host"
    return "only https links are opened" + (f", not {scheme}:" if scheme else "")
