"""Whether the dashboard runs over SSH (the library's opener has none there: we copy)."""

from __future__ import annotations

import os


def over_ssh(env: dict[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    return bool(env.get("SSH_CONNECTION") or env.get("SSH_TTY") or env.get("SSH_CLIENT"))
