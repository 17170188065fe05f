"""`[keymap]` checked where the settings are loaded: a key bound to two actions, or a
binding that leaves no way out, is refused with a message; the dashboard shows it."""

from __future__ import annotations

import pytest
from conftest import run_cli

from seedance_tui.config import load_settings, save_setting
from seedance_tui.errors import ConfigError
from seedance_tui.keymap import LAYERS, checked
from seedance_tui.paths import config_path


def write_keymap(text: str) -> None:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("[keymap]\n" + text)


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        ('submit = "n"', "n is new_job's key too in the task list"),
        ('quit = "j"', "j is cursor_down's key too in the task list"),
        ('cursor_down = "q"', "q is quit's key too in the task list"),
        ('quit = ""', "no key would quit in the task list"),
        ('focus_list = "x"', "no key would leave the prompt editor"),
        ('cancel = "y"', "y is confirm's key too in the confirm dialog"),
        ('close = "q"', "q is quit's key too in the gallery"),
        ('submit = "ctrl+g"\nhelp = "ctrl+g"', "ctrl+g is"),
        ('search = "?"', "question_mark is help's key too"),
    ],
)
def test_a_clash_or_no_way_out_is_refused_at_load_with_a_message(entry, why):
    write_keymap(entry + "\n")
    settings = load_settings()
    assert any(why in problem for problem in settings.keymap_problems), settings.keymap_problems
    action = entry.split(" =")[0]
    assert action not in settings.keymap  # the default stays for it
    assert all(problem.startswith("keymap.") for problem in settings.keymap_problems)


def test_good_rebinds_are_kept_and_the_defaults_own_overlaps_are_not_clashes():
    write_keymap('submit = "ctrl+g"\nsearch = "ctrl+f,/"\nclose = "escape"\nquit = "ctrl+x,q"\n')
    settings = load_settings()
    assert settings.keymap_problems == []
    assert settings.keymap == {
        "submit": "ctrl+g", "search": "ctrl+f,/", "close": "escape", "quit": "ctrl+x,q"
    }  # fmt: skip
    assert checked({})[1] == []  # the defaults pass their own checks


def test_config_set_refuses_a_clash_and_writes_nothing():
    with pytest.raises(ConfigError, match="j is cursor_down's key too"):
        save_setting("keymap.quit", "j")
    assert not config_path().exists() or "quit" not in config_path().read_text()
    code, _, err = run_cli("config", "set", "keymap.submit", '"n"')
    assert code == 2 and "n is new_job's key too" in err


def test_the_tables_here_are_the_dashboards():
    from seedance_tui.tui import keys

    tables = {
        "app": keys.APP_BINDINGS, "task_list": keys.TASK_LIST_BINDINGS,
        "gallery": keys.GALLERY_BINDINGS, "confirm": keys.CONFIRM_BINDINGS,
        "help": keys.HELP_BINDINGS,
    }  # fmt: skip
    for name, bindings in tables.items():
        assert {b.id: b.key for b in bindings} == LAYERS[name], name


async def test_the_dashboard_shows_the_refusal(tmp_path):
    from tui_helpers import fixed_clock, wait_until

    from seedance_tui.tui.app import SeedanceApp

    write_keymap('quit = "j"\n')
    app = SeedanceApp(load_settings(db=tmp_path / "h.db", env={}), clock=fixed_clock, poll=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_until(
            pilot,
            lambda: any("keymap.quit" in str(n.message) for n in app._notifications),
            "the refusal shown",
        )
        await pilot.press("j")  # still the cursor's key, not quit
        assert app.is_running
