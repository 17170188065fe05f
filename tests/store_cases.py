"""Histories that store tests of several modules build alike."""

from __future__ import annotations

from seedance_tui.models import Provider, Task, TaskStatus


def tied_tasks() -> list[Task]:
    """Tasks in every status and both providers, many of them created at the same
    millisecond (a keyset page must not lose or repeat rows that tie on created_at)."""
    statuses = [TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.ORPHANED,
                TaskStatus.PROCESSING, TaskStatus.REJECTED]  # fmt: skip
    tasks = []
    for i in range(240):
        created = 1_800_000_000.0 + (i // 6)  # six tasks per instant
        tasks.append(
            Task(
                id=f"{int(created * 1000):012x}{i:08x}",
                provider=list(Provider)[i % 2],
                status=statuses[i % len(statuses)],
                prompt=f"{'lantern' if i % 3 else 'koi'} {i}",
                params={"mode": "text-to-video"},
                created_at=created,
                task_id=f"t{i}",
            )  # fmt: skip
        )
    return tasks
