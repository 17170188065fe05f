"""A full disk under the history or the library (issue #10, item 3).

Most tests put the history (or the library) on a 2 MiB tmpfs mounted for the test, and
fill it at the worst moment — the hostile server fills it just before it answers a
generate, so the provider's task id arrives when nothing can be written. Where mounting
is not allowed (not root), they are skipped; `test_an_injected_sqlite_full_...` gets the
same error from SQLite's own code path on any machine.

Expected: no traceback; an accepted task id that could not be stored is announced (stderr,
a persistent notice) with what to do, kept, and recorded when space returns; the poll
loop backs off, says the disk is full, and resumes by itself; a download that fills the
disk leaves no file, and a finished one is never put in place unrecorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import NANO_KEY
from hostile import HostileServer, Request, body_answer, json_answer
from test_hostile_server import NANO_GENERATE, NANO_JOB, NANO_STATUS, settings_for, wait_for

from seedance_tui.engine import Engine, Notice
from seedance_tui.library import DownloadError, download_task
from seedance_tui.models import Task, TaskStatus
from seedance_tui.store import Store


class Disk:
    """A small filesystem of our own, and a way to fill it up and free it again."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.filler = path / "filler"

    def fill(self) -> None:
        """Write until the filesystem refuses (ENOSPC), down to the last byte."""
        with open(self.filler, "ab", buffering=0) as fh:
            for size in (65536, 4096, 512, 1):
                block = b"\0" * size
                with contextlib.suppress(OSError):
                    while True:
                        fh.write(block)

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Disk]:
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.strip()}")
    try:
        yield Disk(mount)
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def notices(engine: Engine) -> list[Notice]:
    seen: list[Notice] = []
    engine.subscribe(lambda event: isinstance(event, Notice) and seen.append(event))
    return seen


def filling_generate(disk: Disk, task_id: str):
    """A generate answer made after filling the disk: the id arrives with no room left."""

    def answer(request: Request):
        disk.fill()
        return json_answer({"taskId": task_id, "status": "processing", "creditsUsed": 4})

    return answer


async def test_an_accepted_id_the_full_disk_cannot_store_is_announced_and_recorded_later(
    small_disk, tmp_path
) -> None:
    with HostileServer() as server:
        server.route(NANO_GENERATE, make=filling_generate(small_disk, "t-full"))
        settings = settings_for(server.base_url, tmp_path)
        settings.db_path = small_disk.path / "history.db"
        store = Store.open(settings.db_path)
        engine = Engine(settings, store)
        said = notices(engine)
        try:
            task = await engine.submit(NANO_JOB)
            # Shown as accepted (in memory), announced with what to do, and kept.
            assert task.status is TaskStatus.PROCESSING and task.task_id == "t-full"
            kept = [n for n in said if n.persistent and "t-full" in n.message]
            assert kept and "Keep this task id" in kept[0].message
            assert "disk is full" in kept[0].message
            assert store.get(task.id).task_id is None  # not on disk yet
            assert [t.task_id for t in engine.unsaved()] == ["t-full"]
            small_disk.free()
            async with asyncio.timeout(30):
                await engine.flush_unsaved()
        finally:
            await engine.aclose()
        recorded = store.get(task.id)
        assert recorded.status is TaskStatus.PROCESSING and recorded.task_id == "t-full"
        assert any("recorded task id t-full" in n.message for n in said)


