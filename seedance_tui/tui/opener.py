"""Opening a video with the system's opener, when this machine has one the user can see."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys


def over_ssh(env: dict[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    return bool(env.get("SSH_CONNECTION") or env.get("SSH_TTY") or env.get("SSH_CLIENT"))


def system_opener(env: dict[str, str] | None = None) -> list[str] | None:
    """The command that opens a file or URL for the person at this screen, or None.

    Over SSH without a forwarded display, an opener would act on the remote machine where
    nobody is looking: there is none then."""
    env = os.environ if env is None else env
    if sys.platform == "darwin":
        return None if over_ssh(env) else ["open"]
    if sys.platform.startswith("win"):
        return ["explorer"]
    if over_ssh(env) and not (env.get("DISPLAY") or env.get("WAYLAND_DISPLAY")):
        return None
    if not (env.get("DISPLAY") or env.get("WAYLAND_DISPLAY")):
        return None
    for command in ("xdg-open", "gio"):
        path = shutil.which(command)
        if path:
            return [path, "open"] if command == "gio" else [path]
    return None


def open_with(opener: list[str], target: str) -> None:
    """Start the opener detached; its output never reaches the dashboard's terminal."""
    subprocess.Popen(
        [*opener, target],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
