"""Notifications that reach a user who is not looking: the terminal's escape (OSC 777 /
OSC 9, through tmux's passthrough) and `notify_command` with the task's JSON."""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path

import pytest
from conftest import run_cli
from ptys import run_on_pty

from seedance_tui.config import load_settings
from seedance_tui.errors import ConfigError
from seedance_tui.notify import command_env, escape_for, terminal_protocol
from seedance_tui.paths import config_path

FAST = """
[polling]
min_interval = 0.2
target_latency = 0.4
max_interval = 1.0
prior = [1.0, 2.5]
"""
EXE = str(Path(sys.executable).with_name("seedance-tui"))
# What terminals set that says which one it is (and tmux): cleared so each test says its own.
TERMINAL_VARS = (
    "TERM_PROGRAM", "LC_TERMINAL", "ITERM_SESSION_ID", "GHOSTTY_RESOURCES_DIR",
    "KITTY_WINDOW_ID", "WEZTERM_PANE", "CONTOUR_PROFILE", "TMUX", "TERM",
)  # fmt: skip


def write_config(extra: str = "") -> Path:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(extra + FAST)
    return path


def terminal_env(sim_env: dict[str, str], **terminal: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in TERMINAL_VARS}
    return {**env, **sim_env, "TERM": "xterm-256color", **terminal}


def submit_on_pty(processes, env: dict[str, str], prompt: str) -> str:
    code, screen, _ = run_on_pty(
        processes, [EXE, "submit", "--prompt", prompt, "--wait"], env=env, stdout_pipe=True
    )
    text = screen.decode("utf-8", "replace")
    assert code == 0, text
    return text


def test_the_osc_777_notification_reaches_the_terminal(sim_env, sim, processes):
    write_config()
    text = submit_on_pty(processes, terminal_env(sim_env, TERM_PROGRAM="WezTerm"), "a heron")
    assert "\x1b]777;notify;Video ready;" in text
    start = text.index("\x1b]777;notify;Video ready;")
    body = text[start:].split(";", 3)[3].split("\x1b\\", 1)[0]
    assert body.endswith("completed: a heron")


def test_inside_tmux_the_osc_9_notification_is_wrapped_for_passthrough(sim_env, sim, processes):
    write_config()
    env = terminal_env(
        sim_env, KITTY_WINDOW_ID="3", TMUX="/tmp/tmux-0/default,1,0", TERM="tmux-256color"
    )
    text = submit_on_pty(processes, env, "a kite")
    # DCS tmux; ESC ESC ] 9 ; … ESC ESC \ ST: tmux forwards the inner sequence as it is.
    assert "\x1bPtmux;\x1b\x1b]9;Video ready: " in text, repr(text[-600:])
    wrapped = text[text.index("\x1bPtmux;") :]
    assert "completed: a kite\x1b\x1b\\\x1b\\" in wrapped


def test_no_notification_where_the_terminal_is_not_known_unless_turned_on(sim_env, sim, processes):
    write_config()
    plain = submit_on_pty(processes, terminal_env(sim_env), "a cloud")
    assert "\x1b]777" not in plain and "\x1b]9;" not in plain
    write_config('desktop_notifications = "on"\n')
    forced = submit_on_pty(processes, terminal_env(sim_env), "a cloud")
    assert "\x1b]777;notify;Video ready;" in forced
    write_config('desktop_notifications = "off"\n')
    off = submit_on_pty(processes, terminal_env(sim_env, TERM_PROGRAM="WezTerm"), "a cloud")
    assert "\x1b]777" not in off


def test_notify_command_gets_the_tasks_json_on_stdin_without_a_shell(sim_env, sim, tmp_path):
    got = tmp_path / "got.json"
    pwned = tmp_path / "pwned"
    script = (
        "import sys, os; open(sys.argv[1], 'w').write(sys.stdin.read()); "
        "open(sys.argv[1] + '.env', 'w').write(' '.join(sorted(os.environ)))"
    )
    # A shell would run the `touch`; without one it is only an argument.
    line = (
        f"{shlex.quote(sys.executable)} -c {shlex.quote(script)} {shlex.quote(str(got))} "
        f"'; touch {pwned}' '$(touch {pwned})'"
    )
    write_config(f"notify_command = {json.dumps(line)}\n")
    code, out, err = run_cli("submit", "--prompt", "a lantern", "--wait", "--json")
    assert code == 0, err
    task = json.loads(out)
    told = json.loads(got.read_text())
    assert told["id"] == task["id"] and told["status"] == "completed"
    assert told["video_urls"] == task["video_urls"]
    assert not pwned.exists()
    names = (tmp_path / "got.json.env").read_text().split()
    assert "NANOPHOTO_API_KEY" not in names and "SEEDANCE15PRO_API_KEY" not in names


