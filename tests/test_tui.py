"""The dashboard, driven with Pilot against the simulator, and its snapshots.

Snapshot tests are plain `def` (pytest-textual-snapshot runs its own loop) and use a
fixed clock, the deterministic demo history and no polling.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from pathlib import Path

import pytest
from raw_sql import raw_sql
from textual.app import App, ComposeResult
from textual.geometry import Region
from textual.widgets import Input, TextArea
from tui_helpers import (
    FIXED_NOW,
    KEYED_ENV,
    fixed_clock,
    noted,
    notes,
    row_text,
    seeded_settings_in,
    type_at_once,
    wait_until,
)

from seedance_tui.config import Settings, load_settings
from seedance_tui.models import Provider, TaskStatus
from seedance_tui.store import Store
from seedance_tui.tui.app import SeedanceApp
from seedance_tui.tui.credits import CreditsPanel
from seedance_tui.tui.form import Choice, FieldError, JobForm
from seedance_tui.tui.messages import TaskUpdated
from seedance_tui.tui.screens import ConfirmSubmit, HelpScreen
from seedance_tui.tui.task_list import MAX_PAGES, PAGE_SIZE, TICK, TaskList

HOSTILE = "[bold red]x[/] and [@click=app.quit]q[/]"


def load_benchmark():
    """benchmarks/history.py, whose synthetic histories the paging test reuses."""
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "history.py"
    spec = importlib.util.spec_from_file_location("history_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def seeded_settings(tmp_path: Path) -> Settings:
    """Settings with no keys and a history of the 48 deterministic demo tasks."""
    return seeded_settings_in(tmp_path, {})


async def type_text(pilot, text: str) -> None:
    area = pilot.app.focused
    assert isinstance(area, TextArea | Input)
    area.insert(text) if isinstance(area, TextArea) else area.insert_text_at_cursor(text)
    await pilot.pause()


# -- a whole submission with the keyboard ----------------------------------------------


async def test_a_job_submitted_with_keys_goes_processing_then_completed(live_settings, sim):
    statuses: list[tuple[str, str]] = []

    def hook(message) -> None:
        if isinstance(message, TaskUpdated):
            statuses.append((message.task.id, message.task.status.value))

    app = noted(SeedanceApp(live_settings))
    async with app.run_test(size=(120, 40), message_hook=hook) as pilot:
        await pilot.press("n")
        assert isinstance(app.focused, TextArea)
        await pilot.press(*"a koi pond at dawn")
        await pilot.press("ctrl+s")
        assert isinstance(app.screen, ConfirmSubmit)
        await pilot.press("enter")
        tasks = app.query_one(TaskList)
        await wait_until(pilot, lambda: tasks.total == 1)
        task_id = tasks.task_at(0).id
        await wait_until(pilot, lambda: tasks.task_at(0).status is TaskStatus.COMPLETED)
        assert "✓   a koi pond at dawn" in row_text(tasks, 0)  # glyph, no library mark, prompt
        seen = [status for id, status in statuses if id == task_id]
        assert "processing" in seen and seen[-1] == "completed"
        assert seen.index("processing") < seen.index("completed")
        assert tasks.selected.id == task_id
        assert "Video ready" in [note.title for note in notes(app)]
        stored = Store.open(live_settings.db_path).get(task_id)
        assert stored.prompt == "a koi pond at dawn" and stored.video_urls


async def test_a_second_submit_while_one_is_in_flight_is_refused(live_settings, sim):
    from seedance_tui.engine import Engine

    gate = asyncio.Event()
    calls: list[str] = []

    class HeldEngine(Engine):
        """Holds each submission until the test opens the gate: one stays in flight."""

        async def submit(self, job):
            calls.append(job.spec.prompt)  # the form sends a PreparedJob (jobs.prepare)
            await gate.wait()
            return await super().submit(job)

    store = Store.open(live_settings.db_path)
    app = SeedanceApp(live_settings, store=store, engine=HeldEngine(live_settings, store))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("n", *"one job only", "ctrl+s", "enter")
        form = app.query_one(JobForm)
        assert form.submitting and app.query_one("#submit").disabled
        await pilot.press("ctrl+s", "enter", "ctrl+s", "y")
        assert not isinstance(app.screen, ConfirmSubmit)
        await pilot.click("#submit")
        assert not isinstance(app.screen, ConfirmSubmit)
        gate.set()
        await wait_until(pilot, lambda: not form.submitting)
        assert calls == ["one job only"]
        assert store.count() == 1


async def test_an_answer_arriving_while_typing_the_next_prompt_keeps_the_focus(live_settings, sim):
    """Typing the next job while the last is in flight: the answer must not move the focus
    to the list, whose letter keys are shortcuts (r re-runs, q quits)."""
    from seedance_tui.engine import Engine

    gate = asyncio.Event()

    class HeldEngine(Engine):
        async def submit(self, job):
            await gate.wait()
            return await super().submit(job)

    store = Store.open(live_settings.db_path)
    app = SeedanceApp(live_settings, store=store, engine=HeldEngine(live_settings, store))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("n", *"first job", "ctrl+s", "enter")
        form = app.query_one(JobForm)
        assert form.submitting
        await pilot.press("n")
        prompt = app.focused
        assert isinstance(prompt, TextArea)
        await pilot.press(*" then")
        gate.set()
        await wait_until(pilot, lambda: not form.submitting)
        await pilot.press(*" the reef")
        assert app.focused is prompt
        assert prompt.text.endswith("then the reef")
        assert app.is_running and store.count() == 1  # nothing re-run, nothing quit


# -- the form --------------------------------------------------------------------------


async def test_invalid_fields_are_marked_inline_and_submitting_is_refused(seeded_settings):
    app = SeedanceApp(seeded_settings, clock=fixed_clock, poll=False)
    async with app.run_test(size=(120, 40)) as pilot:
        form = app.query_one(JobForm)
        # An empty prompt: refused with the reason under the editor, no dialog.
        await pilot.press("ctrl+s")
        assert not isinstance(app.screen, ConfirmSubmit)
        assert "is empty" in str(app.query_one("#err-prompt", FieldError).render())
        # Image-to-video without images: the image field says why.
        await pilot.press("n")
        await type_text(pilot, "a fox in the snow")
        app.query_one("#mode", Choice).value = "image"
        await pilot.pause()
        error = app.query_one("#err-image_urls", FieldError)
        assert error.display and "needs at least one public image URL" in str(error.render())
        assert app.query_one("#image_urls").has_class("-invalid")
        await pilot.press("ctrl+s")
        assert not isinstance(app.screen, ConfirmSubmit)
        assert app.focused is app.query_one("#image_urls")
        # A data: URI is named as the problem; a public URL clears it.
        await type_text(pilot, "data:image/png;base64,AAAA")
        assert "data:/base64" in str(error.render())
        app.query_one("#image_urls", Input).value = "https://cdn.example.com/a.png"
        await pilot.pause()
        assert not error.display and form.error is None
        # Over 1000 characters as the servers count them (an emoji counts 2).
        app.query_one("#prompt", TextArea).text = "🎬" * 501
        await pilot.pause()
        assert "1002 characters" in str(app.query_one("#err-prompt", FieldError).render())
        assert "1002/1000" in str(app.query_one("#prompt-meta").render())


async def test_keys_typed_just_before_ctrl_s_are_in_the_job(seeded_settings):
    """A fast typist (or a paste, or tmux send-keys) queues keys faster than they are
    handled: ctrl+s must not overtake the characters typed before it."""
    keyed = load_settings(db=seeded_settings.db_path, env=KEYED_ENV)
    app = SeedanceApp(keyed, clock=fixed_clock, poll=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("n")
        text = "lanterns over a harbor at night"
        type_at_once(app, *text, "ctrl+s")  # all queued at once, no waiting between them
        await wait_until(
            pilot,
            lambda: isinstance(app.screen, ConfirmSubmit) and app.screen.focused is not None,
            "the confirm dialog is shown",
        )
        assert app.screen.spec.prompt == text


async def test_the_estimate_follows_the_fields_and_the_provider(seeded_settings):
    app = SeedanceApp(seeded_settings, clock=fixed_clock, poll=False)
    async with app.run_test(size=(120, 40)) as pilot:
        meta = app.query_one("#prompt-meta")
        assert "≈ 4 credits" in str(meta.render())  # 720p 4s
        app.query_one("#resolution", Choice).value = "1080p"
        app.query_one("#duration", Choice).value = "12"
        await pilot.pause()
        assert "≈ 22 credits" in str(meta.render())
        await pilot.click("#audio")
        assert "≈ 44 credits" in str(meta.render())
        app.query_one("#provider", Choice).focus()
        await pilot.press("right")
        form = app.query_one(JobForm)
        assert form.provider is Provider.SEEDANCE15PRO
        assert not app.query_one("#resolution").display
        assert not app.query_one("#fixed_lens").display
        assert [v for v, _ in app.query_one("#aspect_ratio", Choice).options] == [
            "16:9", "9:16", "1:1",
        ]  # fmt: skip
        assert "≈ 65 credits" in str(meta.render())


async def test_rerun_fills_the_form_with_the_tasks_job(seeded_settings):
    app = SeedanceApp(seeded_settings, clock=fixed_clock, poll=False)
    async with app.run_test(size=(120, 40)) as pilot:
        tasks = app.query_one(TaskList)
        # The first seedance15pro task with images, to see every field come back.
        index = next(
            i for i in range(tasks.total)
            if tasks.task_at(i).provider is Provider.SEEDANCE15PRO
            and tasks.task_at(i).params.get("image_urls")
        )  # fmt: skip
        tasks.move_cursor(index)
        source = tasks.selected
        await pilot.press("r")
        form = app.query_one(JobForm)
        assert isinstance(app.focused, TextArea)
        assert form.spec() == source.spec
        assert form.revalidate().spec == source.spec  # checked and priced: a PreparedJob


# -- the list --------------------------------------------------------------------------


async def test_filter_by_status_and_provider_and_search(seeded_settings):
    app = SeedanceApp(seeded_settings, clock=fixed_clock, poll=False)
    async with app.run_test(size=(120, 40)) as pilot:
        tasks = app.query_one(TaskList)
        store = app.store
        assert tasks.total == 48
        await pilot.press("f", "f", "f")  # all → pending → completed → failed
        failed = [tasks.task_at(i) for i in range(tasks.total)]
        assert failed and all(t.status.value in ("failed", "rejected", "orphaned") for t in failed)
        assert tasks.total == sum(
            store.count(type(tasks.filter)(status=(s,))) for s in ("failed", "rejected", "orphaned")
        )
        await pilot.press("v")  # nanophoto only
        assert all(tasks.task_at(i).provider is Provider.NANOPHOTO for i in range(tasks.total))
        await pilot.press("f")  # back to all statuses
        await pilot.press("slash")
        assert app.focused is app.query_one("#search")
        await pilot.press(*"golden retr")
        matches = [tasks.task_at(i) for i in range(tasks.total)]
        assert matches and all("golden retriever" in t.prompt.lower() for t in matches)
        assert all(t.provider is Provider.NANOPHOTO for t in matches)
        await pilot.press("enter")
        assert app.focused is tasks
        await pilot.press("s")  # oldest first
        assert tasks.sort == "oldest"
        times = [tasks.task_at(i).created_at for i in range(tasks.total)]
        assert times == sorted(times)


async def test_the_list_repaints_only_its_pending_rows_once_a_tick(seeded_settings):
    """At rest the list's once-a-second tick repaints the rows in view whose spinner,
    age or ETA changed — here the two pending ones — and nothing else, in one refresh."""
    now = [FIXED_NOW]
    app = SeedanceApp(seeded_settings, clock=lambda: now[0], poll=False)
    async with app.run_test(size=(120, 40)) as pilot:
        tasks = app.query_one(TaskList)
        for index in (1, 3):
            pending = dataclasses.replace(tasks.task_at(index), status=TaskStatus.PROCESSING)
            app.dashboard.post_message(TaskUpdated(pending, TaskStatus.PROCESSING))
        await wait_until(pilot, lambda: tasks.task_at(1).status is TaskStatus.PROCESSING)
        await wait_until(pilot, lambda: tasks.task_at(3).status is TaskStatus.PROCESSING)
        tasks.tick()  # what the rows show now
        asked: list[tuple] = []
        tasks.refresh = lambda *regions, **options: asked.append(regions)  # type: ignore[method-assign]
        tasks.tick()
        assert asked == []  # the same second: nothing changed
        now[0] += 1  # the spinners turn; the finished rows' ages (hours) stay
        tasks.tick()
        width = tasks.size.width
        assert asked == [(Region(0, 2, width, 1), Region(0, 4, width, 1))]  # line 0: header


async def test_answers_streaming_in_are_painted_once_a_paint_gap_not_once_each(seeded_settings):
    """The engine's changes reach the screen in one paint every PAINT_GAP at most: six
    answers arriving 50 ms apart repaint their rows in one or two paints, not six; the
    selected task's at once, the other rows at the next tick, within TICK."""
    import time

    from seedance_tui.tui.dashboard import PAINT_GAP

    app = SeedanceApp(seeded_settings, clock=fixed_clock, poll=False)
    async with app.run_test(size=(120, 40)) as pilot:
        tasks = app.query_one(TaskList)
        screen = app.dashboard
        paints: list[int] = []  # changed rows of each paint that had any
        paint_changed = tasks.paint_changed

        def counted() -> None:
            if tasks._changed:
                paints.append(len(tasks._changed))
            paint_changed()

        tasks.paint_changed = counted  # type: ignore[method-assign]
        originals = [tasks.task_at(i) for i in range(6)]
        started = time.monotonic()
        for task in originals:
            status = (
                TaskStatus.FAILED if task.status is TaskStatus.COMPLETED else TaskStatus.COMPLETED
            )
            screen.post_message(TaskUpdated(dataclasses.replace(task, status=status), task.status))
            await asyncio.sleep(0.05)  # the answers' spacing (the arrivals), not a wait for a state
        await wait_until(
            pilot, lambda: not tasks._changed and sum(paints) >= 6, "every row painted"
        )
        elapsed = time.monotonic() - started
        assert sum(paints) == 6
        # A paint at the first answer, then one per PAINT_GAP, and the ticks' (one a
        # TICK) that came between: two here, where painting each answer made six.
        assert len(paints) <= 2 + elapsed / PAINT_GAP + elapsed / TICK, (paints, elapsed)
        for index, task in enumerate(originals):
            assert task.status.value not in row_text(tasks, index)


