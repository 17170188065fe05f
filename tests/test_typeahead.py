"""Keys typed ahead (a fast typist, a paste, `tmux send-keys`, keys typed while the
dashboard starts): each lands where the keys before it put the focus, or is dropped;
never on a list shortcut the user did not mean (`r` re-runs, `d` saves, `o` opens).
And the dashboard says when it takes keys."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from textual import events
from textual.widgets import Button, TextArea
from tui_helpers import KEYED_ENV, fixed_clock, type_at_once, wait_until

from seedance_tui import library
from seedance_tui.config import load_settings
from seedance_tui.demo import seed_history
from seedance_tui.models import TaskStatus
from seedance_tui.store import Store
from seedance_tui.tui.app import READY_FILE_VAR, SeedanceApp
from seedance_tui.tui.messages import DashboardReady
from seedance_tui.tui.screens import ConfirmSubmit
from seedance_tui.tui.task_list import TaskList

# Letters of the list's shortcuts: r re-run, o open, d save, b pause the queue, j move.
PROMPT = "tui round 03 job 0 by the docks"


def seeded(settings, base_url: str) -> int:
    store = Store.open(settings.db_path)
    seed_history(store, time.time(), media_base=base_url)
    count = store.count()
    store.close()
    return count


def notices(app) -> list[str]:
    return [f"{n.title}: {n.message}" for n in app._notifications]


async def test_a_job_typed_at_once_goes_into_the_prompt_and_nowhere_else(
    live_settings, sim, monkeypatch
):
    """`n`, the prompt, ctrl+s and enter, all queued before the first is handled: the
    prompt's letters go into the prompt (not to the list, whose shortcuts they are) and
    the enter confirms the dialog (not a new line in the prompt)."""
    opened: list[str] = []
    monkeypatch.setattr(library, "open_with_system", lambda target: opened.append(target) or True)
    before = seeded(live_settings, sim.base_url)
    app = SeedanceApp(live_settings, poll=False)
    async with app.run_test(size=(120, 40)) as pilot:
        tasks = app.query_one(TaskList)
        selected = tasks.selected
        assert selected is not None and selected.status is TaskStatus.COMPLETED
        prompts = [t.prompt for t in app.store.list(limit=None)]
        type_at_once(app, "n", *PROMPT, "ctrl+s", "enter")
        await wait_until(pilot, lambda: app.store.count() == before + 1, "the job was sent")
        await app.workers.wait_for_complete()
        newest = app.store.list(limit=1)[0]
        assert newest.prompt == PROMPT
        assert newest.status is TaskStatus.PROCESSING
        assert [t.prompt for t in app.store.list(limit=None)] == [PROMPT, *prompts]  # no re-run
        assert not isinstance(app.screen, ConfirmSubmit)
        assert opened == [] and app.dashboard.downloads.running == {}
        assert app.store.get(selected.id).local_path is None
        assert not app.session.queue.paused()
        assert not any("Re-run" in n for n in notices(app))


async def test_enter_typed_right_after_ctrl_s_confirms_the_dialog(live_settings, sim):
    app = SeedanceApp(live_settings, poll=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("n", *"a heron in fog")
        type_at_once(app, "ctrl+s", "enter")
        await wait_until(pilot, lambda: app.store.count() == 1, "the job was sent")
        assert app.store.list(limit=1)[0].prompt == "a heron in fog"
        assert "\n" not in app.query_one("#prompt", TextArea).text


async def test_keys_read_before_the_dashboard_was_ready_are_kept_and_go_where_they_lead(
    tmp_path,
):
    """`n` and a prompt, read (stamped) before the dashboard was ready and handled after:
    none is dropped, and the prompt's letters go into the prompt, not to the list (whose
    shortcuts `r`, `d`, `o` are)."""
    db = tmp_path / "seeded.db"
    store = Store.open(db)
    seed_history(store, time.time(), media_base="http://127.0.0.1:47615")
    store.close()
    seen: list[type] = []

    def hook(message) -> None:
        if isinstance(message, DashboardReady | events.Key):
            seen.append(type(message))

    app = SeedanceApp(load_settings(db=db, env={}), clock=fixed_clock, poll=False)
    async with app.run_test(size=(120, 40), message_hook=hook) as pilot:
        assert app.is_ready
        assert seen[:1] == [DashboardReady]
        for key in ["n", *"rdo docks"]:  # read (stamped) while the dashboard was starting
            early = events.Key(key if key != " " else "space", key)
            early.time = app.key_order.ready_at - 0.5
            app.post_message(early)
        prompt = app.query_one("#prompt", TextArea)
        await wait_until(pilot, lambda: prompt.text == "rdo docks", "the prompt got every key")
        await wait_until(pilot, lambda: app.key_order.pending == 0, "every key was taken")
        assert app.focused is prompt
        assert app.dashboard.downloads.running == {}  # `d` saved nothing
        assert not any("Re-run" in n for n in notices(app))  # `r` re-ran nothing


async def test_keys_typed_before_ready_wait_for_it_in_order(tmp_path):
    """Keys that reach the app before the dashboard announced it is ready (a script's
    keys sent before the first frame) wait, then go in order."""
    app = SeedanceApp(load_settings(db=tmp_path / "h.db", env={}), poll=False)
    order = app.key_order
    real_ready = order.ready
    kept: list[int] = []
    # Made here, as the driver makes them (made inside the screen's handler, a key would
    # count the screen as its sender, and Textual does not bubble it back to its sender).
    typed = [events.Key(key, key) for key in ["n", *"fox"]]

    def ready(at: float) -> None:
        # The keys arrive just before the dashboard is ready: they must wait for it.
        for key in typed:
            taking = order.on_event(key)
            with pytest.raises(StopIteration):  # kept at once: nothing awaited
                taking.send(None)
        kept.append(order.pending)
        real_ready(at)

    order.ready = ready  # type: ignore[method-assign]
    async with app.run_test(size=(100, 30)) as pilot:
        prompt = app.query_one("#prompt", TextArea)
        await wait_until(pilot, lambda: prompt.text == "fox", "the early keys went into the prompt")
        assert app.focused is prompt
        assert kept == [4]  # all four waited for the dashboard


async def test_the_ready_file_names_the_dashboards_process(tmp_path, monkeypatch):
    ready = tmp_path / "ready"
    monkeypatch.setenv(READY_FILE_VAR, str(ready))
    app = SeedanceApp(load_settings(db=tmp_path / "h.db", env={}), poll=False)
    async with app.run_test(size=(100, 30)):
        assert ready.read_text() == f"{os.getpid()}\n"
        assert not Path(str(ready) + ".partial").exists()
    assert not ready.exists()  # withdrawn when the dashboard quits


async def test_a_dialog_closed_before_it_was_shown_raises_nothing(tmp_path):
    """ctrl+s then quitting at once: the app closes the confirm dialog before it composed
    its buttons; focusing its button must not raise (it did: NoMatches '#confirm-yes')."""
    app = SeedanceApp(load_settings(db=tmp_path / "h.db", env=KEYED_ENV), poll=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("n", *"a fox")
        app.action_submit()
        assert isinstance(app.screen, ConfirmSubmit)
    assert app.return_code in (None, 0)


async def test_the_confirm_dialog_focuses_its_submit_button(tmp_path):
    app = SeedanceApp(load_settings(db=tmp_path / "h.db", env=KEYED_ENV), poll=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("n", *"a fox", "ctrl+s")
        dialog = app.screen
        assert isinstance(dialog, ConfirmSubmit)
        await wait_until(pilot, lambda: dialog.focused is not None, "the dialog has the focus")
        assert isinstance(dialog.focused, Button) and dialog.focused.id == "confirm-yes"
