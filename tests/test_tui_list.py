"""The task list, the detail pane, the footer and the search at 80×24 and 160×48 (#14),
and a compare's pair in the detail pane (#16).

Every app runs on the deterministic demo history with a clock the test owns: frozen for
snapshots, moved by hand where ages must tick.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
from conftest import run_cli
from rich.cells import cell_len, set_cell_size
from rich.console import Console
from textual.widgets import Input
from tui_helpers import (
    CLOSED_MEDIA,
    FIXED_NOW,
    fixed_clock,
    footer_keys,
    noted,
    notes,
    row_text,
    wait_until,
)

from seedance_tui import frames
from seedance_tui.config import Settings, load_settings
from seedance_tui.demo import seed_history
from seedance_tui.models import Provider, Task, TaskStatus, TaskUpdate, iso
from seedance_tui.simulator.media import media_bytes, shape_of
from seedance_tui.store import Store
from seedance_tui.tui.app import SeedanceApp
from seedance_tui.tui.detail import ComparePair, DetailPane, middle_cut
from seedance_tui.tui.footer import KeyFooter
from seedance_tui.tui.format import credits_cell
from seedance_tui.tui.frame_view import FrameView
from seedance_tui.tui.messages import TaskUpdated
from seedance_tui.tui.task_list import NOTHING_TO_SEARCH, TaskList

SIZES = [(80, 24), (160, 48)]
WIDE = "猫がピアノを弾く🎹🎬 at dusk, a long slow dolly-in across the whole stage"
BIDI = "evil \u202eredro\u202c order shot of a quiet harbour with boats and gulls"
PAIR_FREE_SAVED = "01990000000000000000odd1"  # the bidi prompt's render, saved
PAIR = ("0199000000000000000000pa", "0199000000000000000000pb")


class Clock:
    """A clock the test moves."""

    def __init__(self, now: float = FIXED_NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def seed(tmp_path: Path, *, extra: list[Task] = ()) -> Settings:
    db = tmp_path / "list.db"
    store = Store.open(db)
    seed_history(store, FIXED_NOW, media_base=CLOSED_MEDIA)
    for task in extra:
        store.insert_task(task)
    store.close()
    return load_settings(db=db, env={})


def demo_task(settings_free_tasks: list[Task], provider: Provider) -> Task:
    return next(t for t in settings_free_tasks if t.provider is provider
                and t.status is TaskStatus.COMPLETED)  # fmt: skip


def base_tasks(tmp_path: Path) -> list[Task]:
    """The demo's tasks (from a history of their own, to copy from)."""
    db = tmp_path / "base.db"
    store = Store.open(db)
    tasks = store.list(limit=None) or seed_history(store, FIXED_NOW, media_base=CLOSED_MEDIA)
    store.close()
    return tasks


def odd_prompts(tmp_path: Path) -> list[Task]:
    """Three renders of the last minute whose prompts are wide (CJK, emoji) or carry a
    right-to-left override."""
    base = demo_task(base_tasks(tmp_path), Provider.NANOPHOTO)
    return [
        dataclasses.replace(base, id=f"01990000000000000000odd{i}", task_id=f"task_odd{i}",
                            prompt=prompt, created_at=FIXED_NOW - 10 - i, local_path=None)
        for i, prompt in enumerate([WIDE, BIDI, "x" * 300])
    ]  # fmt: skip


def compare_pair(tmp_path: Path, *, pending: bool) -> list[Task]:
    """A compare two minutes old: nanophoto finished in 58 s; seedance15pro still
    rendering (`pending`) or finished in 85 s."""
    tasks = base_tasks(tmp_path)
    nano, seed_ = demo_task(tasks, Provider.NANOPHOTO), demo_task(tasks, Provider.SEEDANCE15PRO)
    prompt = "a koi pond at dawn, compared"
    first = dataclasses.replace(
        nano, id=PAIR[0], task_id="task_pair_a", prompt=prompt, group="g-koi",
        created_at=FIXED_NOW - 120, submitted_at=FIXED_NOW - 120,
        completed_at=FIXED_NOW - 62, generation_time=58.0, local_path=None,
    )  # fmt: skip
    second = dataclasses.replace(
        seed_, id=PAIR[1], task_id="task_pair_b", prompt=prompt, group="g-koi",
        created_at=FIXED_NOW - 119, submitted_at=FIXED_NOW - 119, local_path=None,
        **({"status": TaskStatus.PROCESSING, "video_urls": (), "completed_at": None,
            "generation_time": None, "credits_charged": None} if pending
           else {"completed_at": FIXED_NOW - 30, "generation_time": 85.0}),
    )  # fmt: skip
    return [first, second]