async def test_a_row_out_of_the_users_eye_waits_for_the_ticks_frame(seeded_settings):
    """An answer about a task that is not selected (no toast, not new) draws no frame of
    its own: its row is painted by the next tick, with the clocks. The selected task's
    answer is painted at once."""
    app = SeedanceApp(seeded_settings, clock=fixed_clock, poll=False)
    async with app.run_test(size=(120, 40)) as pilot:
        tasks = app.query_one(TaskList)
        screen = app.dashboard
        screen.ticker.pause()  # the test ticks
        await pilot.pause()
        from seedance_tui.tui.format import status_glyph

        other = tasks.task_at(3)
        done = TaskStatus.FAILED if other.status is TaskStatus.COMPLETED else TaskStatus.COMPLETED
        screen.post_message(TaskUpdated(dataclasses.replace(other, status=done), other.status))
        await wait_until(pilot, lambda: tasks.task_at(3).status is done, "the list holds it")
        for _ in range(3):
            await pilot.pause()
        assert 3 in tasks._changed  # held, not painted
        screen._tick()
        assert not tasks._changed and status_glyph(done, 0) in row_text(tasks, 3)
        selected = tasks.task_at(0)
        done = (
            TaskStatus.FAILED if selected.status is TaskStatus.COMPLETED else TaskStatus.COMPLETED
        )
        screen.post_message(
            TaskUpdated(dataclasses.replace(selected, status=done), selected.status)
        )
        await wait_until(pilot, lambda: tasks.task_at(0).status is done and not tasks._changed,
                         "the selected row painted without a tick")  # fmt: skip
        assert status_glyph(done, 0) in row_text(tasks, 0)


