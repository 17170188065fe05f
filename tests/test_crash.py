"""The crash test, short: SIGKILL headless `submit`/`watch` processes at random moments
with submissions and polls in flight, restart `watch`, and check that every task the
simulator created is in the history (or is a visible `orphaned` row), none twice.
The last rounds kill the TUI (in a pseudo-terminal, a job typed into its form) with a
`watch` polling beside it. `benchmarks/crash.py` runs 20 + 20 rounds; this runs 4 + 2,
and the same at full size is marked `slow` (`pytest -m slow`)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from seedance_tui.models import Provider, Task, TaskStatus

_PATH = Path(__file__).resolve().parent.parent / "benchmarks" / "crash.py"
_spec = importlib.util.spec_from_file_location("crash_benchmark", _PATH)
assert _spec is not None and _spec.loader is not None
crash = importlib.util.module_from_spec(_spec)
sys.modules["crash_benchmark"] = crash
_spec.loader.exec_module(crash)


def check_crash(result, tui_rounds: int) -> None:
    print(result.report())
    assert result.harness_failures == []
    assert result.killed_tuis == tui_rounds
    assert result.sim_tasks >= 1
    assert result.lost == []
    assert result.duplicated == []
    assert result.state_mismatches == []
    assert result.not_terminal == []
    assert result.credit_mismatches == {}
    assert result.tracebacks == []
    rows = sum(result.statuses.values())
    assert rows + result.never_recorded == result.submissions


def test_sigkill_at_random_moments_loses_nothing_and_submits_nothing_twice() -> None:
    result = crash.run_crash(4, tui_rounds=2, seed=4)
    assert result.kills >= 5, "the processes must actually be killed while running"
    check_crash(result, tui_rounds=2)


@pytest.mark.slow
def test_sigkill_at_full_size_loses_nothing_and_submits_nothing_twice() -> None:
    """benchmarks/crash.py's size: 20 headless rounds and 20 killing the dashboard."""
    result = crash.run_crash(20, tui_rounds=20, seed=1)
    assert result.kills >= 40
    check_crash(result, tui_rounds=20)


def test_the_crash_check_catches_a_lost_task_and_a_double_submission() -> None:
    result = crash.CrashResult(rounds=1)
    ours = [
        Task(id="a", provider=Provider.NANOPHOTO, status=TaskStatus.COMPLETED, prompt="p1",
             params={}, created_at=0.0, task_id="task_1", credits_charged=4),
    ]  # fmt: skip
    sim_tasks = [
        {"provider": "nanophoto", "task_id": "task_1", "status": "completed", "net": 4,
         "request": {"prompt": "p1"}},
        {"provider": "nanophoto", "task_id": "task_2", "status": "completed", "net": 4,
         "request": {"prompt": "p1"}},
    ]  # fmt: skip
    ledger = {"totals": {"faults": 0},
              "providers": {"nanophoto": {"net": 8}, "seedance15pro": {"net": 0}}}  # fmt: skip
    summary = {"providers": {"nanophoto": {"all": 4}}}
    crash.check(result, ["p1"], ours, summary, sim_tasks, ledger)
    assert not result.ok
    assert len(result.lost) == 1 and len(result.duplicated) == 1
    assert result.credit_mismatches == {"nanophoto": (4, 8)}
