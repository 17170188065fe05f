"""The composition root: what a session builds, in which order it closes it (also on
error), the history-only path without the HTTP stack, and the engine's face API."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from seedance_tui.batch_queue import BatchQueue
from seedance_tui.config import Settings
from seedance_tui.engine import Engine, budget_key
from seedance_tui.events import Notice
from seedance_tui.library import AutoDownloader
from seedance_tui.models import Provider
from seedance_tui.session import Session
from seedance_tui.store import Store, StoreError


def test_a_history_only_session_opens_and_closes_the_store(settings: Settings) -> None:
    with Session(settings) as session:
        store = session.store
        assert store.count() == 0
        assert session.engine is None and session.queue is None and session.downloads is None
    with pytest.raises(Exception, match="closed"):
        store.count()  # closed with the session
    with pytest.raises(RuntimeError, match="closed"):
        session.store  # noqa: B018 - a closed session opens nothing again


def test_a_session_with_an_engine_refuses_the_synchronous_way(settings: Settings) -> None:
    with pytest.raises(RuntimeError, match="async with"), Session(settings, with_engine=True):
        pass
    session = Session(settings)
    session.start_engine()
    with pytest.raises(RuntimeError, match="aclose"):
        session.close()
    import asyncio

    asyncio.run(session.aclose())


async def test_the_engine_session_builds_engine_downloader_and_queue(settings: Settings) -> None:
    settings.auto_download = True
    async with Session(settings, with_engine=True) as session:
        engine = session.engine
        assert isinstance(engine, Engine)
        assert isinstance(session.downloads, AutoDownloader)
        assert isinstance(session.queue, BatchQueue)
        assert session.start_engine() is engine  # once
        # The downloader hears the engine's events and tells its listeners through it.
        assert session.downloads.on_event in engine.listeners
        assert session.downloads.emit == engine.emit and session.downloads.wake == engine.wake
        heard: list[object] = []
        engine.subscribe(heard.append)
        session.queue.pause()
        assert [e.message for e in heard if isinstance(e, Notice)] == ["queue paused"]
        assert session.queue.paused() and session.store.get_state("queue_paused") == "1"
        session.queue.resume()
        assert not session.queue.paused()
    assert session.downloads.media._http.is_closed and engine.client._http.is_closed


async def test_without_auto_download_no_downloader_is_built(settings: Settings) -> None:
    settings.auto_download = False
    async with Session(settings, with_engine=True) as session:
        assert session.downloads is None
        assert not session.engine.has_pending()


class _Step:
    def __init__(self, log: list[str], name: str, fail: bool = False) -> None:
        self.log, self.name, self.fail = log, name, fail

    async def aclose(self) -> None:
        self.log.append(self.name)
        if self.fail:
            raise OSError(f"{self.name} failed to close")


async def test_closing_runs_in_reverse_order_and_every_step_runs_after_a_failure(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.auto_download = True
    closed: list[str] = []
    session = Session(settings)
    engine = session.start_engine()
    store = session.store
    queue, downloads = session.queue, session.downloads
    assert queue is not None and downloads is not None
    real_engine_close = engine.aclose

    async def engine_close() -> None:
        closed.append("engine")
        await real_engine_close()

    monkeypatch.setattr(queue, "aclose", _Step(closed, "queue", fail=True).aclose)
    monkeypatch.setattr(downloads, "aclose", _Step(closed, "downloads").aclose)
    monkeypatch.setattr(engine, "aclose", engine_close)
    monkeypatch.setattr(store, "close", lambda: closed.append("store"))
    with pytest.raises(OSError, match="queue failed to close"):
        await session.aclose()
    assert closed == ["queue", "downloads", "engine", "store"]
    await session.aclose()  # once only
    assert closed == ["queue", "downloads", "engine", "store"]


async def test_an_error_inside_the_session_still_closes_everything(settings: Settings) -> None:
    with pytest.raises(ZeroDivisionError):
        async with Session(settings, with_engine=True) as session:
            engine, store = session.engine, session.store
            _ = 1 / 0
    assert engine.client._http.is_closed  # the HTTP connections are closed
    with pytest.raises(Exception, match="closed"):
        store.count()


async def test_a_refused_history_leaves_nothing_open(settings: Settings, tmp_path) -> None:
    settings.db_path = tmp_path / "not-a-history.db"
    settings.db_path.write_text("this is not an SQLite file, and it is long enough to tell" * 20)
    session = Session(settings, with_engine=True)
    with pytest.raises(StoreError, match="not a readable history file"):
        async with session:
            pass
    assert session.engine is None  # nothing was built on a history that cannot be used


def test_the_history_only_path_imports_no_http_stack(settings: Settings) -> None:
    """`list`, `credits`, `export`… open the history through a session without paying for
    httpx, the engine or the providers' HTTP client."""
    code = f"""
import json, sys
from seedance_tui.config import load_settings
from seedance_tui.session import Session
settings = load_settings(db={str(settings.db_path)!r}, env={{}})
with Session(settings) as session:
    session.store.count()
print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('httpx', 'httpcore')
      or m in ('seedance_tui.engine', 'seedance_tui.client', 'seedance_tui.ledger'))))
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(result.stdout) == []


# -- the engine's face API ---------------------------------------------------------------


async def test_budgets_are_given_in_wall_clock_times(settings: Settings) -> None:
    wall, mono = 1_800_000_000.0, 500.0
    store = Store.open(settings.db_path)
    engine = Engine(settings, store, clock=lambda: wall, monotonic=lambda: mono)
    try:
        key = budget_key(Provider.NANOPHOTO, settings.key_fingerprint(Provider.NANOPHOTO))
        engine.scheduler.on_rate_limited(key, 60.0)  # a 429: paused for a minute
        budgets = engine.budgets()
        assert list(budgets) == list(Provider)
        nano = budgets[Provider.NANOPHOTO]
        assert nano.key == key
        assert nano.state.limit == 100
        assert nano.state.paused_until == pytest.approx(wall + 60.0)
        assert budgets[Provider.SEEDANCE15PRO].state.paused_until is None
        assert budgets[Provider.SEEDANCE15PRO].trouble is None
    finally:
        await engine.aclose()
        store.close()
