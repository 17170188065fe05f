"""The SQLite backend: the embedded history file, assembled from one mixin per concern
over one connection (see connection.py for why mixins)."""

from __future__ import annotations

import os
from pathlib import Path

from .lifecycle import Lifecycle
from .opening import open_history, open_reader
from .queries import Queries
from .queue_state import QueueState
from .reports import Reports
from .request_ledger import RequestLedger
from .spending import Spending
from .transfer import Transfer

# How long a statement waits for another connection's lock before StoreBusyError.
BUSY_TIMEOUT = 10.0


class Store(Lifecycle, Spending, RequestLedger, Queries, Reports, Transfer, QueueState):
    """The history in one SQLite file (WAL), shared safely by every instance on the
    machine that opens it. Conforms to `StoreBackend` (interface.py)."""

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str] | None,
        *,
        create: bool = True,
        busy_timeout: float = BUSY_TIMEOUT,
        owner: str | None = None,
    ) -> Store:
        """Open (and if new, create) the history file; never overwrites one we can't read.
        None or ":memory:": a new history in memory. `owner`: who this handle writes as
        (default: this process, "host:pid")."""
        conn, file = open_history(path, create=create, busy_timeout=busy_timeout)
        return cls(conn, file, owner=owner)

    @classmethod
    def open_reader(
        cls, path: str | os.PathLike[str], *, busy_timeout: float = BUSY_TIMEOUT
    ) -> Store:
        """A read-only handle on an existing history file, for a worker thread (a
        connection belongs to its thread). No migration and no integrity scan: the file
        was opened, checked and migrated by the Store that owns it."""
        conn = open_reader(path, busy_timeout=busy_timeout)
        return cls(conn, Path(path))

    def reader(self) -> Store | None:
        """A read-only handle on this history for another thread (None: in memory, where
        no other connection can see it)."""
        return None if self.path is None else type(self).open_reader(self.path)
