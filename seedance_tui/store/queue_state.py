"""The batch queue (jobs stored as `queued` tasks, sent one at a time within each key's
rate budget) and the app's small persisted flags (`app_state`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..caps import Window
from ..models import JobSpec, Provider, Task, TaskStatus, iso
from .connection import Connection
from .lifecycle import add_event_row, insert_new
from .rows import SELECT_TASKS, read_task
from .spending import costs_of, enforce


class QueueState(Connection):
    def enqueue(
        self,
        jobs: list[tuple[JobSpec, int | None, str | None]],
        now: float,
        windows: Sequence[Window] = (),
        over_cap: bool = False,
    ) -> list[Task]:
        """Queue (spec, estimate, key fingerprint) jobs as `queued` tasks, all in one
        transaction: a batch is queued whole or not at all, and only when its total
        passes no cap of `windows` (checked in the same transaction). Nothing is sent."""
        tasks = []
        with self._tx() as tx:
            if not over_cap:
                enforce(tx, windows, costs_of(jobs))
            for offset, (spec, estimate, key_fingerprint) in enumerate(jobs):
                at = now + offset * 0.001  # keeps the batch's order in a time sort
                task = insert_new(
                    tx, spec, TaskStatus.QUEUED, at, estimate, key_fingerprint, None,
                    over_cap=over_cap,
                )  # fmt: skip
                detail = f"estimate={estimate}" + (
                    " over the caps (--over-cap)" if over_cap else ""
                )
                add_event_row(tx, task.id, at, "queued", task.status, detail)
                tasks.append(task)
        return tasks

    def next_queued(self, providers: list[str] | None = None) -> Task | None:
        """The oldest queued task (of these providers, when given)."""
        sql = f"{SELECT_TASKS} WHERE status='queued'"
        args: list[Any] = []
        if providers is not None:
            if not providers:
                return None
            sql += f" AND provider IN ({','.join('?' * len(providers))})"
            args += providers
        rows = self._tasks(sql + " ORDER BY created_at, id LIMIT 1", args)
        return rows[0] if rows else None

    def count_queued(self) -> dict[str, int]:
        """Queued tasks per provider."""
        return dict(
            self._all(
                "SELECT provider, count(*) FROM tasks WHERE status='queued' GROUP BY provider"
            )
        )

    def claim_queued(self, id: str, now: float, windows: Sequence[Window] = ()) -> Task | None:
        """Turn a queued task into a submission intent owned by this process, unless another
        instance took it first (None), once the caps of `windows` allow its estimate (a
        job queued with `over_cap` passes them): the check and the claim in one
        transaction, so a job is never sent twice nor past a cap."""
        with self._tx() as tx:
            row = tx.execute(
                "SELECT status, over_cap, provider, credits_estimated FROM tasks WHERE id=?",
                (id,),
            ).fetchone()
            if row is None or row[0] != TaskStatus.QUEUED.value:
                return None
            if not row[1]:
                enforce(tx, windows, {Provider(row[2]): (row[3] or 0, 1)})
            tx.execute(
                "UPDATE tasks SET status='submitting', owner=?, updated_at=?, committed_at=? "
                "WHERE id=? AND status='queued'",
                (self.owner, iso(now), iso(now), id),
            )
            add_event_row(tx, id, now, "intent", TaskStatus.SUBMITTING, "from the queue")
            return read_task(tx, id)

    def get_state(self, name: str) -> str | None:
        row = self._one("SELECT value FROM app_state WHERE name=?", (name,))
        return row[0] if row else None

    def set_state(self, name: str, value: str | None) -> None:
        with self._tx() as tx:
            if value is None:
                tx.execute("DELETE FROM app_state WHERE name=?", (name,))
            else:
                tx.execute(
                    "INSERT INTO app_state (name, value) VALUES (?, ?) "
                    "ON CONFLICT(name) DO UPDATE SET value=excluded.value",
                    (name, value),
                )
