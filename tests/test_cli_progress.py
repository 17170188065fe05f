"""What `submit --wait` and `watch` show while they wait: the task id at once, a live
status line on a terminal, one final line; each completion told once."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest
from conftest import run_cli
from ptys import run_on_pty

from seedance_tui.paths import config_path

FAST = """
[polling]
min_interval = 0.2
target_latency = 0.4
max_interval = 1.0
prior = [1.0, 2.5]
"""
EXE = str(Path(sys.executable).with_name("seedance-tui"))


@pytest.fixture
def fast_config(isolated_home: Path) -> Path:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(FAST)
    return path


@pytest.fixture
def auto_download(monkeypatch: pytest.MonkeyPatch) -> None:
    """A saved download changes the task's row once more after it completed."""
    monkeypatch.setenv("SEEDANCE_TUI_AUTO_DOWNLOAD", "1")


def test_submit_wait_names_the_task_at_once_then_ends_with_one_line(
    sim_env, sim, fast_config, auto_download
):
    code, out, err = run_cli("submit", "--prompt", "a heron takes off", "--wait")
    assert code == 0, err
    hint = re.search(
        r"^task (\w{8}) — Ctrl\+C stops waiting, the job keeps rendering; "
        r"`seedance-tui status (\w{8})`$",
        err,
        re.M,
    )
    assert hint, err
    short = hint.group(1)
    assert hint.group(2) == short
    # The id comes before any news of the wait's end; the end is told once.
    completed = [line for line in err.splitlines() if " completed" in line]
    assert len(completed) == 1, err
    assert err.index(hint.group(0)) < err.index(completed[0])
    assert completed[0].startswith(f"{short}  completed")
    assert out.startswith("completed: http://127.0.0.1")  # the one final line (and saved:)
    assert "saved:" in out
    assert f"saved {short} to" not in err  # the save is told once, by the final lines
    assert "information:" not in err  # news is printed as it is, only trouble has a level


def test_watch_tells_each_completion_once(sim_env, sim, fast_config, auto_download):
    shorts = []
    for prompt in ("a kite", "a lantern"):
        code, out, err = run_cli("submit", "--prompt", prompt)
        assert code == 0, err
        shorts.append(re.search(r"\(id (\w{8})\)", out).group(1))
    code, _, err = run_cli("watch")
    assert code == 0, err
    for short in shorts:
        lines = [line for line in err.splitlines() if line.startswith(short)]
        assert [line.split()[2] for line in lines] == ["completed"], err
    assert "saved" in err  # the downloads happened, and were not told as completions
    assert err.splitlines()[-1] == "all 2 completed"


def test_submit_wait_on_a_terminal_keeps_one_live_status_line(sim_env, sim, fast_config, processes):
    env = {**os.environ, **sim_env}
    code, screen, stdout = run_on_pty(
        processes, [EXE, "submit", "--prompt", "a slow river", "--wait"], env=env,
        stdout_pipe=True,
    )  # fmt: skip
    text = screen.decode("utf-8", "replace")
    assert code == 0, text
    assert "Ctrl+C stops waiting" in text
    redraws = re.findall(r"\r\x1b\[K(\w{8})  processing · (\d+s) elapsed · next check in", text)
    assert redraws, text  # the line is redrawn in place (carriage return, erase line)
    assert stdout.decode().startswith("completed: ")
