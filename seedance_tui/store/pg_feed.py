"""Live changes of a PostgreSQL history: LISTEN on a dedicated connection.

Every write to `tasks` that a dashboard shows notifies NOTIFY_CHANNEL (pg_schema.py)
with "<task id> <writer>", the writer being the application_name of the connection that
wrote it (each process's "seedance-tui host:pid"); a bulk write notifies "*". A
`ChangeFeed` hands the ids other processes changed to `on_change`, on its own thread,
within milliseconds of their commit; after a lost connection it reconnects (backing
off) and says "*" (changes may have been missed meanwhile).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg

from .pg_schema import NOTIFY_CHANNEL

log = logging.getLogger(__name__)

EVERYTHING = "*"  # many tasks changed at once (or some may have been missed): reload
RECONNECT_CAP = 30.0


def application_name(owner: str) -> str:
    """How a process's connections name themselves (and so its notifications)."""
    return f"seedance-tui {owner}"[:63]


class ChangeFeed:
    """LISTEN on a connection of its own, in a daemon thread, until `close()`."""

    def __init__(self, url: str, writer: str, on_change: Callable[[str], None]) -> None:
        self._url = url
        self._writer = writer
        self._on_change = on_change
        self._stop = threading.Event()
        self._conn: psycopg.Connection | None = None
        self.listening = threading.Event()  # set once LISTEN is in force (tests wait on it)
        self._thread = threading.Thread(target=self._run, name="seedance-tui change feed",
                                        daemon=True)  # fmt: skip
        self._thread.start()

    def _run(self) -> None:
        backoff = 1.0
        first = True
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._url, autocommit=True, connect_timeout=10) as conn:
                    self._conn = conn
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    self.listening.set()
                    if not first:
                        self._on_change(EVERYTHING)
                    first, backoff = False, 1.0
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=1.0):
                            self._deliver(note.payload)
            except psycopg.Error as exc:
                if self._stop.is_set():
                    return
                self.listening.clear()
                log.warning("change feed: %s; reconnecting in %.0f s", type(exc).__name__, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, RECONNECT_CAP)
            finally:
                self._conn = None

    def _deliver(self, payload: str) -> None:
        task, _, writer = payload.partition(" ")
        if writer == self._writer or not task or self._stop.is_set():
            return  # this process's own write: it told its listeners already
        try:
            self._on_change(task)
        except Exception:  # a broken callback must not end the feed
            log.exception("change feed callback failed")

    def close(self) -> None:
        """Stop: no callback after the feed's current wait (at most a second, on its own
        thread: closing never makes the caller wait; a command ends at once)."""
        self._stop.set()
