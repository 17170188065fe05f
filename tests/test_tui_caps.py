"""The dashboard under spending caps and compare: the confirm dialog over a cap (only
the override key submits, once), the compare confirm side by side, a group shown as a
pair, the credits panel's caps; and their snapshots."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from textual.app import App, ComposeResult
from tui_helpers import CLOSED_MEDIA, FIXED_NOW, KEYED_ENV, fixed_clock, wait_until

from seedance_tui.caps import report
from seedance_tui.config import Settings, load_settings
from seedance_tui.demo import seed_history
from seedance_tui.models import Provider, TaskStatus
from seedance_tui.store import Filter, Store
from seedance_tui.tui.app import SeedanceApp
from seedance_tui.tui.credits import CreditsPanel
from seedance_tui.tui.detail import DetailPane
from seedance_tui.tui.screens import ConfirmCompare, ConfirmSubmit
from seedance_tui.tui.task_list import TaskList


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch):
    """Local time is UTC for the test: the caps' calendar day is the history's."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def seeded(tmp_path: Path, utc) -> Settings:
    """The 48 demo tasks; nanophoto's month has 238 of 240 credits spent."""
    db = tmp_path / "seeded.db"
    store = Store.open(db)
    seed_history(store, FIXED_NOW, media_base=CLOSED_MEDIA)
    store.close()
    settings = load_settings(db=db, env=KEYED_ENV)
    settings.providers[Provider.NANOPHOTO].daily_cap = 20
    settings.providers[Provider.NANOPHOTO].monthly_cap = 240
    settings.providers[Provider.SEEDANCE15PRO].monthly_cap = 1500
    return settings


async def settle(pilot) -> None:
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def write_prompt(*then: str):
    async def run(pilot) -> None:
        await settle(pilot)
        await pilot.press("n", *"a koi pond at dawn", *then)
        await pilot.pause()

    return run


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
def test_snapshot_confirm_over_the_cap(snap_compare, seeded, size):
    app = SeedanceApp(seeded, clock=fixed_clock, poll=False)
    assert snap_compare(app, terminal_size=size, run_before=write_prompt("ctrl+s"))


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
def test_snapshot_compare_confirm(snap_compare, seeded, size):
    seeded.providers[Provider.NANOPHOTO].monthly_cap = None  # within the caps
    app = SeedanceApp(seeded, clock=fixed_clock, poll=False)
    assert snap_compare(app, terminal_size=size, run_before=write_prompt("ctrl+b"))


class CreditsWithCaps(App):
    CSS = "CreditsPanel { border: round $border; padding: 0 1; height: auto; }"

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings

    def compose(self) -> ComposeResult:
        yield CreditsPanel()

    def on_mount(self) -> None:
        store = Store.open(self.settings.db_path)
        summary = store.credits_summary(FIXED_NOW)
        summary["caps"] = report(Provider, self.settings.cap_windows, store.spending, FIXED_NOW)
        store.close()
        panel = self.query_one(CreditsPanel)
        panel.border_title = "Credits"
        panel.show_summary(summary)


def test_snapshot_credits_panel_with_caps(snap_compare, seeded):
    assert snap_compare(CreditsWithCaps(seeded), terminal_size=(72, 14))


async def test_the_confirm_dialog_over_the_cap_says_why_and_wants_the_override_key(seeded):
    app = SeedanceApp(seeded, clock=fixed_clock, poll=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await write_prompt("ctrl+s")(pilot)
        screen = app.screen
        assert isinstance(screen, ConfirmSubmit) and screen.over is not None
        assert (screen.over.period, screen.over.cap, screen.over.usage.spent) == (
            "monthly",
            240,
            238,
        )
        await pilot.press("y")
        assert app.screen is screen  # y does not submit over a cap
        assert app.screen.focused is not None and app.screen.focused.id == "confirm-no"
        await pilot.press("enter")  # presses Cancel
        assert not isinstance(app.screen, ConfirmSubmit)
        assert app.store.count() == 48  # nothing written


@pytest.fixture
def capped_live(live_settings: Settings) -> Settings:
    live_settings.auto_download = False
    live_settings.providers[Provider.NANOPHOTO].daily_cap = 4  # one 720p 4 s job
    return live_settings


def sim_tasks(sim) -> list[dict]:
    body = httpx.get(sim.base_url + "/_sim/tasks").json()
    return body["tasks"] if isinstance(body, dict) else body


async def test_the_override_key_submits_over_the_cap_once(capped_live, sim):
    app = SeedanceApp(capped_live)
    async with app.run_test(size=(120, 40)) as pilot:
        tasks = app.query_one(TaskList)
        await pilot.press("n", *"a koi pond", "ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmSubmit))
        assert app.screen.over is None
        await pilot.press("enter")
        await wait_until(pilot, lambda: tasks.total == 1)
        await pilot.press("n", *" again", "ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmSubmit))
        assert app.screen.over is not None and app.screen.over.cap == 4
        await pilot.press("o")
        await wait_until(pilot, lambda: tasks.total == 2)
        await pilot.press("n", *" and again", "ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmSubmit))
        assert app.screen.over is not None  # the override was for one job
        await pilot.press("escape")
        assert len(sim_tasks(sim)) == 2


async def test_a_compare_from_the_form_sends_a_pair_shown_as_one(capped_live, sim):
    capped_live.providers[Provider.NANOPHOTO].daily_cap = None
    app = SeedanceApp(capped_live)
    async with app.run_test(size=(120, 40)) as pilot:
        tasks = app.query_one(TaskList)
        await pilot.press("n", *"a koi pond", "ctrl+b")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmCompare))
        assert [j.provider for j in app.screen.jobs] == list(Provider)
        await pilot.press("enter")
        await wait_until(pilot, lambda: tasks.total == 2)
        store = app.store
        [group] = {t.group for t in store.list(limit=None)}
        assert group and store.count(Filter(group=group)) == 2
        await wait_until(
            pilot,
            lambda: {t.status for t in store.list(limit=None)} == {TaskStatus.COMPLETED},
            timeout=30,
        )
        tasks.focus()
        await pilot.pause()
        pane = app.query_one(DetailPane)
        group_shown = {t.provider.value for t in (pane._shown or ())[-1] or ()}
        assert group_shown == {"nanophoto", "seedance15pro"}  # the pair, in the detail pane
        assert "compare" in app.export_screenshot()
    assert len(sim_tasks(sim)) == 2


async def test_a_re_run_over_the_cap_meets_the_same_dialog(seeded):
    app = SeedanceApp(seeded, clock=fixed_clock, poll=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        selected = app.query_one(TaskList).selected
        assert selected is not None and selected.provider is Provider.NANOPHOTO
        await pilot.press("r", "ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmSubmit))
        over = app.screen.over
        assert over is not None and over.cost == selected.credits_estimated
        assert (over.period, over.usage.spent) == ("monthly", 238)
        await pilot.press("escape")
        assert app.store.count() == 48