async def test_tasks_finishing_together_are_announced_in_one_toast(seeded_settings, monkeypatch):
    """Answers arriving three a second make one toast per ANNOUNCE_EVERY, naming every
    task: the first at once, the others together when that time has passed."""
    monkeypatch.setattr("seedance_tui.tui.dashboard.ANNOUNCE_EVERY", 2.0)  # 10 s in use
    app = SeedanceApp(seeded_settings, clock=fixed_clock, poll=False)
    async with app.run_test(size=(120, 40)) as pilot:
        shown: list[tuple[str, str]] = []  # (title, message) of every toast, in order
        notify = app.notify

        def noted(message, *, title="", **options):
            shown.append((title, message))
            return notify(message, title=title, **options)

        app.notify = noted  # type: ignore[method-assign]
        tasks = app.query_one(TaskList)
        done = [
            t for t in map(tasks.task_at, range(tasks.total)) if t.status is TaskStatus.COMPLETED
        ]
        finished = done[:4]
        for task in finished:
            app.dashboard.post_message(TaskUpdated(task, TaskStatus.PROCESSING))

        def toasts() -> list[tuple[str, str]]:
            return [(title, message) for title, message in shown if "ready" in title]

        def named() -> set[str]:
            return {t.short_id for t in finished if any(t.short_id in m for _, m in toasts())}

        await wait_until(pilot, lambda: named(), "the first finish announced")
        assert len(toasts()) == 1  # the first at once; the others wait for ANNOUNCE_EVERY
        await wait_until(pilot, lambda: len(named()) == len(finished), "every finish announced")
        assert len(toasts()) == 2  # the others together, in one
        assert toasts()[1][0] == "3 videos ready"