async def test_watch_on_a_full_disk_backs_off_says_so_and_resumes(
    small_disk, tmp_path, caplog
) -> None:
    with HostileServer() as server:
        server.route(NANO_GENERATE, json_answer({"taskId": "t-1", "status": "processing"}))
        server.route(
            NANO_STATUS,
            json_answer({"taskId": "t-1", "status": "completed", "videoUrl": "https://e.com/v"}),
        )
        settings = settings_for(server.base_url, tmp_path)
        settings.db_path = small_disk.path / "history.db"
        store = Store.open(settings.db_path)
        first = Engine(settings, store)
        task = await first.submit(NANO_JOB)
        await first.aclose()
        small_disk.fill()

        engine = Engine(settings, store)
        said = notices(engine)
        run = asyncio.create_task(engine.run(until_idle=True))
        try:
            full = lambda: [n for n in said if "disk holding the history is full" in n.message]  # noqa: E731
            await wait_for(lambda: len(full()) >= 2, "two notices of the full disk")
            assert not run.done()  # waiting, not crashed
            texts = [n.message for n in full()]
            assert "trying again in 1 s" in texts[0] and "trying again in 2 s" in texts[1]
            assert server.count(NANO_STATUS) == 0  # nothing sent that cannot be recorded
            small_disk.free()
            async with asyncio.timeout(30):
                await run
        finally:
            run.cancel()
            await asyncio.gather(run, return_exceptions=True)
            await engine.aclose()
        assert store.get(task.id).status is TaskStatus.COMPLETED
        assert any("can be written again" in n.message for n in said)
        assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]


def _completed(store: Store, url: str) -> Task:
    task = Task(
        id="0190000000001234abcd", provider=NANO_JOB.provider, status=TaskStatus.COMPLETED,
        prompt="a lighthouse", params=NANO_JOB.params(), created_at=time.time() - 60,
        task_id="t-media", video_urls=(url,),
    )  # fmt: skip
    store.insert_task(task)
    return task


async def test_a_download_that_fills_the_disk_leaves_no_file_and_no_traceback(
    small_disk, tmp_path
) -> None:
    video = os.urandom(3 * 1024 * 1024)  # more than the 2 MiB disk holds
    with HostileServer() as server:
        server.route("/media/v.mp4", body_answer(video, headers={"Content-Type": "video/mp4"}))
        settings = settings_for(server.base_url, tmp_path)
        settings.library = small_disk.path / "library"
        store = Store.open(settings.db_path)
        task = _completed(store, server.base_url + "/media/v.mp4")
        with pytest.raises(DownloadError) as caught:
            await download_task(task, store, settings, attempts=1)
    assert "disk" in str(caught.value) and "full" in str(caught.value)
    assert not list(settings.library.rglob("*"))[1:]  # the folder, nothing in it
    assert not [p for p in settings.library.rglob("*") if p.is_file()]
    assert store.get(task.id).local_path is None


async def test_a_finished_download_the_history_cannot_record_is_not_put_in_place(
    small_disk, tmp_path
) -> None:
    video = os.urandom(200_000)
    with HostileServer() as server:
        server.route("/media/v.mp4", body_answer(video, headers={"Content-Type": "video/mp4"}))
        settings = settings_for(server.base_url, tmp_path)
        settings.db_path = small_disk.path / "history.db"
        settings.library = tmp_path / "library"
        store = Store.open(settings.db_path)
        task = _completed(store, server.base_url + "/media/v.mp4")
        small_disk.fill()
        with pytest.raises(DownloadError) as caught:
            await download_task(task, store, settings, attempts=1)
        assert "could not record" in str(caught.value)
        files = sorted(p.name for p in settings.library.iterdir())
        assert len(files) == 1 and files[0].endswith(".mp4.part")  # complete, not in place
        assert store.get(task.id).local_path is None
        small_disk.free()
        path = await download_task(store.get(task.id), store, settings, attempts=1)
    assert path.read_bytes() == video
    assert store.get(task.id).local_path == str(path)