def test_a_failing_notify_command_is_reported(sim_env, sim, tmp_path):
    write_config("notify_command = \"sh -c 'echo no route to ntfy >&2; exit 3'\"\n")
    code, _, err = run_cli("submit", "--prompt", "a boat", "--wait")
    assert code == 0, err
    assert "warning: notify_command 'sh' failed (exit 3): no route to ntfy" in err
    write_config('notify_command = "/nonexistent/notifier --x"\n')
    code, _, err = run_cli("submit", "--prompt", "a boat", "--wait")
    assert code == 0, err
    assert "warning: notify_command '/nonexistent/notifier' could not run" in err


@pytest.mark.parametrize(
    ("line", "message"),
    [('notify_command = "say \'unclosed"', "cannot be split"), ('notify_command = " "', "empty"),
     ('desktop_notifications = "loud"', "should be one of auto, on, off")],
)  # fmt: skip
def test_bad_notification_settings_are_refused_at_load(line, message):
    write_config(line + "\n")
    with pytest.raises(ConfigError, match=message):
        load_settings()


def test_text_inside_the_escape_cannot_end_it():
    sequence = escape_for("Video ready", "a\x1b]0;pwned\x07 b\u202e\nc", "777", tmux=False)
    assert sequence.count("\x1b") == 2  # the opening ESC ] and the closing ESC \
    assert "\x07" not in sequence and "\u202e" not in sequence and "\n" not in sequence
    assert sequence.startswith("\x1b]777;notify;Video ready;a ]0;pwned  b")


def test_which_terminals_are_known():
    assert terminal_protocol({"TERM_PROGRAM": "iTerm.app"}) == "9"
    assert terminal_protocol({"TERM": "xterm-kitty"}) == "9"
    assert terminal_protocol({"TERM": "foot"}) == "777"
    assert terminal_protocol({"TERM_PROGRAM": "tmux", "WEZTERM_PANE": "0"}) == "777"
    assert terminal_protocol({"TERM": "xterm-256color"}) is None
    assert "NANOPHOTO_API_KEY" not in command_env({"NANOPHOTO_API_KEY": "x", "HOME": "/h"})


async def test_the_dashboard_runs_notify_command_when_a_task_ends(tmp_path):
    from tui_helpers import CLOSED_MEDIA, FIXED_NOW, fixed_clock, wait_until

    from seedance_tui.demo import seed_history
    from seedance_tui.models import TaskStatus
    from seedance_tui.store import Store
    from seedance_tui.tui.app import SeedanceApp
    from seedance_tui.tui.messages import TaskUpdated

    got = tmp_path / "got.json"
    script = "import sys; open(sys.argv[1], 'w').write(sys.stdin.read())"
    line = f"{shlex.quote(sys.executable)} -c {shlex.quote(script)} {shlex.quote(str(got))}"
    write_config(f"notify_command = {json.dumps(line)}\n")
    db = tmp_path / "seeded.db"
    store = Store.open(db)
    tasks = seed_history(store, FIXED_NOW, media_base=CLOSED_MEDIA)
    store.close()
    done = next(t for t in tasks if t.status is TaskStatus.COMPLETED)
    app = SeedanceApp(load_settings(db=db, env={}), clock=fixed_clock, poll=False)
    async with app.run_test(size=(120, 36)) as pilot:
        # As the engine's bridge posts it, to the dashboard's screen.
        app.dashboard.post_message(TaskUpdated(done, TaskStatus.PROCESSING))
        await wait_until(pilot, lambda: told(got), "the command ran with the task's JSON")
    assert json.loads(got.read_text())["id"] == done.id


def told(path: Path) -> bool:
    """The command wrote the whole JSON it was given."""
    try:
        return bool(json.loads(path.read_text()))
    except (FileNotFoundError, ValueError):
        return False
