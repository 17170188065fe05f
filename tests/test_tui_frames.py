"""Frames in the dashboard: the detail pane's, the gallery (g), and their snapshots.

Snapshots draw half-blocks (a headless run is not a terminal), at a fixed size, on the
deterministic demo history whose renders are saved in the library (their frames come
from those files); the two newest renders are saved too, so no frame depends on a link.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tui_helpers import CLOSED_MEDIA, FIXED_NOW, fixed_clock, wait_until

from seedance_tui import frames
from seedance_tui.config import Settings, load_settings
from seedance_tui.demo import seed_history, seed_library
from seedance_tui.models import TaskStatus
from seedance_tui.simulator.media import media_bytes, shape_of
from seedance_tui.store import Store
from seedance_tui.tui.app import SeedanceApp
from seedance_tui.tui.frame_view import FrameView
from seedance_tui.tui.gallery import GalleryScreen, Tile, grid_shape
from seedance_tui.tui.task_list import TaskList


@pytest.fixture
def framed_settings(tmp_path: Path) -> Settings:
    """The 48 demo tasks with a poster in the library for every completed render but the
    demo's never-saved ones. The videos themselves are not kept (their paths, under a
    temporary folder, would show in the detail pane): the frames come from the posters."""
    db = tmp_path / "framed.db"
    settings = load_settings(db=db, env={})
    store = Store.open(db)
    tasks = seed_history(store, FIXED_NOW, media_base=CLOSED_MEDIA)
    for task in seed_library(store, settings, tasks, FIXED_NOW):
        video = Path(task.local_path)
        frames.save_png(frames.thumbnail(frames.extract_poster(video)),
                        frames.poster_path(settings, task.id))  # fmt: skip
        store.set_local_path(task.id, None, FIXED_NOW)
        video.unlink()
    for task in tasks:  # the newest renders (seed_library leaves them to their links)
        if task.status is TaskStatus.COMPLETED and FIXED_NOW - task.completed_at < 86400:
            video = tmp_path / f"{task.id}.mp4"
            video.write_bytes(media_bytes(task.task_id, shape_of(task.params.get("aspect_ratio"))))
            frames.save_png(frames.thumbnail(frames.extract_poster(video)),
                            frames.poster_path(settings, task.id))  # fmt: skip
    store.close()
    return settings


def make_app(settings: Settings) -> SeedanceApp:
    return SeedanceApp(settings, clock=fixed_clock, poll=False)


async def settle(pilot) -> None:
    """Until every frame worker has finished and its message was handled."""
    app = pilot.app
    await app.workers.wait_for_complete()
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()


def detail_frame(app: SeedanceApp) -> FrameView:
    return app.dashboard.query_one("#detail-frame", FrameView)


# -- the detail pane -------------------------------------------------------------------


async def test_the_detail_pane_shows_the_selected_renders_frame(framed_settings) -> None:
    app = make_app(framed_settings)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        tasks = app.query_one(TaskList)
        view = detail_frame(app)
        assert view.shown == tasks.selected.id and view.display
        assert frames.poster_path(framed_settings, tasks.selected.id).is_file()
        # Down to an expired render: it says so; to a failed one: the frame hides.
        kinds: dict[str, int] = {}
        for index in range(tasks.total):
            task = tasks.task_at(index)
            if task.status is TaskStatus.FAILED:
                kinds.setdefault("failed", index)
            elif task.status is TaskStatus.COMPLETED and not frames.cached_poster(
                framed_settings, task
            ):
                kinds.setdefault("expired", index)
        tasks.move_cursor(kinds["expired"])
        await settle(pilot)
        assert view.shown is None and "link expired, never saved" in (view.note or "")
        tasks.move_cursor(kinds["failed"])
        await settle(pilot)
        assert not view.display


async def test_moving_back_over_a_task_reuses_its_scaled_frame(framed_settings) -> None:
    app = make_app(framed_settings)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        source = app.frame_source
        for _ in range(4):
            await pilot.press("down")
            await settle(pilot)
        made = source.scaled_made
        extracted = source.loader.extracted
        for _ in range(4):
            await pilot.press("up")
            await pilot.pause()
            # Shown at once from memory: no worker, no scaling, no extraction.
            assert detail_frame(app).shown == app.query_one(TaskList).selected.id
        assert source.scaled_made == made and source.loader.extracted == extracted


async def test_a_frame_is_extracted_from_a_live_link(sim, settings) -> None:
    import httpx
    from test_frames import completed_task, sim_task

    task_id, url = sim_task(sim)
    store = Store.open(settings.db_path)
    task = completed_task(url)
    store.insert_task(task)
    store.close()
    app = SeedanceApp(settings, poll=False)
    async with app.run_test(size=(120, 40)) as pilot:
        view = detail_frame(app)
        await wait_until(pilot, lambda: view.shown == task.id)
        assert app.store.get(task.id).local_path is None  # read, not downloaded
        assert httpx.get(url).status_code == 200


# -- the gallery -----------------------------------------------------------------------


def test_the_grid_is_at_least_two_by_two() -> None:
    assert grid_shape(80, 24) == (2, 2)
    assert grid_shape(160, 48) == (4, 4)
    assert grid_shape(40, 12) == (2, 2)


async def test_the_gallery_opens_on_g_and_enter_selects_the_task(framed_settings) -> None:
    app = make_app(framed_settings)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("g")
        await settle(pilot)
        gallery = app.screen
        assert isinstance(gallery, GalleryScreen)
        tiles = list(gallery.query(Tile))
        assert len(tiles) == 4 and (gallery.cols, gallery.rows) == (2, 2)
        shown = [t.query_one(FrameView).shown for t in tiles]
        assert shown[0] == tiles[0].subject.id  # the newest render's frame
        await pilot.press("right", "down", "down")  # index 1, 3, then 5: a row scrolls
        assert gallery.cursor == 5 and gallery.top_row == 1
        await pilot.press("enter")
        await pilot.pause()
        assert not isinstance(app.screen, GalleryScreen)
        tasks = app.query_one(TaskList)
        assert tasks.cursor == 5 and tasks.selected.id == gallery.pages.task_at(5).id


async def test_the_gallery_shares_the_lists_filters_and_search(framed_settings) -> None:
    app = make_app(framed_settings)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("g")
        await settle(pilot)
        gallery = app.screen
        assert isinstance(gallery, GalleryScreen)
        await pilot.press("f", "f")  # pending, then completed
        tasks = app.dashboard.query_one(TaskList)
        assert app.dashboard.query_state.status == 2
        assert gallery.pages.total == tasks.total < 48
        assert all(t.status is TaskStatus.COMPLETED for t in
                   (gallery.pages.task_at(i) for i in range(gallery.pages.total)))  # fmt: skip
        await pilot.press("slash", *"koi")
        assert app.dashboard.query_state.search == "koi" and gallery.pages.total == tasks.total >= 1
        assert "koi" in gallery.pages.task_at(0).prompt.lower()
        await pilot.press("escape", "escape")  # leave the field, then the gallery
        assert not isinstance(app.screen, GalleryScreen)
        assert app.dashboard.query_one("#search").value == "koi"


async def test_the_gallery_pages_a_large_history(tmp_path) -> None:
    """Thousands of tasks: the gallery holds a few pages, not the history."""
    from test_tui import load_benchmark

    db = tmp_path / "big.db"
    store = Store.open(db)
    store.bulk_import(load_benchmark().synthetic_tasks(5000, now=FIXED_NOW))
    store.close()
    settings = load_settings(db=db, env={})
    app = make_app(settings)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("g")
        await pilot.pause()
        gallery = app.screen
        assert isinstance(gallery, GalleryScreen) and gallery.pages.total == 5000
        await pilot.press("end")
        assert gallery.cursor == 4999
        await pilot.pause()
        assert gallery.pages.held_rows() <= 300


# -- snapshots -------------------------------------------------------------------------


def snapshot_gallery(pilot_size):
    async def open_gallery(pilot) -> None:
        await settle(pilot)
        await pilot.press("g")
        await settle(pilot)

    return open_gallery


def test_snapshot_detail_frame_80x24(snap_compare, framed_settings):
    assert snap_compare(make_app(framed_settings), terminal_size=(80, 24), run_before=settle)


def test_snapshot_detail_frame_160x48(snap_compare, framed_settings):
    assert snap_compare(make_app(framed_settings), terminal_size=(160, 48), run_before=settle)


def test_snapshot_gallery_80x24(snap_compare, framed_settings):
    assert snap_compare(
        make_app(framed_settings), terminal_size=(80, 24), run_before=snapshot_gallery((80, 24))
    )


def test_snapshot_gallery_160x48(snap_compare, framed_settings):
    assert snap_compare(
        make_app(framed_settings), terminal_size=(160, 48), run_before=snapshot_gallery((160, 48))
    )