def with_posters(settings: Settings, tasks: list[Task], tmp_path: Path) -> None:
    """Posters in the library for the completed ones (frames that need no link)."""
    for task in tasks:
        if task.status is TaskStatus.COMPLETED:
            video = tmp_path / f"{task.id}.mp4"
            video.write_bytes(media_bytes(task.task_id, shape_of(task.params.get("aspect_ratio"))))
            frames.save_png(frames.thumbnail(frames.extract_poster(video)),
                            frames.poster_path(settings, task.id))  # fmt: skip


async def settle(pilot) -> None:
    app = pilot.app
    for _ in range(2):
        await app.workers.wait_for_complete()
        await pilot.pause()


def header(tasks: TaskList) -> str:
    return tasks.render_line(0).text


def column_at(tasks: TaskList, title: str) -> int:
    """The cell where a column's title ends (right-aligned columns end together)."""
    text = header(tasks)
    return cell_len(text[: text.index(title) + len(title)])


def cells_before(row: str, part: str) -> int:
    return cell_len(row[: row.index(part)])


# -- item 1: ages tick; an ETA is never under "age" ------------------------------------


async def test_ages_tick_and_only_changed_rows_repaint(tmp_path):
    clock = Clock()
    app = SeedanceApp(seed(tmp_path), clock=clock, poll=False)
    async with app.run_test(size=(80, 24)) as pilot:
        tasks = app.query_one(TaskList)
        fresh = tasks.task_at(0)
        # A render finished 23 s old: its age ticks on the clock, not on the engine.
        young = dataclasses.replace(fresh, created_at=FIXED_NOW - 23)
        app.dashboard.post_message(TaskUpdated(young, TaskStatus.COMPLETED))
        await wait_until(pilot, lambda: tasks.task_at(0).created_at == FIXED_NOW - 23)
        tasks.tick()  # what the rows in view show now
        assert row_text(tasks, 0).rstrip().endswith(" 23s")
        asked: list[tuple] = []
        refresh = tasks.refresh
        tasks.refresh = lambda *regions, **kw: asked.append(regions)  # type: ignore[method-assign]
        clock.now += 1
        tasks.tick()
        # Only the young row changed ("24s"); rows hours old still say the same.
        assert [len(regions) for regions in asked] == [1] and asked[0][0].y == 1
        tasks.refresh = refresh  # type: ignore[method-assign]
        assert row_text(tasks, 0).rstrip().endswith(" 24s")
        clock.now += 300
        tasks.tick()
        await pilot.pause()
        assert row_text(tasks, 0).rstrip().endswith("5m24s")
        assert not any(" 23s" in row_text(tasks, i) for i in range(tasks.total))


@pytest.mark.parametrize("size", SIZES)
async def test_an_eta_has_its_own_column_or_none(tmp_path, size):
    app = SeedanceApp(seed(tmp_path), clock=fixed_clock, poll=False)
    async with app.run_test(size=size) as pilot:
        tasks = app.query_one(TaskList)
        assert "eta" not in header(tasks).split()  # nothing renders: no empty column
        rendering = dataclasses.replace(tasks.task_at(1), status=TaskStatus.PROCESSING,
                                        created_at=FIXED_NOW - 40)  # fmt: skip

        def eta(task_id: str) -> float:
            return FIXED_NOW + 65

        app.dashboard.bridge.eta = tasks.eta = eta  # type: ignore[method-assign]
        app.dashboard.post_message(TaskUpdated(rendering, TaskStatus.COMPLETED))
        await wait_until(pilot, lambda: tasks.task_at(1).status is TaskStatus.PROCESSING)
        from raw_sql import raw_sql

        raw_sql(app.store.path, "UPDATE tasks SET status='processing', created_at=? WHERE id=?",
                (iso(FIXED_NOW - 40), rendering.id))  # fmt: skip
        await pilot.press("down")
        await pilot.pause()
        row = row_text(tasks, 1)
        titles = header(tasks).split()
        age_end = column_at(tasks, "age")
        assert row[:age_end].rstrip().endswith("40s")  # under "age": its age
        if size[0] >= 160:
            assert titles[-1] == "eta" and row.rstrip().endswith("≈1m05s")
        else:
            assert "eta" not in titles and "≈" not in row  # no room: the detail pane says
            head = app.dashboard.detail.query_one("#detail-head")
            assert "ETA in 1m05s" in "\n".join(rendered(head.content))


