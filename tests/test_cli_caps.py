"""The command line under spending caps and compare: exit 2 with what the cap is, what
is spent and held, what the job would cost and the flag that overrides once; `settle`;
`credits --json` with each cap; `submit --compare` against the simulator, one group."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from conftest import run_cli

from seedance_tui.config import load_settings
from seedance_tui.models import JobSpec, Provider, TaskStatus
from seedance_tui.paths import config_path
from seedance_tui.store import Store

CONFIG = """
[polling]
min_interval = 0.1
target_latency = 0.3
max_interval = 1.0
prior = [0.3, 1.5]

[providers.nanophoto]
daily_cap = 20
"""
NANO_8 = ["--provider", "nanophoto", "--prompt", "a paper boat", "--duration", "4", "--audio"]


@pytest.fixture
def capped_config(isolated_home: Path) -> Path:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(CONFIG)
    return path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    return run_cli(*argv)


def sim_tasks(sim) -> list[dict]:
    body = httpx.get(sim.base_url + "/_sim/tasks").json()
    return body["tasks"] if isinstance(body, dict) else body


def test_over_the_cap_exits_2_says_why_and_sends_nothing(capsys, sim_env, sim, capped_config):
    assert run(capsys, "submit", *NANO_8)[0] == 0
    assert run(capsys, "submit", *NANO_8)[0] == 0
    code, out, err = run(capsys, "submit", *NANO_8)
    assert code == 2 and out == ""
    for part in ("over the daily cap of nanophoto", "cap 20 credits", "16 held by pending work",
                 "0 spent", "would cost ~8", "Nothing was sent", "--over-cap"):  # fmt: skip
        assert part in err, (part, err)
    assert len(sim_tasks(sim)) == 2
    code, out, _ = run(capsys, "submit", *NANO_8, "--over-cap", "--json")
    assert code == 0 and json.loads(out)["status"] == "processing"
    assert run(capsys, "submit", *NANO_8)[0] == 2  # once: the next is refused again
    assert len(sim_tasks(sim)) == 3


def test_a_batch_over_the_cap_queues_nothing(capsys, sim_env, sim, capped_config, tmp_path):
    batch = tmp_path / "jobs.jsonl"
    batch.write_text("".join(
        json.dumps({"provider": "nanophoto", "prompt": f"take {i}", "duration": "4",
                    "audio": True}) + "\n" for i in range(3)
    ))  # fmt: skip
    code, _, err = run(capsys, "submit", "--batch", str(batch), "--yes", "--detach")
    assert code == 2 and "these 3 jobs would cost ~24" in err and "Nothing was sent" in err
    assert json.loads(run(capsys, "queue", "status", "--json")[1])["total"] == 0
    code, _, err = run(capsys, "submit", "--batch", str(batch), "--yes", "--detach", "--over-cap")
    assert code == 0 and "queued 3 job(s)" in err


def test_settle_an_orphan_and_credits_json_shows_each_cap(capsys, sim_env, sim, capped_config):
    settings = load_settings()
    store = Store.open(settings.db_path)
    [lost] = store.create_intents([(JobSpec(Provider.NANOPHOTO, "lost", duration="8",
                                            audio=True), 16, "fp")], now=time.time())  # fmt: skip
    store.record_refusal(lost.id, TaskStatus.ORPHANED, "interrupted", lost.created_at)
    store.close()
    code, out, _ = run(capsys, "credits", "--json")
    daily = json.loads(out)["providers"]["nanophoto"]["caps"]["daily"]
    assert daily == {"cap": 20, "spent": 0, "held": 0, "at_risk": 16, "left": 4,
                     "used_share": 0.8, "warning": False}  # fmt: skip
    assert json.loads(out)["providers"]["seedance15pro"]["caps"] == {}
    assert run(capsys, "submit", *NANO_8)[0] == 2  # the orphan counts until settled
    code, _, err = run(capsys, "settle", lost.id[-8:], "--charged", "17")
    assert code == 0 and "counts 17 credits" in err
    daily = json.loads(run(capsys, "credits", "--json")[1])["providers"]["nanophoto"]["caps"][
        "daily"
    ]
    assert (daily["spent"], daily["at_risk"], daily["left"], daily["warning"]) == (17, 0, 3, True)
    code, out, _ = run(capsys, "credits")
    assert "nanophoto daily cap 20:" in out and "warning: past 80 %" in out
    assert run(capsys, "settle", lost.id, "--none")[0] == 0
    assert run(capsys, "submit", *NANO_8)[0] == 0
    code, _, err = run(capsys, "settle", "no-such-task", "--none")
    assert code == 2 and "no task matches" in err


def test_only_an_orphan_is_settled(capsys, sim_env, sim, capped_config):
    code, out, _ = run(capsys, "submit", *NANO_8, "--json")
    task = json.loads(out)
    code, _, err = run(capsys, "settle", task["id"], "--charged", "3")
    assert code == 2 and "not orphaned" in err
    for flags in ((), ("--charged", "3", "--none")):  # exactly one of the two
        code, _, err = run(capsys, "settle", task["id"], *flags)
        assert code == 2 and "one of --charged N or --none" in err


def test_compare_creates_one_task_per_provider_in_one_group(capsys, sim_env, sim, capped_config):
    code, out, err = run(capsys, "submit", "--compare", "--prompt", "a fox in snow",
                         "--provider", "nanophoto", "--duration", "8", "--aspect", "portrait",
                         "--audio", "--yes", "--wait", "--json")  # fmt: skip
    assert code == 0, err
    for part in ("nanophoto", "seedance15pro", "~16 credits", "~260 credits", "total", "~276"):
        assert part in err, (part, err)
    tasks = json.loads(out)
    assert [t["provider"] for t in tasks] == ["nanophoto", "seedance15pro"]
    [group] = {t["group"] for t in tasks}
    assert group
    sent = {t["provider"]: t["request"] for t in sim_tasks(sim)}
    assert len(sim_tasks(sim)) == 2
    assert (sent["nanophoto"]["aspectRatio"], sent["nanophoto"]["duration"]) == ("portrait", "8")
    assert (sent["seedance15pro"]["aspect_ratio"], sent["seedance15pro"]["duration"],
            sent["seedance15pro"]["sound"]) == ("9:16", "10", True)  # fmt: skip
    code, out, _ = run(capsys, "list", "--json", "--group", group)
    listed = json.loads(out)
    assert code == 0 and {t["group"] for t in listed} == {group} and len(listed) == 2
    credits = listed[0]["group_credits"]
    assert credits == {"tasks": 2, "estimated": 276, "net": 276,
                       "providers": {"nanophoto": {"estimated": 16, "net": 16},
                                     "seedance15pro": {"estimated": 260, "net": 260}}}  # fmt: skip


def test_compare_over_a_cap_is_refused_before_confirming(capsys, sim_env, sim, capped_config):
    code, _, err = run(capsys, "submit", "--compare", "--prompt", "a fox", "--duration", "12",
                       "--audio", "--yes")  # fmt: skip
    assert code == 2 and "daily cap of nanophoto" in err  # 720p 12 s audio: 24 > 20
    assert sim_tasks(sim) == []


def test_two_processes_for_a_caps_last_credits_one_gets_through(
    sim_env, sim, capped_config, processes
):
    """Two `submit` processes sharing one history, the cap's room for one job: exactly
    one is sent (the check and the intent row are one transaction), the other exits 2."""
    import subprocess
    import sys

    argv = [sys.executable, "-m", "seedance_tui", "submit", *NANO_8, "--duration", "12"]
    # 720p 12 s with audio: 24 credits; a cap of 30 has room for one.
    capped_config.write_text(CONFIG.replace("daily_cap = 20", "daily_cap = 30"))
    both = [processes.spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]  # fmt: skip
    codes = sorted(processes.wait(p, "a racing submit") for p in both)
    errors = "".join(p.stderr.read() for p in both)
    assert codes == [0, 2], errors
    assert "over the daily cap of nanophoto" in errors
    assert len(sim_tasks(sim)) == 1
