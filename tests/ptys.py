"""Running a command with its standard streams on a pseudo-terminal, as a user's
terminal would hold them, and reading every byte it wrote there."""

from __future__ import annotations

import contextlib
import os
import pty
import select
import subprocess
import time
from collections.abc import Sequence

import pytest
from processes import DEADLINE, Processes, stop


def run_on_pty(
    processes: Processes,
    argv: Sequence[str],
    *,
    env: dict[str, str],
    seconds: float = DEADLINE,
    stdout_pipe: bool = False,
) -> tuple[int, bytes, bytes]:
    """Run `argv` with stdin and stderr (and stdout, unless `stdout_pipe`) on a new pty,
    until it ends: (exit code, every byte written to the pty, stdout when piped)."""
    master, slave = pty.openpty()
    try:
        process = processes.spawn(
            list(argv),
            env=env,
            stdin=slave,
            stdout=subprocess.PIPE if stdout_pipe else slave,
            stderr=slave,
        )
    finally:
        os.close(slave)
    seen = bytearray()
    deadline = time.monotonic() + seconds
    try:
        while True:
            if time.monotonic() > deadline:
                stop(process)
                pytest.fail(f"{argv!r} did not end within {seconds:g} s: {bytes(seen)[-2000:]!r}")
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: every holder of the slave side closed it
                    chunk = b""
                if not chunk:
                    break
                seen += chunk
            elif process.poll() is not None:
                # Ended: take what is left in the pty's buffer, then stop.
                with contextlib.suppress(OSError):
                    while select.select([master], [], [], 0.05)[0]:
                        chunk = os.read(master, 65536)
                        if not chunk:
                            break
                        seen += chunk
                break
        code = process.wait(seconds)
        piped = process.stdout.read() if stdout_pipe and process.stdout else b""
    finally:
        os.close(master)
    return code, bytes(seen), piped