# -- item 2: marks in a column, cuts by display width, bidi inert ----------------------


@pytest.mark.parametrize("size", SIZES)
async def test_rows_line_up_by_display_width(tmp_path, size):
    app = SeedanceApp(seed(tmp_path, extra=odd_prompts(tmp_path)), clock=fixed_clock, poll=False)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        tasks = app.query_one(TaskList)
        in_view = range(min(tasks.total, tasks.size.height - 1))
        rows = [row_text(tasks, i) for i in in_view]
        width = tasks.scrollable_content_region.width
        assert {cell_len(row) for row in rows} == {width}
        # The credits cell ends at the same cell on every row, whatever the prompt.
        cr_end = column_at(tasks, "cr")
        for index, row in zip(in_view, rows, strict=True):
            assert set_cell_size(row, cr_end).endswith(credits_cell(tasks.task_at(index)))
        by_prompt = {tasks.task_at(i).prompt: row for i, row in zip(in_view, rows, strict=True)}
        for prompt in (WIDE, BIDI, "x" * 300):
            row = by_prompt[prompt]
            assert "…" in row  # cut, and says so
            assert cells_before(row, "…") < cr_end - len("cr") - 1  # the cut is in its column
        assert "\u202e" not in "".join(rows) and "\\u202e" in by_prompt[BIDI]
        # The library mark has its own column: prompts start at one cell, marked or not.
        prompt_start = column_at(tasks, "prompt") - len("prompt")
        for index, row in zip(in_view, rows, strict=True):
            task = tasks.task_at(index)
            if task.prompt[:4].isascii():
                assert cells_before(row, task.prompt[:4]) == prompt_start, row
            mark = set_cell_size(row, prompt_start - 1)[-1:]
            assert mark in {" ", "⤓", "!", "⚠"}
        assert any(set_cell_size(row, prompt_start - 1).endswith("⚠") for row in rows)


@pytest.mark.parametrize("size", SIZES)
async def test_a_row_paints_what_a_rich_text_of_its_cells_renders(tmp_path, size):
    """Rows are built from kept cells straight into segments: the same segments, text
    and styles, as the Text of those cells that rows were once rendered from (marks,
    a mismatch's credits, wide and bidi prompts, the cursor's row)."""
    from rich.segment import Segment
    from rich.text import Text

    app = SeedanceApp(seed(tmp_path, extra=odd_prompts(tmp_path)), clock=fixed_clock, poll=False)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        tasks = app.query_one(TaskList)
        width = tasks.scrollable_content_region.width
        columns = tasks.columns(width - 1)
        for y in range(1, min(tasks.total, tasks.size.height - 1) + 1):
            index = round(tasks.scroll_y) + y - 1
            task = tasks.task_at(index)
            line = Text(no_wrap=True, overflow="ellipsis", end="")
            for i, column in enumerate(columns):
                cell, style = tasks._cell(task, column, FIXED_NOW)
                if i:
                    line.append(" ")
                pad = " " * max(0, column.width - cell_len(cell))
                parts = [(pad, None), (cell, style)] if column.justify == "right" else [
                    (cell, style), (pad, None)]  # fmt: skip
                for text, text_style in parts:
                    line.append(text, text_style)
            style = tasks.rich_style
            if index == tasks.cursor:
                style += tasks.get_component_rich_style("task-list--cursor")
            want = tasks._strip(line, style, width)
            got = tasks.render_line(y)
            assert list(got) == list(want), (index, task.prompt)
            assert list(Segment.simplify(got)) == list(Segment.simplify(want))
        # A tick paints the same row from the kept cells.
        assert list(tasks.render_line(1)) == list(tasks.render_line(1))


