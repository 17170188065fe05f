"""The processes tests start: each in its own process group, owned by the `processes`
fixture (conftest.py), which stops every group at the end of the test — passed, failed
or timed out (pytest-timeout's signal method raises in the test, so teardown runs).

Waits here are for a state (an exit, an HTTP answer, a condition), each with a deadline
that fails the test saying what did not happen. conftest.py also checks, after each
test, that no process it started is still running (`leftovers`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx
import pytest

# Every process a test starts inherits this variable (set per test by conftest.py), so
# `leftovers` finds them in /proc even after their parent died or they left its group.
TEST_MARK = "SEEDANCE_TUI_TEST_MARK"
# Generous: only a broken state ever waits this long; a busy 2-core machine is slow.
DEADLINE = 60.0
POLL_INTERVAL = 0.05  # between two looks at a condition


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate: Callable[[], object], what: str, seconds: float = DEADLINE) -> None:
    """Poll `predicate` until it is true; fail naming `what` when `seconds` pass."""
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {seconds:g} s: {what}")
        time.sleep(POLL_INTERVAL)


def stop(process: subprocess.Popen) -> None:
    """End the process group `process` leads: SIGTERM, then SIGKILL if it lingers; then
    any process of the group that outlived its leader (chromium's helpers)."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    mark = os.environ.get(TEST_MARK)
    if not mark:
        return
    deadline = time.monotonic() + 10
    while members := [pid for pid, _ in leftovers(mark, group=process.pid)]:
        if time.monotonic() > deadline:
            kill_pids(members)
            deadline = time.monotonic() + 10
        time.sleep(POLL_INTERVAL)


def _output(process: subprocess.Popen) -> str:
    parts = []
    for stream in (process.stdout, process.stderr):
        if stream is not None and not stream.closed:
            with contextlib.suppress(OSError, ValueError):
                data = stream.read()
                parts.append(data.decode("utf-8", "replace") if isinstance(data, bytes) else data)
    return "".join(parts)[-2000:]


class Processes:
    """Start processes for one test; `stop_all` ends every one of them."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen] = []

    def spawn(self, argv: Sequence[str], **kwargs) -> subprocess.Popen:
        kwargs.setdefault("start_new_session", True)
        process = subprocess.Popen(list(argv), **kwargs)
        self.started.append(process)
        return process

    def run(
        self, argv: Sequence[str], *, seconds: float = DEADLINE, check: bool = False, **kwargs
    ) -> subprocess.CompletedProcess:
        """Run to its end (its output captured unless told otherwise), within `seconds`."""
        if "stdout" not in kwargs and "stderr" not in kwargs:
            kwargs["stdout"] = kwargs["stderr"] = subprocess.PIPE
        process = self.spawn(argv, **kwargs)
        try:
            out, err = process.communicate(timeout=seconds)
        except subprocess.TimeoutExpired:
            stop(process)
            pytest.fail(f"{' '.join(map(str, argv))!r} did not end within {seconds:g} s")
        done = subprocess.CompletedProcess(process.args, process.returncode, out, err)
        if check:
            assert done.returncode == 0, f"{argv!r} exited {done.returncode}: {err}"
        return done

    def wait(self, process: subprocess.Popen, what: str, seconds: float = DEADLINE) -> int:
        """Wait for `process` to end; fail (after stopping it) if it has not in `seconds`."""
        try:
            return process.wait(seconds)
        except subprocess.TimeoutExpired:
            stop(process)
            pytest.fail(f"{what} did not end within {seconds:g} s: {_output(process)}")

    def kill(self, process: subprocess.Popen) -> None:
        """SIGKILL the process (a crash), and reap it."""
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGKILL)
        process.wait()

    def stop_all(self) -> None:
        for process in reversed(self.started):
            stop(process)
            for stream in (process.stdin, process.stdout, process.stderr):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()


def wait_for_http(
    process: subprocess.Popen, url: str, what: str, seconds: float = DEADLINE
) -> None:
    """Wait until `url` answers with a success; fail if the process exits or time runs out."""

    def answers() -> bool:
        if process.poll() is not None:
            pytest.fail(f"{what} exited at start: {_output(process)}")
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(url, timeout=1).is_success
        return False

    wait_for(answers, f"{what} answers at {url}", seconds)


def leftovers(
    mark: str, *, group: int | None = None, prefix: bool = False
) -> list[tuple[int, str]]:
    """(pid, command line) of the running processes whose environment carries `mark` (or
    a mark starting with it): those a test started, and their children; of process group
    `group` only, if given."""
    needle = f"{TEST_MARK}={mark}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            variables = (entry / "environ").read_bytes().split(b"\0")
            if not any(v == needle or (prefix and v.startswith(needle)) for v in variables):
                continue
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
            if fields[0] == "Z":
                continue  # a zombie: ended, waiting to be reaped
            if group is not None and int(fields[2]) != group:
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError, ValueError):
            continue  # ended meanwhile, or not ours to read
        found.append((int(entry.name), cmdline.strip()))
    return found


def kill_pids(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
