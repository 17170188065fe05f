"""The fault soak, short: the engine against a simulator answering ~20% of requests
with faults (429 + Retry-After, 500, timeouts, resets, non-JSON, slow answers) and ~10%
more with hostile ones (absurd numbers, wrong types, escapes, bad URLs, dripped and 50 MB
answers, refused connections).

`benchmarks/soak.py` runs 200 jobs; this runs 30 in accelerated time (and 200 when
marked `slow` tests are asked for: `pytest -m slow`). Every job ends in
the terminal state the simulator holds for it, no task goes missing or is created twice,
our credits equal the simulator's net charges, and no request exceeded the rate limit.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parent.parent / "benchmarks" / "soak.py"
_spec = importlib.util.spec_from_file_location("soak_benchmark", _PATH)
assert _spec is not None and _spec.loader is not None
soak = importlib.util.module_from_spec(_spec)
sys.modules["soak_benchmark"] = soak
_spec.loader.exec_module(soak)


def test_soak_under_faults_loses_nothing_and_charges_once(tmp_path: Path) -> None:
    result = soak.run_soak(30, fault_rate=0.2, seed=11, db=tmp_path / "history.db")
    print(result.report())
    assert sum(result.faults.values()) >= 5, "the soak must actually inject faults"
    hostile = sum(result.faults.get(k, 0) for k in ("absurd", "drip", "huge", "refused"))
    assert hostile >= 3, f"the soak must inject hostile answers too: {result.faults}"
    assert result.lost == []
    assert result.duplicated == []
    assert result.state_mismatches == []
    assert result.credit_mismatches == {}
    assert result.over_limit == 0
    assert result.not_terminal == []
    assert result.errors == []
    # Every job is accounted for: accepted (and finished) or orphaned, nothing else.
    assert sum(result.statuses.values()) == 30
    assert result.statuses.get("orphaned", 0) == result.orphans
    assert result.sim_tasks + result.orphans == 30 - result.statuses.get("rejected", 0)
    assert result.orphans_created_by_sim == 0  # faults here never create tasks


@pytest.mark.slow
def test_soak_at_full_size_loses_nothing_and_charges_once(tmp_path: Path) -> None:
    """benchmarks/soak.py's size: 200 jobs against ~20% faulty answers."""
    result = soak.run_soak(200, fault_rate=0.2, seed=5, db=tmp_path / "history.db")
    print(result.report())
    assert sum(result.faults.values()) >= 20
    assert result.ok, result.report()
    assert sum(result.statuses.values()) == 200
    assert result.statuses.get("orphaned", 0) == result.orphans
    assert result.sim_tasks + result.orphans == 200 - result.statuses.get("rejected", 0)


def test_soak_with_ambiguous_faults_shows_each_accepted_job(tmp_path: Path) -> None:
    """With fault_after_accept, a faulted generate may have created (and charged) a task:
    each such task must be an `orphaned` row the user sees, never a silent duplicate."""
    result = soak.run_soak(
        24, fault_rate=0.3, fault_after_accept=True, seed=3, db=tmp_path / "history.db"
    )
    print(result.report())
    assert result.lost == []
    assert result.duplicated == []
    assert result.state_mismatches == []
    assert result.credit_mismatches == {}  # apart from the orphans' (reported separately)
    assert result.over_limit == 0
    assert result.errors == []
    assert result.orphans >= result.orphans_created_by_sim


def test_the_soak_check_catches_a_lost_task_and_a_credit_mismatch() -> None:
    """The checker itself can fail: a task the simulator holds but we don't is lost."""
    sim_tasks = [
        {"provider": "nanophoto", "task_id": "task_1", "status": "completed", "net": 4,
         "request": {"prompt": "p1"}},
    ]  # fmt: skip
    ledger = {
        "faults": {"timeout": 1},
        "totals": {"requests": 3, "rate_limited": 1},
        "providers": {"nanophoto": {"requests": 3, "net": 4},
                      "seedance15pro": {"requests": 0, "net": 0}},
    }  # fmt: skip
    summary = {"providers": {}}
    result = soak.check(1, 0.1, [], summary, sim_tasks, ledger, [])
    assert not result.ok
    assert len(result.lost) == 1
    assert result.credit_mismatches == {"nanophoto": (0, 4)}
    assert result.over_limit == 1
