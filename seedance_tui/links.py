"""Where a finished render is: saved in the library, its file gone, or only its link
(likely expired after the provider's TTL). Light on purpose (no asyncio, no HTTP):
`list` marks each row with it, the dashboard and the library ask it too."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from .models import Task, TaskStatus

if TYPE_CHECKING:
    from .config import Settings


def saved_file(task: Task) -> Path | None:
    """The task's local file when it is recorded and still there."""
    if task.local_path:
        path = Path(task.local_path)
        if path.is_file():
            return path
    return None


def likely_expired(task: Task, ttl_hours: float, now: float) -> bool:
    """A completed render, never saved, whose link is older than the provider's TTL."""
    if task.status is not TaskStatus.COMPLETED or not task.video_urls:
        return False
    if saved_file(task) is not None:
        return False
    finished = task.completed_at or task.submitted_at or task.created_at
    return now - finished > ttl_hours * 3600.0


def link_state(task: Task, settings: Settings, now: float | None = None) -> str | None:
    """What the TUI marks on a row.

    "saved": the local file exists; "missing": a file was recorded but is gone;
    "expired": never saved and the link is likely dead; "remote": only the link, still
    fresh; None: not a completed render.
    """
    if task.status is not TaskStatus.COMPLETED or not task.video_urls:
        return None
    if saved_file(task) is not None:
        return "saved"
    now = time.time() if now is None else now
    ttl = settings.providers[task.provider].link_ttl_hours
    if likely_expired(task, ttl, now):
        return "expired"
    return "missing" if task.local_path else "remote"


__all__ = ["likely_expired", "link_state", "saved_file"]
