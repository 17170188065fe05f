"""The dashboard's dialogs (issue #14): the first start without a key and the dialog that
stores one; the confirm dialog's warning of a job sent recently (the duplicate-spend
guard) also for a re-run; keys typed ahead of a re-run; the help screen; one toast per
event. Snapshots at 80×24 and 160×48 with a fixed clock and fixed data."""

from __future__ import annotations

import asyncio
import io
import stat
from pathlib import Path

import pytest
from rich.console import Console
from rich.text import Text
from textual.widgets import Button, Input, Static
from tui_helpers import (
    FIXED_NOW,
    KEYED_ENV,
    fixed_clock,
    noted,
    notes,
    type_at_once,
    wait_until,
)

from seedance_tui.config import Settings, load_settings
from seedance_tui.engine import Engine
from seedance_tui.jobs import prepare
from seedance_tui.keys import fingerprint, read_keys_file
from seedance_tui.models import JobSpec, Provider, Task, TaskStatus
from seedance_tui.paths import keys_path
from seedance_tui.simulator import SimConfig
from seedance_tui.store import Store
from seedance_tui.tui import key_dialog
from seedance_tui.tui.app import SeedanceApp
from seedance_tui.tui.form import JobForm
from seedance_tui.tui.key_dialog import KeyDialog
from seedance_tui.tui.screens import DUPLICATE_WINDOW, ConfirmSubmit, HelpScreen
from seedance_tui.tui.task_list import TaskList

# What a user pastes: never to be seen on screen, in a toast, or anywhere but the keys file.
PASTED_KEY = "sk-pasted-SECRET-5c1e9a77"
NO_KEYS = {"SEEDANCE_TUI_KEYRING": "0"}  # no key anywhere, and never the OS keyring
SHOWN_KEYS_PATH = Path("/home/you/.config/seedance-tui/keys.json")