async def test_a_pending_tasks_ticking_head_repaints_without_a_layout(tmp_path):
    """Once a second the selected pending task's head (spinner, timing) is repainted;
    its height stays, so the screen is not laid out again, and the body is left alone."""
    from raw_sql import raw_sql

    settings = seed(tmp_path)
    store = Store.open(settings.db_path)
    newest = store.list(limit=1)[0]
    store.close()
    raw_sql(settings.db_path, "UPDATE tasks SET status='processing', created_at=? WHERE id=?",
            (iso(FIXED_NOW - 40), newest.id))  # fmt: skip
    clock = Clock()
    app = SeedanceApp(settings, clock=clock, poll=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        screen = app.dashboard
        screen.ticker.pause()  # the test ticks
        head = app.query_one("#detail-head")
        body = app.query_one("#detail-body")
        assert "running 40s" in "\n".join(rendered(head.content))
        updates: list[tuple[str, bool]] = []
        for name, widget in (("head", head), ("body", body)):
            update = widget.update

            def recorded(content, *, layout=True, _name=name, _update=update):
                updates.append((_name, layout))
                return _update(content, layout=layout)

            widget.update = recorded  # type: ignore[method-assign]
        clock.now += 1
        screen._tick()
        await pilot.pause()
        assert updates == [("head", False)]
        assert "running 41s" in "\n".join(rendered(head.content))


async def test_the_cursor_row_follows_the_lists_focus(tmp_path):
    """Row styles are kept between paints: a change of focus (the :focus rule of the
    cursor's row) paints the cursor row in the new style."""
    app = SeedanceApp(seed(tmp_path), clock=fixed_clock, poll=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        tasks = app.query_one(TaskList)

        def cursor_style():
            line = tasks.render_line(tasks.cursor - round(tasks.scroll_y) + 1)
            return list(line)[1].style

        def fresh():
            return tasks.rich_style + tasks.get_component_rich_style("task-list--cursor")

        tasks.focus()
        await pilot.pause()
        focused = cursor_style()
        assert focused == fresh()
        app.query_one("#prompt").focus()
        await pilot.pause()
        assert not tasks.has_focus
        assert cursor_style() == fresh() != focused


def test_cli_list_fits_the_terminal_and_shows_marks(tmp_path, monkeypatch):
    settings = seed(tmp_path, extra=odd_prompts(tmp_path))
    store = Store.open(settings.db_path)
    saved = tmp_path / "saved.mp4"
    saved.write_bytes(b"\0" * 16)
    store.set_local_path(PAIR_FREE_SAVED, str(saved), FIXED_NOW)
    store.close()
    monkeypatch.setenv("COLUMNS", "80")
    code, stdout, stderr = run_cli("--db", str(settings.db_path), "list", "--limit", "48")
    assert code == 0, stderr
    lines = [line for line in stdout.splitlines() if line]
    assert len(lines) > 40 and all(cell_len(line) <= 80 for line in lines)
    assert any(WIDE[:3] in line and line.endswith("…") for line in lines)
    assert any("\\u202e" in line for line in lines) and "\u202e" not in stdout
    assert any(line.startswith("0000odd1") and " ⤓ " in line for line in lines)  # saved
    assert "⤓ saved in the library" in stderr  # the legend


# -- item 3 and 7: the detail pane at 80×24 -------------------------------------------


def rendered(renderable, width: int = 300) -> list[str]:
    console = Console(width=width, record=True, color_system=None, file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(renderable)
    return console.export_text().splitlines()


def static_text(widget) -> str:
    content = widget.content
    return content.plain if hasattr(content, "plain") else str(content)


def pane_lines(app: SeedanceApp) -> list[str]:
    """The detail pane's visible lines of text, as wide as it paints them."""
    pane = app.query_one(DetailPane)
    lines = []
    for part in ("#detail-head", "#detail-body"):
        widget = app.query_one(part)
        lines += rendered(widget.content, widget.content_region.width)
    return lines[: pane.scrollable_content_region.height]


async def test_the_detail_pane_reads_at_80x24(tmp_path):
    app = SeedanceApp(seed(tmp_path), clock=fixed_clock, poll=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        task = app.query_one(TaskList).selected
        lines = pane_lines(app)
        labels = {
            "status",
            "error",
            "timing",
            "render",
            "credits",
            "compare",
            "prompt",
            "params",
            "image",
            "video",
            "file",
            "library",
            "task id",
            "created",
            "",
        }
        for line in lines:
            label = line[:8].strip()
            assert label in labels, f"a label cut or wrapped: {line!r}"
        text = "\n".join(lines)
        assert "took 13.0s" in text and "charged 6 (est. 6)" in text
        video = next(line for line in lines if line.startswith("video"))
        url = task.video_urls[0]
        assert "…" in video and video.rstrip().endswith(url.rsplit("/", 1)[-1])
        assert not app.query_one("#detail-frame", FrameView).display  # no room beside
        await pilot.press("c")
        assert app.clipboard == url  # the whole link, a key away


def test_middle_cut_keeps_the_host_and_the_file_name():
    url = "https://cdn.example.com/media/2027/01/15/task_76ba0e2ea51b.mp4"
    assert middle_cut(url, 200) == url
    cut = middle_cut(url, 36)
    assert (
        cell_len(cut) <= 36
        and cut.startswith("cdn.example")
        and cut.endswith("/task_76ba0e2ea51b.mp4")
    )
    assert cell_len(middle_cut("ab\u202e" + "c" * 80, 20)) <= 20


# -- item 4: the footer at 80 columns, the search line ---------------------------------


async def test_the_footer_fits_80_columns_with_every_key_on(tmp_path):
    app = SeedanceApp(seed(tmp_path), clock=fixed_clock, poll=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.set_focus(app.query_one("#submit"))  # esc applies: back to the list
        keys = await footer_keys(pilot)
        assert {"help", "quit", "focus_list"} <= set(keys)
        footer = app.query_one(KeyFooter)
        for key in footer.query("FooterKey"):
            assert key.region.right <= 80, key.action
        await pilot.press("escape")
        assert app.focused is app.query_one(TaskList)
        keys = await footer_keys(pilot)
        assert "focus_list" not in keys and {"help", "quit"} <= set(keys)


async def test_the_search_line_keeps_its_sort_and_esc_clears_the_search(tmp_path):
    app = SeedanceApp(seed(tmp_path), clock=fixed_clock, poll=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        tasks = app.query_one(TaskList)
        label = app.dashboard.query_label
        assert static_text(label).endswith("· newest")
        assert label.region.right <= app.query_one("#tasks-box").region.right
        assert label.region.width >= cell_len(static_text(label))  # not cut
        await pilot.press("slash", *"fox")
        await wait_until(pilot, lambda: tasks.total < 48)
        await pilot.press("escape")
        assert app.query_one("#search", Input).value == ""
        assert tasks.total == 48 and app.focused is tasks


# -- item 5: o opens (or copies) the file; p tells what the check found --------------


async def test_open_on_a_saved_render_copies_its_path_with_no_opener(tmp_path, monkeypatch):
    monkeypatch.setenv("SSH_CONNECTION", "10.0.0.1 5000 10.0.0.2 22")
    settings = seed(tmp_path)
    store = Store.open(settings.db_path)
    task = store.list(limit=1)[0]
    saved = tmp_path / "saved.mp4"
    saved.write_bytes(b"\0" * 16)
    store.set_local_path(task.id, str(saved), FIXED_NOW)
    store.close()
    app = noted(SeedanceApp(settings, clock=fixed_clock, poll=False))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("o")
        assert app.clipboard == str(saved.resolve())
        assert any("copied the file's path" in note.message for note in notes(app))


async def test_poll_now_tells_what_the_check_found(tmp_path):
    settings = seed(tmp_path)
    app = noted(SeedanceApp(settings, clock=fixed_clock, poll=False))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        tasks = app.query_one(TaskList)
        await wait_until(pilot, lambda: app.dashboard.engine is not None)
        engine = app.dashboard.engine
        store = app.store
        task = tasks.selected
        from raw_sql import raw_sql

        raw_sql(store.path, "UPDATE tasks SET status='processing', video_urls='[]' WHERE id=?",
                (task.id,))  # fmt: skip
        app.dashboard.post_message(TaskUpdated(store.get(task.id), TaskStatus.COMPLETED))
        await wait_until(pilot, lambda: tasks.selected.status is TaskStatus.PROCESSING)
        # The scheduler allows a check now (the loop, not run here, would send it).
        engine.poll_now = lambda task_id: True  # type: ignore[method-assign]
        await pilot.press("p")
        assert any("Checking" in note.message for note in notes(app))
        # The server's answer, applied as the poller applies it.
        store.apply_update(task.id, TaskUpdate(task.task_id, TaskStatus.PROCESSING,
                                               summary="status processing"), FIXED_NOW)  # fmt: skip
        await wait_until(pilot, lambda: any(note.title == f"Checked {task.short_id}"
                                            for note in notes(app)))  # fmt: skip
        answer = next(n for n in notes(app) if n.title == f"Checked {task.short_id}")
        assert answer.message.startswith("still processing")


# -- item 6: a search with nothing to search for -------------------------------------


@pytest.mark.parametrize("typed", ['"', "*", "(", "🎬"])
async def test_a_search_with_no_word_says_so(tmp_path, typed):
    app = SeedanceApp(seed(tmp_path), clock=fixed_clock, poll=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        tasks = app.query_one(TaskList)
        await pilot.press("slash")
        app.query_one("#search", Input).insert_text_at_cursor(typed)
        await wait_until(pilot, lambda: tasks.total == 0)
        assert row_text(tasks, 0).strip() == NOTHING_TO_SEARCH[: len(row_text(tasks, 0).strip())]
        assert static_text(app.dashboard.query_label) == "nothing to search for"
    code, _stdout, stderr = run_cli("--db", str(tmp_path / "list.db"), "list", "--search", typed)
    assert code == 2 and "nothing to search for" in stderr


# -- item 9: a compare's pair side by side -------------------------------------------


@pytest.mark.parametrize("size", SIZES)
async def test_a_compare_shows_the_pair_and_which_side_still_renders(tmp_path, size):
    pair = compare_pair(tmp_path, pending=True)
    settings = seed(tmp_path, extra=pair)
    with_posters(settings, pair, tmp_path)
    app = SeedanceApp(settings, clock=fixed_clock, poll=False)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        tasks = app.query_one(TaskList)
        tasks.move_cursor(next(i for i in range(5) if tasks.task_at(i).id == PAIR[0]))
        await settle(pilot)
        view = app.query_one(ComparePair)
        assert view.display
        left, right = (caption.plain for caption in view.captions)
        assert "nanophoto" in left and "done in 58.0s" in left and "credits" in left
        assert "seedance15pro" in right and "rendering 1m59s" in right
        assert left.startswith("▶")  # the selected task's side
        frames_ = list(view.query(FrameView))
        assert frames_[0].shown == PAIR[0]
        assert frames_[1].shown is None and frames_[1].note == "  no frame yet"
        # The other half finishes: its side says so without moving the cursor.
        store = app.store
        store.apply_update(PAIR[1], TaskUpdate("task_pair_b", TaskStatus.COMPLETED,
                                               video_urls=("https://cdn.example.com/b.mp4",),
                                               generation_time=85.0), FIXED_NOW)  # fmt: skip
        app.dashboard.post_message(TaskUpdated(store.get(PAIR[1]), TaskStatus.PROCESSING))
        await wait_until(pilot, lambda: "done in 85.0s" in view.captions[1].plain)
        assert "↑" in view.captions[0].plain  # nanophoto was faster


# -- snapshots -------------------------------------------------------------------------


def snapshot_settings(tmp_path: Path, *, pending: bool) -> Settings:
    pair = compare_pair(tmp_path, pending=pending)
    settings = seed(tmp_path, extra=[*pair, *odd_prompts(tmp_path)])
    with_posters(settings, pair, tmp_path)
    return settings


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "160x48"])
def test_snapshot_dashboard(snap_compare, tmp_path, size):
    """The list with its marks column, a render under way (spinner, age, ETA where it
    fits) and wide and bidi prompts, on the frozen clock."""
    settings = snapshot_settings(tmp_path, pending=True)

    async def ready(pilot) -> None:
        def eta(task_id: str) -> float:
            return FIXED_NOW + 65  # the engine's guess, fixed

        pilot.app.dashboard.bridge.eta = pilot.app.query_one(TaskList).eta = eta
        await settle(pilot)
        pilot.app.query_one(TaskList).refresh()
        await pilot.pause()

    app = SeedanceApp(settings, clock=fixed_clock, poll=False)
    assert snap_compare(app, terminal_size=size, run_before=ready)


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "160x48"])
def test_snapshot_compare_detail(snap_compare, tmp_path, size):
    """A compare's detail pane: nanophoto done with its frame, seedance15pro rendering."""
    settings = snapshot_settings(tmp_path, pending=True)

    async def on_the_pair(pilot) -> None:
        await settle(pilot)
        tasks = pilot.app.query_one(TaskList)
        tasks.move_cursor(next(i for i in range(8) if tasks.task_at(i).id == PAIR[0]))
        await settle(pilot)

    app = SeedanceApp(settings, clock=fixed_clock, poll=False)
    assert snap_compare(app, terminal_size=size, run_before=on_the_pair)