def test_submit_on_a_full_disk_prints_the_task_id_and_waits_for_space(small_disk, tmp_path) -> None:
    with HostileServer() as server:
        server.route(NANO_GENERATE, make=filling_generate(small_disk, "t-cli"))
        db = small_disk.path / "history.db"
        env = {
            **os.environ,
            "SEEDANCE_TUI_HOME": str(tmp_path / "home"),
            "NANOPHOTO_BASE_URL": server.base_url,
            "NANOPHOTO_API_KEY": NANO_KEY,
            "SEEDANCE_TUI_KEYRING": "0",
            "SEEDANCE_TUI_AUTO_DOWNLOAD": "0",
            "PYTHONUNBUFFERED": "1",
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "seedance_tui", "--db", str(db), "submit", "--prompt", "x"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            assert process.stderr is not None
            lines: list[str] = []
            deadline = time.monotonic() + 60
            while not any("t-cli" in line for line in lines):
                line = process.stderr.readline().decode()
                if not line or time.monotonic() > deadline:
                    pytest.fail(f"the task id was never printed: {lines}")
                lines.append(line)
            assert any("Keep this task id" in line for line in lines), lines
            assert process.poll() is None  # still waiting for space, not crashed
            small_disk.free()
            out, rest = process.communicate(timeout=60)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    err = "".join(lines) + rest.decode()
    assert process.returncode == 0, err
    assert "Traceback" not in err
    assert "t-cli" in out.decode()
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT task_id, status FROM tasks").fetchall() == [
            ("t-cli", "processing")
        ]


class FullAfterArming:
    """The store's connection, refusing writes with SQLite's own "database or disk is
    full" error (SQLITE_FULL) once armed — the error a full disk gives, on any machine."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self.armed = False

    def execute(self, sql: str, *args):
        if self.armed and sql.lstrip().upper().startswith(("INSERT", "UPDATE", "COMMIT")):
            # A real SQLITE_FULL, raised by SQLite: exceed this connection's page budget.
            name = f"full_{uuid.uuid4().hex}"
            self._conn.execute("PRAGMA max_page_count = 1")
            try:
                return self._conn.execute(f"CREATE TABLE {name} (x)")
            finally:
                self._conn.execute("PRAGMA max_page_count = 1073741823")
        return self._conn.execute(sql, *args)

    def __getattr__(self, name: str):
        return getattr(self._conn, name)


async def test_an_injected_sqlite_full_keeps_the_accepted_id(tmp_path) -> None:
    with HostileServer() as server:
        conn: dict[str, FullAfterArming] = {}

        def answer(request: Request):
            conn["store"].armed = True  # the disk fills while the server works
            return json_answer({"taskId": "t-inj", "status": "processing"})

        server.route(NANO_GENERATE, make=answer)
        settings = settings_for(server.base_url, tmp_path)
        store = Store.open(settings.db_path)
        conn["store"] = store.conn = FullAfterArming(store.conn)  # type: ignore[assignment]
        engine = Engine(settings, store)
        said = notices(engine)
        try:
            task = await engine.submit(NANO_JOB)
            assert task.task_id == "t-inj"
            assert any(n.persistent and "t-inj" in n.message for n in said)
            conn["store"].armed = False
            await engine.flush_unsaved()
        finally:
            await engine.aclose()
        assert store.get(task.id).task_id == "t-inj"


async def test_the_dashboard_keeps_an_unrecorded_task_id_on_screen(tmp_path) -> None:
    """The engine's persistent notice (an accepted id the history could not record)
    stays on the dashboard until dismissed, not for a toast's few seconds."""
    from tui_helpers import wait_until

    from seedance_tui.tui.app import SeedanceApp

    settings = settings_for("http://127.0.0.1:9", tmp_path)
    app = SeedanceApp(settings, poll=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: app.engine is not None)
        assert app.engine is not None
        app.engine.emit(
            Notice(
                "error",
                "nanophoto accepted job ab12cd34 as task id t-9 … Keep this task id",
                persistent=True,
            )  # fmt: skip
        )
        await wait_until(pilot, lambda: any("t-9" in str(n.message) for n in app._notifications))
        kept = next(n for n in app._notifications if "t-9" in str(n.message))
        assert kept.timeout >= 3600 and kept.severity == "error"