@pytest.fixture
def fixed_keys_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The dialog names the keys file; a snapshot shows the same path on every machine."""
    monkeypatch.setattr(key_dialog, "keys_path", lambda: SHOWN_KEYS_PATH)


def empty_settings(tmp_path: Path, env: dict[str, str] | None = None) -> Settings:
    """A first start: an empty history, and (unless `env` gives some) no key."""
    return load_settings(db=tmp_path / "first.db", env={**NO_KEYS, **(env or {})})


def plain(widget: Static) -> str:
    """The widget's text as painted (a rich renderable rendered at the widget's width)."""
    content = widget.content
    if isinstance(content, Text):
        return content.plain
    console = Console(width=max(widget.size.width, 20), record=True, file=io.StringIO())
    console.print(content)
    return " ".join(console.export_text().split())


def budget_line(app: SeedanceApp) -> str:
    return plain(app.query_one("#credits-budget", Static))


async def settle(pilot) -> None:
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


# -- 1. no key: said where the eye is, and a dialog that stores one -------------------------


async def test_a_first_start_without_a_key_says_so_names_the_command_and_the_demo(tmp_path):
    app = SeedanceApp(empty_settings(tmp_path), clock=fixed_clock, poll=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        notice = app.query_one("#no-key", Static)
        assert notice.display and notice.region.height > 0
        text = plain(notice)
        assert "No API key yet for nanophoto or seedance15pro" in text
        assert "seedance-tui key set nanophoto" in text and "PROVIDER" not in text
        assert "seedance-tui --demo" in text and " K " in text
        line = budget_line(app)
        assert "nanophoto: no key" in line and "requests left" not in line


async def test_a_history_with_tasks_or_one_key_shows_no_first_start_notice(tmp_path):
    settings = empty_settings(tmp_path, {"NANOPHOTO_API_KEY": "sk-test-nano-0000"})
    app = SeedanceApp(settings, clock=fixed_clock, poll=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert not app.query_one("#no-key", Static).display
        line = budget_line(app)
        assert "nanophoto: 100/100 left" in line  # the key it has is budgeted (80 cols: short)


async def test_ctrl_s_without_a_key_opens_the_key_dialog_not_a_price(tmp_path):
    app = SeedanceApp(empty_settings(tmp_path), clock=fixed_clock, poll=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("n", *"a koi pond", "ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, KeyDialog), "the key dialog")
        assert not any(isinstance(s, ConfirmSubmit) for s in app.screen_stack)
        reason = plain(app.screen.query_one("#key-reason", Static))
        assert "No API key for nanophoto" in reason and "key set nanophoto" in reason
        await wait_until(pilot, lambda: isinstance(app.focused, Input), "the key field")
        await pilot.press("escape")
        assert not isinstance(app.screen, KeyDialog | ConfirmSubmit)
        assert app.store.count() == 0


async def test_the_key_dialogs_provider_choice_reads_without_colour(tmp_path):
    app = SeedanceApp(empty_settings(tmp_path), clock=fixed_clock, poll=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("K")
        await wait_until(pilot, lambda: isinstance(app.screen, KeyDialog), "the key dialog")
        await pilot.pause()
        options = {
            provider: app.screen.query_one(f"#key-{provider.value}").render().plain
            for provider in Provider
        }
        assert options[Provider.NANOPHOTO].startswith("(•) nanophoto")
        assert options[Provider.SEEDANCE15PRO].startswith("( ) seedance15pro")


async def test_a_pasted_key_is_stored_as_key_set_stores_it_and_sent_with_at_once(tmp_path, sim):
    """No key, then ctrl+s: the dialog; the key pasted there goes to keys.json (0600), as
    `key set` writes it, is never on screen or in a toast, and the job it waited for is
    priced, confirmed and sent with it by the engine already running."""
    env = {"NANOPHOTO_BASE_URL": sim.base_url, "SEEDANCE15PRO_BASE_URL": sim.base_url}
    settings = empty_settings(tmp_path, env)
    settings.auto_download = False
    app = noted(SeedanceApp(settings))
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: app.engine is not None, "the engine runs")
        await pilot.press("n", *"a koi pond at dawn", "ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.focused, Input), "the key field")
        await pilot.press(*PASTED_KEY)
        assert PASTED_KEY not in app.export_screenshot()  # bullets only
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmSubmit), "the confirm")
        assert app.screen.quote.credits > 0
        assert read_keys_file() == {"nanophoto": PASTED_KEY}
        assert stat.S_IMODE(keys_path().stat().st_mode) == 0o600
        await pilot.press("enter")
        tasks = app.query_one(TaskList)
        await wait_until(pilot, lambda: tasks.total == 1, "the job was sent")
        await wait_until(pilot, lambda: tasks.task_at(0).status is TaskStatus.PROCESSING)
        assert tasks.task_at(0).key_fingerprint == fingerprint(Provider.NANOPHOTO, PASTED_KEY)
        assert not app.query_one("#no-key", Static).display
        assert "nanophoto: no key" not in budget_line(app)
        stored = [n for n in notes(app) if n.title == "Key stored"]
        assert (
            len(stored) == 1
            and fingerprint(Provider.NANOPHOTO, PASTED_KEY)[:6] in stored[0].message
        )
        assert not any(PASTED_KEY in n.message for n in notes(app))
        assert PASTED_KEY not in app.export_screenshot()


async def test_the_key_dialog_refuses_an_empty_or_spaced_key_and_stores_nothing(tmp_path):
    app = SeedanceApp(empty_settings(tmp_path), clock=fixed_clock, poll=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("K")
        await wait_until(pilot, lambda: isinstance(app.focused, Input), "the key field")
        dialog = app.screen
        assert isinstance(dialog, KeyDialog)
        error = dialog.query_one("#key-error", Static)
        await pilot.press("enter")
        assert error.display and "Paste the key first" in plain(error)
        await pilot.press(*"two words", "enter")
        await wait_until(pilot, lambda: "spaces" in plain(error), "the refusal is shown")
        assert app.screen is dialog and dialog.query_one("#key-input", Input).value == ""
        assert not keys_path().exists()


async def test_a_task_waiting_for_its_key_is_checked_once_the_key_is_stored(tmp_path, sim):
    """A rendering task sent with a key this machine no longer has waits (held); the
    same key pasted in the dialog: the engine, not restarted, checks it to its end."""
    env = {"NANOPHOTO_BASE_URL": sim.base_url}
    settings = empty_settings(tmp_path, env)
    settings.auto_download = False
    settings.polling = {"min_interval": 0.1, "target_latency": 0.3, "max_interval": 1.0,
                        "prior": (0.3, 1.0)}  # fmt: skip
    keyed = load_settings(db=settings.db_path, env={**NO_KEYS, **env,
                                                    "NANOPHOTO_API_KEY": PASTED_KEY})  # fmt: skip
    store = Store.open(settings.db_path)
    sender = Engine(keyed, store)
    sent = await sender.submit(JobSpec(Provider.NANOPHOTO, "a heron in fog", duration="4"))
    await sender.aclose()
    store.close()
    assert sent.status is TaskStatus.PROCESSING
    app = SeedanceApp(settings)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: app.engine is not None and app.engine.held(), "held")
        await pilot.press("K")
        await wait_until(pilot, lambda: isinstance(app.focused, Input), "the key field")
        await pilot.press(*PASTED_KEY, "enter")
        await wait_until(
            pilot, lambda: app.store.get(sent.id).status is TaskStatus.COMPLETED, "checked"
        )
        assert app.engine.held() == {}


def test_snapshot_first_start_no_key_80x24(snap_compare, tmp_path):
    app = SeedanceApp(empty_settings(tmp_path), clock=fixed_clock, poll=False)
    assert snap_compare(app, terminal_size=(80, 24), run_before=settle)


def test_snapshot_first_start_no_key_160x48(snap_compare, tmp_path):
    app = SeedanceApp(empty_settings(tmp_path), clock=fixed_clock, poll=False)
    assert snap_compare(app, terminal_size=(160, 48), run_before=settle)


def test_snapshot_key_dialog_80x24(snap_compare, tmp_path, fixed_keys_path):
    async def paste(pilot) -> None:
        await settle(pilot)
        await pilot.press("n", *"a koi pond at dawn", "ctrl+s")
        await wait_until(pilot, lambda: isinstance(pilot.app.focused, Input), "the key field")
        await pilot.press(*PASTED_KEY)
        await pilot.pause()

    app = SeedanceApp(empty_settings(tmp_path), clock=fixed_clock, poll=False)
    assert snap_compare(app, terminal_size=(80, 24), run_before=paste)


# -- 2. the duplicate-spend guard ------------------------------------------------------------

SPEC = JobSpec(Provider.NANOPHOTO, "a lighthouse in a storm", duration="8")


def ran_before(settings: Settings, age: float, status: TaskStatus = TaskStatus.COMPLETED) -> Task:
    """The same job (as the form prepares it) sent `age` seconds before FIXED_NOW."""
    job = prepare(SPEC)
    store = Store.open(settings.db_path)
    created = FIXED_NOW - age
    task = Task(
        id=f"{int(created * 1000):012x}1a2b3c4d", provider=job.provider, status=status,
        prompt=job.spec.prompt, params=job.spec.params(), created_at=created,
        task_id=f"task_{int(age)}", key_fingerprint="fp", credits_estimated=job.quote.credits,
        credits_charged=job.quote.credits, completed_at=created + 60, updated_at=created + 60,
    )  # fmt: skip
    store.insert_task(task)
    store.close()
    return task


class RecordingEngine(Engine):
    """Records what it is asked to send and sends nothing (no provider is reachable)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.sent: list[JobSpec] = []

    async def submit(self, job, **kwargs):
        self.sent.append(job.spec)
        await asyncio.Event().wait()  # in flight until the app ends


