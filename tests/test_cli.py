"""The headless CLI end to end: the contract's commands, exit codes and JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from conftest import NANO_KEY, SEED_KEY, run_cli
from processes import wait_for

from seedance_tui.paths import config_path
from seedance_tui.simulator import SimConfig

FAST = """
[polling]
min_interval = 0.1
target_latency = 0.3
max_interval = 1.0
prior = [0.3, 1.5]
"""

TASK_FIELDS = {
    "id", "provider", "task_id", "status", "prompt", "params", "credits_estimated",
    "credits_charged", "video_urls", "error", "created_at", "completed_at", "generation_time",
}  # fmt: skip


@pytest.fixture
def fast_config(isolated_home: Path) -> Path:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(FAST)
    return path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    return run_cli(*argv)


def requests_seen(sim) -> int:
    return httpx.get(sim.base_url + "/_sim/ledger").json()["totals"]["requests"]


def test_help_lists_the_commands(processes):
    for argv in (["seedance-tui", "--help"], [sys.executable, "-m", "seedance_tui", "--help"]):
        if argv[0] == "seedance-tui":
            argv[0] = str(Path(sys.executable).with_name("seedance-tui"))
        out = processes.run(argv, text=True, check=True).stdout
        for command in ("submit", "status", "list", "credits", "watch", "simulator"):
            assert command in out


SUBMISSIONS = [
    ["--provider", "nanophoto", "--prompt", "a dog on a beach", "--resolution", "480p", "--duration", "8", "--audio"],
    ["--provider", "nanophoto", "--prompt", "it comes alive", "--image", "https://static.nanophoto.ai/demo/a.webp", "--aspect", "9:16"],
    ["--provider", "seedance15pro", "--prompt", "night market", "--aspect", "1:1", "--duration", "10"],
    ["--provider", "seedance15pro", "--prompt", "a frame moves", "--image", "https://cdn.example.com/f.png", "--sound"],
]  # fmt: skip


def test_submit_wait_json_for_each_provider_and_mode_then_list_and_credits(
    capsys, sim_env, sim, fast_config
):
    ids = []
    for args in SUBMISSIONS:
        code, out, _ = run(capsys, "submit", *args, "--wait", "--json")
        task = json.loads(out)
        assert code == 0, task
        assert set(task) >= TASK_FIELDS
        assert task["status"] == "completed"
        assert task["video_urls"] and task["credits_charged"] == task["credits_estimated"]
        ids.append(task["id"])
    assert [json.loads(run(capsys, "status", i, "--json")[1])["status"] for i in ids] == [
        "completed"
    ] * 4

    code, out, _ = run(capsys, "list", "--json")
    listed = json.loads(out)
    assert code == 0 and [t["id"] for t in listed] == ids[::-1]  # newest first
    assert {t["params"]["mode"] for t in listed} == {"text-to-video", "image-to-video"}

    code, out, _ = run(capsys, "credits", "--json")
    ours = json.loads(out)["providers"]
    theirs = httpx.get(sim.base_url + "/_sim/ledger").json()["providers"]
    assert ours["nanophoto"]["all"] == theirs["nanophoto"]["net"] == 8 + 4  # 480p 8s audio; 720p 4s
    assert ours["seedance15pro"]["all"] == theirs["seedance15pro"]["net"] == 130 + 130


@pytest.mark.parametrize(
    "sim_config", [SimConfig(generation_time=(0.3, 0.6), failure_rate=1.0, seed=3)], indirect=True
)
def test_a_failed_job_exits_1_and_counts_as_refunded(capsys, sim_env, sim, fast_config):
    code, out, _ = run(capsys, "submit", "--prompt", "doomed", "--wait", "--json")
    task = json.loads(out)
    assert code == 1 and task["status"] == "failed" and task["error"]
    credits = json.loads(run(capsys, "credits", "--json")[1])["providers"]["nanophoto"]
    assert credits["all"] == 0 and credits["refunded"] == 4


BAD_INPUTS = [
    (["--prompt", ""], "prompt"),
    (["--prompt", "x" * 1001], "prompt"),
    (["--prompt", "x", "--mode", "image"], "image_urls"),
    (["--prompt", "x", "--image", "data:image/png;base64,AAAA"], "image_urls"),
    (["--prompt", "x", "--image", "not a url"], "image_urls"),
    (["--prompt", "x", "--resolution", "4k"], "resolution"),
    (["--prompt", "x", "--duration", "7"], "duration"),
    (["--prompt", "x", "--aspect", "square"], "aspect_ratio"),
    (["--provider", "seedance15pro", "--prompt", "x", "--duration", "8"], "duration"),
    (["--provider", "seedance15pro", "--prompt", "x", "--image", "https://x.org/a.png", "--aspect", "16:9"], "aspect_ratio"),
    (["--provider", "seedance15pro", "--prompt", "x", "--resolution", "720p"], "resolution"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "field"), BAD_INPUTS)
def test_bad_input_exits_2_names_the_field_and_sends_nothing(capsys, sim_env, sim, args, field):
    code, out, err = run(capsys, "submit", *args)
    assert code == 2
    assert f"error: {field}:" in err
    assert "Traceback" not in err + out
    assert requests_seen(sim) == 0


def test_usage_errors_exit_2(capsys, sim_env, sim):
    code, _, err = run(capsys, "submit", "--provider", "nope", "--prompt", "x")
    assert code == 2 and "error: " in err and "--provider" in err
    assert run(capsys, "status", "no-such-task")[0] == 2


def test_no_key_is_a_clear_usage_error(capsys, monkeypatch, sim_env, sim):
    monkeypatch.delenv("NANOPHOTO_API_KEY")
    code, _, err = run(capsys, "submit", "--prompt", "x")
    assert code == 2 and "NANOPHOTO_API_KEY" in err
    assert requests_seen(sim) == 0


# -- crash and recover -----------------------------------------------------------------


EXE = str(Path(sys.executable).with_name("seedance-tui"))


def test_sigkill_while_processing_then_watch_brings_every_task_to_its_end(
    sim_env, sim, fast_config, tmp_path, processes
):
    """Four renders that stay processing until the test finishes them: a `watch` is
    killed once it has polled each of them (a poll of it may be in flight: its lease
    ends with it), the renders finish, a second `watch` brings every task to its end."""
    env = {**os.environ, **sim_env, "SEEDANCE_TUI_DB": str(tmp_path / "h.db")}
    submits = []
    for i in range(4):
        httpx.post(sim.base_url + "/_sim/next", json={"gen_time": 3600}).raise_for_status()
        provider = "nanophoto" if i % 2 else "seedance15pro"
        argv = [EXE, "submit", "--provider", provider, "--prompt", f"job {i}"]
        submits.append(processes.spawn(argv, env=env, stderr=subprocess.PIPE, text=True))
    for submit in submits:
        assert processes.wait(submit, "a submit") == 0, submit.stderr.read()
    watcher = processes.spawn(
        [EXE, "watch"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_for(
        lambda: requests_seen(sim) >= 8 or watcher.poll() is not None,
        "the first watch polled each task (4 submissions + 4 status requests)",
    )
    assert watcher.poll() is None, "the first watch ended while every render was processing"
    processes.kill(watcher)
    held = httpx.get(sim.base_url + "/_sim/tasks").json()["tasks"]
    assert len(held) == 4 and all(t["status"] == "processing" for t in held)
    for n, sim_task in enumerate(held):
        outcome = (
            {"status": "failed", "error": "render failed"} if n == 1 else {"status": "completed"}
        )
        httpx.post(
            sim.base_url + f"/_sim/tasks/{sim_task['task_id']}", json=outcome
        ).raise_for_status()

    again = processes.spawn(
        [EXE, "watch"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    code = processes.wait(again, "the second watch")
    out, err = again.stdout.read(), again.stderr.read()
    listed = json.loads(
        processes.run([EXE, "list", "--json"], env=env, text=True, check=True).stdout
    )
    statuses = sorted(t["status"] for t in listed)
    assert len(listed) == 4 and statuses == ["completed", "completed", "completed", "failed"]
    assert code == 1, err  # one failed
    held = httpx.get(sim.base_url + "/_sim/tasks").json()["tasks"]
    assert sorted(t["task_id"] for t in held) == sorted(t["task_id"] for t in listed)  # none twice
    assert {t["task_id"]: t["status"] for t in held} == {t["task_id"]: t["status"] for t in listed}
    for stream in (out, err):
        assert NANO_KEY not in stream and SEED_KEY not in stream


def test_a_key_flag_comes_first_and_is_never_printed(
    capsys, monkeypatch, sim_env, sim, fast_config
):
    monkeypatch.setenv("NANOPHOTO_API_KEY", "invalid-env-key")  # the simulator refuses it
    code, out, err = run(
        capsys, "--key", f"nanophoto={NANO_KEY}", "submit", "--prompt", "x", "--json"
    )
    assert code == 0 and json.loads(out)["status"] == "processing"
    assert NANO_KEY not in out + err
    code, out, err = run(capsys, "--key", f"nope={NANO_KEY}", "list")
    assert code == 2
    assert NANO_KEY not in out + err