async def test_a_row_updates_in_place_and_the_cursor_and_scroll_stay(seeded_settings):
    app = SeedanceApp(seeded_settings, clock=fixed_clock, poll=False)
    async with app.run_test(size=(100, 30)) as pilot:
        tasks = app.query_one(TaskList)
        await pilot.press("pagedown", "down", "down")
        cursor, scroll = tasks.cursor, tasks.scroll_y
        assert scroll > 0
        target = tasks.task_at(cursor + 1)
        loads = tasks.page_loads
        changed = app.store.get(target.id)
        changed.status = TaskStatus.FAILED
        changed.error = HOSTILE
        app.dashboard.post_message(TaskUpdated(changed, TaskStatus.COMPLETED))
        await pilot.pause()
        assert (tasks.cursor, tasks.scroll_y) == (cursor, scroll)
        assert tasks.task_at(cursor + 1).status is TaskStatus.FAILED
        assert tasks.page_loads == loads  # repainted from the cache, not re-queried
        assert row_text(tasks, cursor + 1).startswith(f" {changed.short_id} ")
        assert " ✗ " in row_text(tasks, cursor + 1)


async def test_a_large_history_is_paged_not_loaded(tmp_path):
    synthetic_tasks = load_benchmark().synthetic_tasks

    db = tmp_path / "big.db"
    store = Store.open(db)
    store.bulk_import(synthetic_tasks(20_000, now=FIXED_NOW))
    store.close()
    app = SeedanceApp(load_settings(db=db, env={}), clock=fixed_clock, poll=False)
    async with app.run_test(size=(120, 40)) as pilot:
        tasks = app.query_one(TaskList)
        assert tasks.total == 20_000
        assert tasks.held_rows() <= PAGE_SIZE
        await pilot.press("end")
        last = tasks.selected
        assert last.id == app.store.list(sort="oldest", limit=1)[0].id
        for _ in range(30):
            await pilot.press("pageup")
        assert tasks.held_rows() <= MAX_PAGES * PAGE_SIZE
        # Walking the whole list in order gives every row once, in order.
        await pilot.press("home")
        seen = [tasks.task_at(i).id for i in range(0, 20_000, 97)]
        expected = [t.id for t in app.store.list(limit=None)][::97]
        assert seen == expected
        assert tasks.held_rows() <= MAX_PAGES * PAGE_SIZE