def guarded_app(tmp_path: Path) -> tuple[SeedanceApp, RecordingEngine]:
    settings = load_settings(db=tmp_path / "dup.db", env=KEYED_ENV)
    store = Store.open(settings.db_path)
    engine = RecordingEngine(settings, store, clock=fixed_clock)
    return SeedanceApp(settings, clock=fixed_clock, poll=False, store=store, engine=engine), engine


async def test_the_same_job_sent_recently_is_named_and_enter_cancels(tmp_path):
    app, engine = guarded_app(tmp_path)
    earlier = ran_before(app.settings, 180)
    async with app.run_test(size=(100, 30)) as pilot:
        app.query_one(JobForm).load_spec(prepare(SPEC).spec)  # typed again, field by field
        await pilot.press("ctrl+s")
        dialog = app.screen
        assert isinstance(dialog, ConfirmSubmit) and [t.id for t in dialog.duplicate] == [
            earlier.id
        ]
        body = plain(dialog.query_one("#confirm-body", Static))
        assert f"the same job ran 3m00s ago: task {earlier.short_id}, completed" in body
        await wait_until(pilot, lambda: dialog.focused is not None, "the dialog has the focus")
        assert dialog.focused.id == "confirm-no"
        await pilot.press("y")  # no letter sends a duplicate
        assert app.screen is dialog
        await pilot.press("enter")
        assert not isinstance(app.screen, ConfirmSubmit) and engine.sent == []
        # Deliberately: tab to the button, enter.
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: app.screen.focused is not None, "the dialog again")
        await pilot.press("tab")
        assert isinstance(app.screen.focused, Button) and app.screen.focused.id == "confirm-yes"
        await pilot.press("enter")
        await wait_until(pilot, lambda: engine.sent == [prepare(SPEC).spec], "sent once")


@pytest.mark.parametrize("status", [TaskStatus.FAILED, TaskStatus.REJECTED])
async def test_a_refunded_or_refused_job_or_one_older_than_the_window_is_no_duplicate(
    tmp_path, status
):
    app, _ = guarded_app(tmp_path)
    ran_before(app.settings, 60, status)
    ran_before(app.settings, DUPLICATE_WINDOW + 60)
    async with app.run_test(size=(100, 30)) as pilot:
        app.query_one(JobForm).load_spec(prepare(SPEC).spec)
        await pilot.press("ctrl+s")
        dialog = app.screen
        assert isinstance(dialog, ConfirmSubmit) and dialog.duplicate == []
        await wait_until(pilot, lambda: dialog.focused is not None, "the dialog has the focus")
        assert dialog.focused.id == "confirm-yes"


