"""The dashboard's settings and library features: keymap, theme, downloads, the batch queue.

Pilot against the simulator where bytes move (downloads, the queue), against the seeded
demo history with a fixed clock where they don't.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from rich.console import Console
from textual.widgets import Checkbox, Input, ProgressBar, Static, TextArea
from tui_helpers import (
    CLOSED_MEDIA,
    FIXED_NOW,
    KEYED_ENV,
    fixed_clock,
    footer_keys,
    noted,
    notes,
    row_text,
    wait_until,
)

from seedance_tui import jobs, library
from seedance_tui.batch_queue import BatchQueue
from seedance_tui.config import load_settings, read_config_file, save_setting
from seedance_tui.demo import seed_history
from seedance_tui.engine import Engine
from seedance_tui.jobs import JobFields
from seedance_tui.models import JobSpec, Provider, Task, TaskStatus
from seedance_tui.paths import config_path
from seedance_tui.session import Session
from seedance_tui.simulator.media import media_bytes
from seedance_tui.store import Store, new_task_id
from seedance_tui.tui.app import SeedanceApp
from seedance_tui.tui.credits import CreditsPanel
from seedance_tui.tui.downloads import DownloadStrip
from seedance_tui.tui.form import Choice, JobForm
from seedance_tui.tui.messages import DownloadProgress
from seedance_tui.tui.screens import HelpScreen
from seedance_tui.tui.task_list import TaskList


@pytest.fixture
def seeded_db(tmp_path: Path) -> Path:
    db = tmp_path / "seeded.db"
    store = Store.open(db)
    seed_history(store, FIXED_NOW, media_base=CLOSED_MEDIA)
    store.close()
    return db


def plain(renderable) -> str:
    console = Console(width=200, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(renderable)
    return console.export_text()


def messages(app) -> list[str]:
    return [note.message for note in notes(app)]


# -- keymap ----------------------------------------------------------------------------


async def test_a_rebound_key_works_and_the_old_one_does_not(seeded_db):
    save_setting("keymap.search", "ctrl+f")
    save_setting("keymap.download", "x")
    save_setting("keymap.no_such_action", "ctrl+y")
    settings = load_settings(db=seeded_db, env={})
    app = noted(SeedanceApp(settings, clock=fixed_clock, poll=False))
    async with app.run_test(size=(120, 40)) as pilot:
        tasks = app.query_one(TaskList)
        assert app.focused is tasks
        await pilot.press("slash")
        assert app.focused is tasks  # `/` is no longer search
        await pilot.press("ctrl+f")
        assert app.focused is app.query_one("#search", Input)
        # While typing, ctrl+f stays listed (it types nothing); a rebound letter does not.
        assert "search" in await footer_keys(pilot)
        await pilot.press("escape")
        assert app.focused is tasks
        keys = await footer_keys(pilot)
        assert keys["search"] == "^f"
        await wait_until(
            pilot, lambda: any("no_such_action" in m for m in messages(app)), "keymap warned"
        )
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        help_text = plain(app.screen.query(Static)[1].content)
        search_line = next(line for line in help_text.splitlines() if "Search the prompts" in line)
        assert search_line.split()[:2] == ["ctrl+f", "search"]
        download_line = next(line for line in help_text.splitlines() if "Download the" in line)
        assert download_line.split()[:2] == ["x", "download"]


async def test_a_keymap_can_move_a_key_a_multiplexer_claims(seeded_db):
    """ctrl+s (tmux users often rebind it) moved to ctrl+g: ctrl+g opens the confirm dialog."""
    from seedance_tui.tui.screens import ConfirmSubmit

    save_setting("keymap.submit", "ctrl+g")
    settings = load_settings(db=seeded_db, env=KEYED_ENV)
    app = SeedanceApp(settings, clock=fixed_clock, poll=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("n", *"a heron in fog")
        await pilot.press("ctrl+s")
        assert not isinstance(app.screen, ConfirmSubmit)
        await pilot.press("ctrl+g")
        assert isinstance(app.screen, ConfirmSubmit)


# -- theme -----------------------------------------------------------------------------


async def test_a_chosen_theme_is_saved_and_used_at_the_next_start(seeded_db):
    settings = load_settings(db=seeded_db, env={})
    app = SeedanceApp(settings, clock=fixed_clock, poll=False)
    async with app.run_test(size=(100, 30)) as pilot:
        assert read_config_file().get("theme") is None  # starting saves nothing
        app.theme = "nord"  # what the command palette's theme picker does
        await pilot.pause()
        assert read_config_file()["theme"] == "nord"
    again = SeedanceApp(load_settings(db=seeded_db, env={}), clock=fixed_clock, poll=False)
    async with again.run_test(size=(100, 30)):
        assert again.theme == "nord"


async def test_an_unknown_theme_is_reported_not_fatal(seeded_db):
    save_setting("theme", "no-such-theme")
    app = noted(SeedanceApp(load_settings(db=seeded_db, env={}), clock=fixed_clock, poll=False))
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(
            pilot, lambda: any("no-such-theme" in m for m in messages(app)), "theme warned"
        )
        assert app.theme == "textual-dark"
        assert read_config_file()["theme"] == "no-such-theme"  # left for the user to fix


# -- the form's defaults ----------------------------------------------------------------

FORM_CONFIG = """
provider = "seedance15pro"

