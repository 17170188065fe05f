"""Output that goes where it is read: a reader that stops early (`| head`) ends a command
quietly, and a number out of range is a usage error, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from seedance_tui import cli
from seedance_tui.models import Provider, Task, TaskStatus
from seedance_tui.store import Store, new_task_id

EXE = str(Path(sys.executable).with_name("seedance-tui"))
PIPE_CLOSED = 141  # 128 + SIGPIPE, as any Unix tool whose reader went away


def make_history(path: Path, count: int) -> list[Task]:
    now = time.time()
    tasks = [
        Task(
            id=new_task_id(now - count + i),
            provider=Provider.NANOPHOTO,
            status=TaskStatus.COMPLETED,
            prompt=f"a lantern over the harbor, take {i}",
            params={"mode": "text-to-video", "resolution": "720p", "duration": "4"},
            created_at=now - count + i,
            task_id=f"t{i}",
            credits_estimated=4,
            credits_charged=4,
            video_urls=(f"https://cdn.example/{i}.mp4",),
            completed_at=now - count + i + 40,
        )  # fmt: skip
        for i in range(count)
    ]
    store = Store.open(path)
    try:
        store.bulk_import(tasks)
    finally:
        store.close()
    return tasks


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> tuple[Path, list[Task]]:
    path = tmp_path_factory.mktemp("history") / "h.db"
    return path, make_history(path, 3000)


def commands(task: Task) -> list[list[str]]:
    return [
        ["list"], ["list", "--json"], ["list", "--limit", "0"], ["list", "--json", "--limit", "0"],
        ["export"], ["export", "--format", "csv"], ["export", "--format", "json"],
        ["status", task.id, "--no-refresh"], ["status", task.id, "--no-refresh", "--json"],
        ["credits"], ["credits", "--json"], ["history", "stats"], ["history", "stats", "--json"],
        ["history", "path"], ["queue", "status"], ["queue", "status", "--json"], ["key", "list"],
        ["config", "show"], ["config", "show", "--json"], ["config", "path"],
        ["--help"], ["list", "--help"], ["--version"],
    ]  # fmt: skip


def test_every_command_ends_quietly_when_its_reader_is_gone(history) -> None:
    """Standard output is a pipe nobody reads any more: the first write fails (EPIPE)."""
    db, tasks = history
    env = {**os.environ, "SEEDANCE_TUI_DB": str(db)}
    for argv in commands(tasks[0]):
        read_end, write_end = os.pipe()
        os.close(read_end)
        try:
            done = subprocess.run(
                [EXE, *argv], stdout=write_end, stderr=subprocess.PIPE, env=env, timeout=120
            )
        finally:
            os.close(write_end)
        err = done.stderr.decode()
        # argparse prints --help and --version itself and ignores a failed write by design.
        expected = 0 if {"--help", "--version"} & set(argv) else PIPE_CLOSED
        assert done.returncode == expected, (argv, done.returncode, err)
        assert err == "", (argv, err)  # no traceback, no "Exception ignored"


def test_list_piped_into_head(history) -> None:
    """The reader takes one line and leaves while the command is still writing."""
    db, _ = history
    proc = subprocess.Popen(
        [EXE, "--db", str(db), "list", "--limit", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        first = proc.stdout.readline()
        proc.stdout.close()  # 3000 rows are far more than a pipe holds: the writer is blocked
        err = proc.stderr.read().decode()
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert first.startswith(b"id ")
    assert code == PIPE_CLOSED and err == "", err


@pytest.mark.parametrize("limit", ["99999999999999999999", str(2**63), "-1", "1e3", "ten"])
def test_a_limit_out_of_range_is_a_usage_error(limit, tmp_path, capsys) -> None:
    assert cli.main(["--db", str(tmp_path / "h.db"), "list", "--limit", limit]) == 2
    err = capsys.readouterr().err
    assert "--limit" in err and "Traceback" not in err


def test_the_largest_limit_lists_everything(history, capsys) -> None:
    db, tasks = history
    assert cli.main(["--db", str(db), "list", "--limit", str(2**63 - 1)]) == 0
    assert len(capsys.readouterr().out.splitlines()) == len(tasks) + 1  # and the header


@pytest.mark.parametrize(
    "argv",
    [
        ["simulator", "--port", "99999999999999999999"],
        ["simulator", "--port", "-5"],
        ["serve", "--port", "0"],
        ["simulator", "--failure-rate", "nan"],
        ["simulator", "--generation-time", "nan", "inf"],
    ],
)
def test_other_numbers_out_of_range_are_usage_errors(argv, capsys) -> None:
    try:
        code = cli.main(argv)
    except SystemExit as exc:
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert "error" in err and "Traceback" not in err