@pytest.mark.parametrize("confirm", ["enter", "y"])
async def test_a_stray_re_run_and_two_keys_never_send_the_job_again(tmp_path, confirm):
    """`r` (re-run) on a job that ran minutes ago, then ctrl+s and enter (or y), all typed
    at once: the confirm names the duplicate and nothing is sent."""
    app, engine = guarded_app(tmp_path)
    earlier = ran_before(app.settings, 120)
    shown: list[object] = []
    push_screen = app.push_screen

    def pushed(screen, *args, **kwargs):
        shown.append(screen)
        return push_screen(screen, *args, **kwargs)

    app.push_screen = pushed  # type: ignore[method-assign]
    async with app.run_test(size=(100, 30)) as pilot:
        tasks = app.query_one(TaskList)
        assert tasks.selected.id == earlier.id
        type_at_once(app, "r", "ctrl+s", confirm)
        await wait_until(
            pilot,
            lambda: any(isinstance(s, ConfirmSubmit) for s in shown) and not app.key_order.pending,
            "the confirm was shown and every key taken",
        )
        [dialog] = [s for s in shown if isinstance(s, ConfirmSubmit)]
        assert dialog.duplicate and dialog.duplicate[0].id == earlier.id
        await pilot.pause()
        assert engine.sent == [] and app.store.count() == 1
        assert not app.query_one(JobForm).submitting


def duplicate_app(tmp_path: Path) -> SeedanceApp:
    app, _ = guarded_app(tmp_path)
    ran_before(app.settings, 180)
    return app


async def open_duplicate(pilot) -> None:
    await settle(pilot)
    await pilot.press("r", "ctrl+s")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, ConfirmSubmit), "the confirm")
    await wait_until(pilot, lambda: pilot.app.screen.focused is not None, "its focus")
    await pilot.pause()


def test_snapshot_duplicate_warning_80x24(snap_compare, tmp_path):
    assert snap_compare(duplicate_app(tmp_path), terminal_size=(80, 24), run_before=open_duplicate)


def test_snapshot_duplicate_warning_160x48(snap_compare, tmp_path):
    assert snap_compare(duplicate_app(tmp_path), terminal_size=(160, 48), run_before=open_duplicate)


# -- 4. the help screen ---------------------------------------------------------------------


async def test_the_help_screen_says_how_to_close_it_within_80_columns(tmp_path):
    app = SeedanceApp(empty_settings(tmp_path), clock=fixed_clock, poll=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.pause()
        hint = app.screen.query_one("#help-hint", Static)
        assert hint.region.right <= 80
        shown = " ".join(
            hint.render_line(y).text.strip() for y in range(hint.region.height)
        )  # fmt: skip
        assert shown.startswith("esc closes") and "ctrl+p lists every action" in shown
        assert "…" not in shown
        assert "esc closes this" in plain(app.screen.query_one("#help-title", Static))
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def open_help(pilot) -> None:
    await settle(pilot)
    await pilot.press("question_mark")
    await pilot.pause()


def test_snapshot_help_80x24(snap_compare, tmp_path):
    app = SeedanceApp(empty_settings(tmp_path), clock=fixed_clock, poll=False)
    assert snap_compare(app, terminal_size=(80, 24), run_before=open_help)


def test_snapshot_help_160x48(snap_compare, tmp_path):
    app = SeedanceApp(empty_settings(tmp_path), clock=fixed_clock, poll=False)
    assert snap_compare(app, terminal_size=(160, 48), run_before=open_help)


# -- 5. one toast per event -----------------------------------------------------------------


@pytest.mark.parametrize(
    "sim_config",
    [
        SimConfig(
            generation_time=(0.3, 0.8),
            failure_rate=0.0,
            seed=7,
            balances={KEYED_ENV["NANOPHOTO_API_KEY"]: 0},
        )
    ],  # fmt: skip
    indirect=True,
)
async def test_a_rejected_submission_is_said_in_one_toast(tmp_path, sim):
    env = {**KEYED_ENV, "NANOPHOTO_BASE_URL": sim.base_url, "SEEDANCE15PRO_BASE_URL": sim.base_url}
    settings = load_settings(db=tmp_path / "h.db", env=env)
    settings.auto_download = False
    app = noted(SeedanceApp(settings))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("n", *"a fox in the snow", "ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmSubmit), "the confirm")
        await pilot.press("enter")
        form = app.query_one(JobForm)
        await wait_until(pilot, lambda: app.store.count() == 1 and not form.submitting)
        task = app.store.list(limit=1)[0]
        assert task.status is TaskStatus.REJECTED
        await wait_until(
            pilot, lambda: any(task.short_id in n.message for n in notes(app)), "it is said"
        )
        about = [n for n in notes(app) if task.short_id in n.message]
        assert len(about) == 1, about
        assert about[0].severity == "error" and "Insufficient credits" in about[0].message
