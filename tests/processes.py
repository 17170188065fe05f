"""Helpers for tests that start a server process (`serve`, Chromium) on loopback."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_http(process: subprocess.Popen, url: str, what: str, seconds: float = 15) -> None:
    """Wait until `url` answers with a success; fail if the process exits or time runs out."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).is_success:
                return
        if process.poll() is not None:
            output = process.stdout.read().decode() if process.stdout else ""
            pytest.fail(f"{what} exited at start: {output}")
        time.sleep(0.2)
    pytest.fail(f"{what} did not answer within {seconds:g} s")


def stop(process: subprocess.Popen) -> None:
    """End the process group this test started (started with start_new_session=True:
    chromium forks helpers)."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
