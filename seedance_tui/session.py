"""The composition root: what a command or the dashboard works with, built and closed
in one place.

    settings → store → engine (client, ledger, scheduler) → auto-downloader → batch queue

A `Session` opens the history when entered and, when asked, builds the engine and what
runs beside it; it closes them in the reverse order, each even when closing the one
before failed. Two ways in:

    with Session(settings) as session:              # the history only: list, credits,
        session.store.list(...)                     # export… (no HTTP stack imported)

    async with Session(settings, with_engine=True) as session:   # submit, watch, status
        await session.engine.run(until_idle=True)

The dashboard opens the history first, paints its first frame, and only then builds the
engine (whose HTTP stack costs about 0.1 s to import and set up): `session.start_engine()`
after the first frame, then `await session.aclose()` when it quits (after
`await session.stop_sending()` to let a queued job being sent finish).

This module imports the engine, the client and the library inside `start_engine`, so
that a command that only reads the history never pays for them.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING

from .config import Settings
from .store import Store

if TYPE_CHECKING:
    from .batch_queue import BatchQueue
    from .client import Client
    from .engine import Engine
    from .library import AutoDownloader


def make_client(settings: Settings) -> Client:
    """The API client for the settings' providers, hosts and keys."""
    from .client import Client

    return Client(
        {p: s.base_url for p, s in settings.providers.items()},
        {p: settings.key(p) for p in settings.providers},
    )


class Session:
    """Settings, the history and, once started, the engine with its workers.

    `store`: a history already open (the session then owns it and closes it). `engine`:
    an engine already built on that store (tests hold its submissions); else
    `start_engine` builds one. `make_queue` builds the batch queue on the engine.
    `clock`: the wall clock of the history's times (the dashboard's frozen clock in
    snapshots). `with_engine`: `async with` starts the engine too."""

    def __init__(
        self,
        settings: Settings,
        *,
        store: Store | None = None,
        engine: Engine | None = None,
        make_queue: Callable[[Engine], BatchQueue] | None = None,
        clock: Callable[[], float] = time.time,
        with_engine: bool = False,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self._store = store
        self._given_engine = engine
        self._make_queue = make_queue
        self._wants_engine = with_engine
        self.engine: Engine | None = None
        self.downloads: AutoDownloader | None = None
        self.queue: BatchQueue | None = None
        self._closed = False

    # -- the history -------------------------------------------------------------------

    @property
    def store(self) -> Store:
        """The history, opened on first use (StoreError when it cannot be used)."""
        if self._store is None:
            if self._closed:
                raise RuntimeError("the session is closed")
            self._store = Store.open(self.settings.db_path)
        return self._store

    def open(self) -> Session:
        """Open the history now (a refusal raises here, not at first use)."""
        _ = self.store
        return self

    # -- the engine --------------------------------------------------------------------

    def start_engine(self) -> Engine:
        """Build the engine, the auto-downloader (when `auto_download`) and the batch
        queue, and attach them; once (later calls return the same engine).

        Builds only: nothing is sent and no loop runs until `engine.run()`. Synchronous,
        since building opens no connection: the dashboard calls it right after its first
        frame (or at a submission confirmed before that)."""
        if self.engine is not None:
            return self.engine
        if self._closed:
            raise RuntimeError("the session is closed")
        from .batch_queue import BatchQueue
        from .engine import Engine

        store = self.store
        engine = self._given_engine or Engine(
            self.settings, store, client=make_client(self.settings), clock=self.clock
        )
        self.engine = engine
        if self.settings.auto_download:
            from .client import MediaClient
            from .library import AutoDownloader

            self.downloads = AutoDownloader(
                store,
                self.settings,
                emit=engine.emit,
                wake=engine.wake,
                media=MediaClient(),
                clock=engine.clock,
            )
            engine.subscribe(self.downloads.on_event)
            engine.attach(self.downloads)
        self.queue = (self._make_queue or BatchQueue)(engine)
        engine.attach(self.queue)
        return engine

    async def stop_sending(self) -> None:
        """Send no further queued job; wait for the one being sent (a graceful quit)."""
        if self.queue is not None:
            await self.queue.stop()

    # -- closing -----------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close in reverse order: the queue, the downloads, the engine, the history.
        Each step runs even if the one before raised; the first error is raised last."""
        if self._closed:
            return
        self._closed = True
        steps: list[Callable[[], Awaitable[None]]] = []
        if self.queue is not None:
            steps.append(self.queue.aclose)
        if self.downloads is not None:
            steps.append(self.downloads.aclose)
        if self.engine is not None:
            steps.append(self.engine.aclose)
        error: BaseException | None = None
        for step in steps:
            try:
                await step()
            except BaseException as exc:  # close the rest, then raise the first
                error = error or exc
        try:
            self._close_store()
        except BaseException as exc:
            error = error or exc
        if error is not None:
            raise error

    def close(self) -> None:
        """Close a session that never started its engine (the history only)."""
        if self.engine is not None:
            raise RuntimeError("a session with an engine is closed with `await aclose()`")
        self._closed = True
        self._close_store()

    def _close_store(self) -> None:
        if self._store is not None:
            store, self._store = self._store, None
            store.close()

    # -- context managers --------------------------------------------------------------

    def __enter__(self) -> Session:
        if self._wants_engine:
            raise RuntimeError("a session with an engine is entered with `async with`")
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> Session:
        try:
            self.open()
            if self._wants_engine:
                self.start_engine()
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


__all__ = ["Session", "make_client"]