[providers.nanophoto.defaults]
resolution = "1080p"
duration = 12
aspect = "portrait"
audio = true

[providers.seedance15pro.defaults]
duration = "10"
aspect = "9:16"
audio = true
"""


async def test_the_form_starts_from_the_configs_provider_and_defaults(seeded_db):
    """The form builds its job as `submit` does: the config's provider and
    `[providers.NAME.defaults]` fill what the user has not chosen."""
    config_path().parent.mkdir(parents=True, exist_ok=True)
    config_path().write_text(FORM_CONFIG)
    settings = load_settings(db=seeded_db, env={})
    app = SeedanceApp(settings, clock=fixed_clock, poll=False)
    async with app.run_test(size=(120, 40)) as pilot:
        form = app.query_one(JobForm)
        assert form.provider is Provider.SEEDANCE15PRO
        assert app.query_one("#provider", Choice).value == "seedance15pro"
        assert app.query_one("#duration", Choice).value == "10"
        assert app.query_one("#aspect_ratio", Choice).value == "9:16"
        assert app.query_one("#audio", Checkbox).value is True
        app.query_one("#prompt", TextArea).text = "a heron in fog"
        await pilot.pause()
        job = form.revalidate()
        assert job is not None
        expected = jobs.prepare(jobs.build_spec(JobFields(prompt="a heron in fog"), settings))
        assert job == expected  # the spec `submit "a heron in fog"` sends, and its price

        app.query_one("#provider", Choice).value = "nanophoto"
        await wait_until(pilot, lambda: form.provider is Provider.NANOPHOTO)
        chosen = tuple(
            app.query_one(f"#{name}", Choice).value
            for name in ("resolution", "duration", "aspect_ratio")
        )
        assert chosen == ("1080p", "12", "portrait")
        assert app.query_one("#audio", Checkbox).value is True
        job = form.revalidate()
        assert job is not None
        fields = JobFields(prompt="a heron in fog", provider="nanophoto")
        assert job == jobs.prepare(jobs.build_spec(fields, settings))


# -- downloads -------------------------------------------------------------------------


def finished_task(base_url: str, *, age: float = 60.0) -> Task:
    now = time.time()
    id = new_task_id(now - age)
    return Task(
        id=id,
        provider=Provider.NANOPHOTO,
        status=TaskStatus.COMPLETED,
        prompt="a lighthouse in a storm",
        params={"mode": "text-to-video", "resolution": "720p", "duration": "4", "audio": False},
        created_at=now - age,
        task_id="task_" + id,
        credits_estimated=4,
        credits_charged=4,
        video_urls=(f"{base_url}/media/task_{id}.mp4",),
        submitted_at=now - age,
        completed_at=now - age + 30,
    )


async def test_d_saves_the_video_with_a_progress_bar_and_records_the_path(
    live_settings, sim, monkeypatch
):
    store = Store.open(live_settings.db_path)
    task = finished_task(sim.base_url)
    store.insert_task(task)
    store.close()
    # Hold the download halfway, to see the bar; then let the real one run.
    real_download = library.download_task
    halfway, release = asyncio.Event(), asyncio.Event()

    async def held_download(task, store, settings, *, on_progress=None, **kwargs):
        on_progress(1_000, 4_000)
        halfway.set()
        await release.wait()
        return await real_download(task, store, settings, on_progress=on_progress, **kwargs)

    monkeypatch.setattr(library, "download_task", held_download)
    opened: list[str] = []
    monkeypatch.setattr(library, "open_with_system", lambda target: opened.append(target) or True)
    app = SeedanceApp(live_settings, poll=False)
    async with app.run_test(size=(120, 40)) as pilot:
        tasks = app.query_one(TaskList)
        assert tasks.selected.id == task.id
        assert "⤓" not in row_text(tasks, 0)
        detail = plain(app.query_one("#detail-body", Static).content)
        assert "not saved yet" in detail
        await pilot.press("d")
        await asyncio.wait_for(halfway.wait(), 5)
        strip = app.query_one(DownloadStrip)
        await wait_until(pilot, lambda: strip.display)
        bar = app.query_one("#download-bar", ProgressBar)
        assert (bar.progress, bar.total) == (1_000, 4_000)
        assert task.short_id in str(app.query_one("#download-label", Static).content)
        release.set()
        await wait_until(pilot, lambda: not strip.display)
        saved = app.store.get(task.id)
        assert saved.local_path and Path(saved.local_path).read_bytes() == media_bytes(
            f"task_{task.id}"
        )
        assert "⤓" in row_text(tasks, 0)
        detail = plain(app.query_one("#detail-body", Static).content)
        assert saved.local_path in detail.replace("\n", "") and "saved in the library" in detail
        assert "download" not in await footer_keys(pilot)  # nothing left to save
        await pilot.press("o")
        assert opened == [saved.local_path]


async def test_a_failed_download_says_why(live_settings, sim):
    store = Store.open(live_settings.db_path)
    task = finished_task(sim.base_url)
    task.video_urls = (f"{sim.base_url}/nowhere/{task.id}.mp4",)
    store.insert_task(task)
    store.close()
    app = noted(SeedanceApp(live_settings, poll=False))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("d")
        await wait_until(pilot, lambda: any("Could not save" in m for m in messages(app)))
        assert not app.query_one(DownloadStrip).display
        assert app.store.get(task.id).local_path is None


async def test_auto_download_progress_is_shown_and_the_row_marked(live_settings, sim):
    live_settings.auto_download = True
    progress: list[DownloadProgress] = []

    def hook(message) -> None:
        if isinstance(message, DownloadProgress):
            progress.append(message)

    app = SeedanceApp(live_settings)
    async with app.run_test(size=(120, 40), message_hook=hook) as pilot:
        await pilot.press("n", *"waves on basalt", "ctrl+s", "enter")
        tasks = app.query_one(TaskList)
        await wait_until(pilot, lambda: tasks.total == 1)
        task_id = tasks.task_at(0).id
        await wait_until(pilot, lambda: app.store.get(task_id).local_path is not None)
        await wait_until(pilot, lambda: "⤓" in row_text(tasks, 0))
        assert progress and all(m.auto and m.task_id == task_id for m in progress)
        assert progress[-1].done == progress[-1].total
        await wait_until(pilot, lambda: not app.query_one(DownloadStrip).display)


async def test_expired_and_saved_links_are_marked(seeded_db, tmp_path):
    settings = load_settings(db=seeded_db, env={})
    store = Store.open(seeded_db)
    old = [t for t in store.list(_completed(), limit=None) if t.created_at < FIXED_NOW - 86400 * 3]
    completed = old[:2]
    saved_file = tmp_path / "saved.mp4"
    saved_file.write_bytes(b"video")
    store.set_local_path(completed[0].id, str(saved_file), FIXED_NOW)
    store.close()
    app = SeedanceApp(settings, clock=fixed_clock, poll=False)
    async with app.run_test(size=(160, 48)) as pilot:
        tasks = app.query_one(TaskList)
        await pilot.press("f", "f")  # completed only
        rows = {tasks.task_at(i).id: row_text(tasks, i) for i in range(tasks.total)}
        assert "⤓" in rows[completed[0].id]
        assert "⚠" in rows[completed[1].id]  # weeks old, never saved
        tasks.move_cursor(next(i for i in range(tasks.total)
                               if tasks.task_at(i).id == completed[1].id))  # fmt: skip
        await pilot.pause()
        detail = plain(app.query_one("#detail-body", Static).content)
        assert "⚠ link likely expired, never saved" in detail


def _completed():
    from seedance_tui.store import Filter

    return Filter(status=(TaskStatus.COMPLETED.value,))


# -- the batch queue -------------------------------------------------------------------


class WatchedQueue(BatchQueue):
    """Counts the poll loop's looks at the queue and the queue submitter's ends: the
    states a paused queue is checked in (nothing left the queue although it was looked at)."""

    looks = 0
    drains_ended = 0

    def kick(self) -> None:
        self.looks += 1
        super().kick()

    async def _drain(self) -> None:
        try:
            await super()._drain()
        finally:
            self.drains_ended += 1


async def test_the_queue_key_pauses_and_resumes_the_batch(live_settings, sim):
    store = Store.open(live_settings.db_path)
    jobs = [
        (JobSpec(provider=Provider.NANOPHOTO, prompt=f"queued job {i}", duration="4"), 4,
         live_settings.key_fingerprint(Provider.NANOPHOTO))
        for i in range(4)
    ]  # fmt: skip
    store.enqueue(jobs, time.time())
    store.set_state("queue_paused", "1")
    store.close()
    store = Store.open(live_settings.db_path)
    watched: list[WatchedQueue] = []

    def make_queue(engine: Engine) -> WatchedQueue:
        watched.append(WatchedQueue(engine))
        return watched[-1]

    session = Session(live_settings, store=store, make_queue=make_queue)
    app = SeedanceApp(live_settings, session=session)

    async def loop_looks_again() -> None:
        """Wake the poll loop and wait until it has looked at the queue twice more."""
        looks = queue.looks
        app.engine.wake()
        await wait_until(pilot, lambda: queue.looks >= looks + 1, "the loop looked at the queue")
        app.engine.wake()
        await wait_until(pilot, lambda: queue.looks >= looks + 2, "the loop looked again")

    async with app.run_test(size=(120, 40)) as pilot:
        panel = app.query_one(CreditsPanel)
        queue_text = lambda: str(panel.query_one("#credits-queue", Static).content)  # noqa: E731
        await wait_until(pilot, lambda: "4 queued" in queue_text())
        assert "paused" in queue_text() and "(b: resume)" in queue_text()
        queue = watched[0]
        tasks = app.query_one(TaskList)
        assert "◌   queued" in row_text(tasks, 0)  # glyph, no library mark, prompt
        await loop_looks_again()
        assert app.store.count_queued() == {"nanophoto": 4}  # paused: nothing left
        assert queue.drains_ended == 0  # nor was a submitter started
        await pilot.press("b")
        assert not app.session.queue.paused()
        await wait_until(pilot, lambda: sum(app.store.count_queued().values()) < 4)
        await pilot.press("b")
        assert app.session.queue.paused()
        # The submitter finishes the job it is sending and stops at the pause.
        await wait_until(pilot, lambda: queue.drains_ended == 1, "the queue submitter stopped")
        left = sum(app.store.count_queued().values())
        await loop_looks_again()
        assert queue.drains_ended == 1  # no submitter started again
        assert sum(app.store.count_queued().values()) == left  # no new job leaves the queue
        assert "paused" in queue_text()
        await pilot.press("b")
        await wait_until(pilot, lambda: not app.store.count_queued())


# -- snapshot --------------------------------------------------------------------------


def test_snapshot_download_in_progress(snap_compare, seeded_db, monkeypatch):
    """The dashboard mid-download: the strip's progress bar under the task list."""

    async def held_download(task, store, settings, *, on_progress=None, **kwargs):
        on_progress(1_560_000, 2_400_000)
        await asyncio.Event().wait()  # never finishes: the app's exit cancels it

    monkeypatch.setattr(library, "download_task", held_download)

    async def start_download(pilot) -> None:
        await pilot.app.workers.wait_for_complete()
        await pilot.press("d")
        await wait_until(pilot, lambda: pilot.app.query_one(DownloadStrip).display)
        await pilot.pause()

    app = SeedanceApp(load_settings(db=seeded_db, env={}), clock=fixed_clock, poll=False)
    assert snap_compare(app, terminal_size=(100, 30), run_before=start_download)