# -- outside text ----------------------------------------------------------------------


async def test_markup_in_prompts_and_errors_is_shown_literally(seeded_settings):
    store = Store.open(seeded_settings.db_path)
    task = store.list(limit=1)[0]
    raw_sql(
        store.path,
        "UPDATE tasks SET prompt=?, error=?, status='failed' WHERE id=?",
        (HOSTILE, "server said " + HOSTILE, task.id),
    )
    store.close()
    app = SeedanceApp(seeded_settings, clock=fixed_clock, poll=False)
    # 161 wide: the prompt column as wide as it was at 160 before the eta column grew to
    # fit "overdue".
    async with app.run_test(size=(161, 48)) as pilot:
        tasks = app.query_one(TaskList)
        assert "[bold red]x[/] and [@click=app" in row_text(tasks, 0)
        from rich.console import Console

        console = Console(width=300, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
        console.print(app.query_one("#detail-head").content)
        console.print(app.query_one("#detail-body").content)
        plain = console.export_text()
        assert HOSTILE in plain and "server said " + HOSTILE in plain
        for y in range(12):  # every line of the pane: nothing in the text is a link
            await pilot.click("#detail-text", offset=(12, y))
        await pilot.pause()
        assert app.is_running  # nothing in the text was an action
        await pilot.press("r")
        assert app.query_one("#prompt", TextArea).text == HOSTILE


# -- actions on the selected task ------------------------------------------------------


async def test_copy_and_open_fall_back_to_the_clipboard_over_ssh(seeded_settings, monkeypatch):
    monkeypatch.setenv("SSH_CONNECTION", "10.0.0.1 5000 10.0.0.2 22")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    app = noted(SeedanceApp(seeded_settings, clock=fixed_clock, poll=False))
    async with app.run_test(size=(120, 40)) as pilot:
        tasks = app.query_one(TaskList)
        url = tasks.selected.video_urls[0]
        await pilot.press("c")
        assert app.clipboard == url
        app.copy_to_clipboard("")
        await pilot.press("o")
        assert app.clipboard == url
        assert any("No system opener over SSH" in note.message for note in notes(app))


async def test_help_lists_every_binding_and_the_palette_every_action(seeded_settings):
    from seedance_tui.tui.keys import APP_BINDINGS, COMMANDS

    app = SeedanceApp(seeded_settings, clock=fixed_clock, poll=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert {c.title for c in COMMANDS} <= titles
        actions = {b.action for b in APP_BINDINGS}
        assert {c.action for c in COMMANDS} - {"clear_filters"} <= actions


# -- snapshots -------------------------------------------------------------------------


def snapshot_app(settings: Settings) -> SeedanceApp:
    return SeedanceApp(settings, clock=fixed_clock, poll=False)


async def settle(pilot) -> None:
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def test_snapshot_main_80x24(snap_compare, seeded_settings):
    assert snap_compare(snapshot_app(seeded_settings), terminal_size=(80, 24), run_before=settle)


def test_snapshot_main_160x48(snap_compare, seeded_settings):
    assert snap_compare(snapshot_app(seeded_settings), terminal_size=(160, 48), run_before=settle)


def test_snapshot_help(snap_compare, seeded_settings):
    async def open_help(pilot) -> None:
        await settle(pilot)
        await pilot.press("question_mark")
        await pilot.pause()

    assert snap_compare(
        snapshot_app(seeded_settings), terminal_size=(100, 36), run_before=open_help
    )


def test_snapshot_failed_task_detail(snap_compare, seeded_settings):
    async def select_failed(pilot) -> None:
        await settle(pilot)
        await pilot.press("f", "f", "f")  # failed, rejected, orphaned
        await settle(pilot)

    assert snap_compare(
        snapshot_app(seeded_settings), terminal_size=(120, 36), run_before=select_failed
    )


class CreditsOnly(App):
    CSS = "CreditsPanel { border: round $border; padding: 0 1; height: auto; }"

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings

    def compose(self) -> ComposeResult:
        yield CreditsPanel()

    def on_mount(self) -> None:
        from seedance_tui.engine import budget_key
        from seedance_tui.scheduler import Scheduler

        store = Store.open(self.settings.db_path)
        panel = self.query_one(CreditsPanel)
        panel.border_title = "Credits"
        panel.show_summary(store.credits_summary(FIXED_NOW))
        store.close()
        scheduler = Scheduler(fixed_clock, self.settings.limits())
        key = budget_key(Provider.NANOPHOTO, None)
        scheduler.load_ledger(key, [FIXED_NOW - 60 * i for i in range(17)])
        panel.show_budget(
            {
                p: scheduler.budget(key if p is Provider.NANOPHOTO else budget_key(p, None))
                for p in Provider
            }  # fmt: skip
        )


def test_snapshot_credits_panel(snap_compare, seeded_settings):
    assert snap_compare(CreditsOnly(seeded_settings), terminal_size=(60, 14))


async def test_no_color_keeps_states_apart_by_glyph(seeded_settings, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    app = SeedanceApp(seeded_settings, clock=fixed_clock, poll=False)
    async with app.run_test(size=(160, 48)):
        assert app.no_color
        tasks = app.query_one(TaskList)
        cells = {row_text(tasks, i).split()[2:4][0] + " " + row_text(tasks, i).split()[3]
                 for i in range(tasks.total)}  # fmt: skip
        assert {"✓ completed", "✗ failed"} <= cells


async def test_budget_line_says_when_tasks_are_checked_later_to_save_budget():
    from textual.app import App
    from textual.widgets import Static

    from seedance_tui.scheduler import BudgetState

    class Panel(App):
        def compose(self) -> ComposeResult:
            yield CreditsPanel()

    app = Panel()
    async with app.run_test(size=(100, 12)) as pilot:
        panel = app.query_one(CreditsPanel)
        state = BudgetState(limit=100, used=96, remaining=4, paused_until=None,
                            resets_at=None, tight=True, deferred=2)  # fmt: skip
        panel.show_budget({Provider.NANOPHOTO: state})
        await pilot.pause()
        line = str(panel.query_one("#credits-budget", Static).render())
        assert "4/100 requests left this hour" in line
        assert "2 checked later to save budget" in line
        panel.show_budget({Provider.NANOPHOTO: BudgetState(100, 10, 90, None, None)})
        await pilot.pause()
        assert "later" not in str(panel.query_one("#credits-budget", Static).render())
