"""A task and its row of `tasks`, both ways (the one place that knows the columns), and
the values the store keeps in them: ids, owners, sane figures."""

from __future__ import annotations

import json
import math
import os
import socket
import sqlite3
from typing import Any

from ..models import Provider, Task, TaskStatus, from_iso, iso

TASK_COLUMNS = (
    "id, provider, task_id, key_fingerprint, status, prompt, params, credits_estimated, "
    "credits_charged, credits_refunded, video_urls, error, created_at, submitted_at, "
    'completed_at, updated_at, generation_time, last_polled_at, owner, local_path, "group"'
)
_NAMES = TASK_COLUMNS.split(", ")
ID, CREATED_AT = _NAMES.index("id"), _NAMES.index("created_at")
PLACEHOLDERS = ",".join("?" * len(_NAMES))
INSERT_TASK = f"INSERT INTO tasks ({TASK_COLUMNS}) VALUES ({PLACEHOLDERS})"
SELECT_TASKS = f"SELECT {TASK_COLUMNS} FROM tasks"

# Sane ranges of what the store records (a server's figure outside them is dropped).
MAX_CREDITS = 1_000_000
MAX_GENERATION_SECONDS = 86_400.0


def task_row(task: Task, owner: str | None = None) -> tuple:
    """A task as the row INSERT_TASK takes. `owner`: the process submitting it (None for
    a task inserted whole: nobody is submitting it)."""
    return (
        task.id, task.provider.value, task.task_id, task.key_fingerprint, task.status.value,
        task.prompt, json.dumps(task.params), task.credits_estimated, task.credits_charged,
        task.credits_refunded, json.dumps(list(task.video_urls)), task.error,
        iso(task.created_at), iso(task.submitted_at), iso(task.completed_at),
        iso(task.updated_at or task.created_at), task.generation_time,
        iso(task.last_polled_at), owner, task.local_path, task.group,
    )  # fmt: skip


def task_of(row: tuple) -> Task:
    """The task of a row of SELECT_TASKS."""
    (
        id, provider, task_id, key_fp, status, prompt, params, est, charged, refunded, urls,
        error, created, submitted, completed, updated, gen_time, polled, _owner, local_path,
        group,
    ) = row  # fmt: skip
    return Task(
        id=id,
        provider=Provider(provider),
        status=TaskStatus(status),
        prompt=prompt,
        params=json.loads(params),
        created_at=from_iso(created) or 0.0,
        task_id=task_id,
        key_fingerprint=key_fp,
        credits_estimated=est,
        credits_charged=charged,
        credits_refunded=refunded or 0,
        video_urls=tuple(json.loads(urls or "[]")),
        error=error,
        submitted_at=from_iso(submitted),
        completed_at=from_iso(completed),
        generation_time=gen_time,
        updated_at=from_iso(updated),
        last_polled_at=from_iso(polled),
        local_path=local_path,
        group=group,
    )


def read_task(conn: sqlite3.Connection, id: str) -> Task | None:
    row = conn.execute(f"{SELECT_TASKS} WHERE id=?", (id,)).fetchone()
    return task_of(row) if row else None


def new_task_id(now: float) -> str:
    """Time-ordered id: 12 hex digits of milliseconds, 8 random."""
    return f"{int(now * 1000):012x}{os.urandom(4).hex()}"


def this_owner() -> str:
    """Who writes an intent or holds a poll lease: this process, on this host."""
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_alive(owner: str | None) -> bool:
    """Is the process that wrote an intent row (or holds a lease) still running? A
    process on another machine sharing the file cannot be told dead: it counts as alive."""
    if not owner or ":" not in owner:
        return False
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname():
        return True
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError):
        return False
    except PermissionError:
        return True
    return True


def sane_credits(value: Any) -> int | None:
    """A credit count the store records: a whole number in 0..MAX_CREDITS, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        return None
    return int(value) if 0 <= value <= MAX_CREDITS else None


def sane_seconds(value: Any) -> float | None:
    """A render time the store records: finite, in 0..MAX_GENERATION_SECONDS, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or not 0 <= value <= MAX_GENERATION_SECONDS:
        return None
    return float(value)


def profile_of(provider: str, params: dict[str, Any]) -> tuple:
    """What a render's duration depends on: the scheduler learns ETAs per profile."""
    return (provider, params.get("resolution"), params.get("duration"), bool(params.get("audio")))
