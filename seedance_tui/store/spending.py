"""Money under caps: intents written only when the caps allow them — the check and the
rows in one transaction, so two handles sharing the history can never both pass the
last credits of a cap —, what a period's tasks count (caps.py's rule, summed here), and
settling an orphan's charge by hand."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from .. import caps
from ..caps import Usage, Window
from ..models import JobSpec, Provider, Task, TaskStatus, iso
from .connection import Connection
from .errors import StoreConflictError, TaskNotFoundError
from .lifecycle import add_event_row, insert_new
from .rows import read_task

# Per status, what a period's tasks of a provider count: the net of reported charges,
# and the estimates of tasks with no reported charge (caps.usage_of applies the rule).
USAGE_SQL = (
    "SELECT status, "
    "SUM(CASE WHEN credits_charged IS NOT NULL THEN credits_charged - credits_refunded "
    "ELSE 0 END), "
    "SUM(CASE WHEN credits_charged IS NULL THEN COALESCE(credits_estimated, 0) ELSE 0 END) "
    "FROM tasks WHERE provider = ? AND COALESCE(committed_at, created_at) >= ? "
    "AND COALESCE(committed_at, created_at) < ? "
    "AND status NOT IN ('queued', 'cancelled', 'rejected') GROUP BY status"
)

Job = tuple[JobSpec, int | None, str | None]  # (spec, estimate, key fingerprint)


def usage_in(tx: sqlite3.Connection, provider: Provider, start: float, end: float) -> Usage:
    return caps.usage_of(tx.execute(USAGE_SQL, (provider.value, iso(start), iso(end))).fetchall())


def enforce(
    tx: sqlite3.Connection, windows: Sequence[Window], costs: dict[Provider, tuple[int, int]]
) -> None:
    """CapExceeded when a provider's (cost, jobs) would pass one of its windows' caps,
    counted inside the open transaction."""
    for window in windows:
        cost, jobs = costs.get(window.provider, (0, 0))
        if jobs:
            usage = usage_in(tx, window.provider, window.start, window.end)
            caps.check(window, usage, cost, jobs=jobs)


def costs_of(jobs: Sequence[Job]) -> dict[Provider, tuple[int, int]]:
    """provider → (estimated credits, jobs)."""
    out: dict[Provider, tuple[int, int]] = {}
    for spec, estimate, _fingerprint in jobs:
        cost, count = out.get(spec.provider, (0, 0))
        out[spec.provider] = (cost + (estimate or 0), count + 1)
    return out


class Spending(Connection):
    def create_intents(
        self,
        jobs: Sequence[tuple[JobSpec, int | None, str | None]],
        *,
        now: float,
        windows: Sequence[Window] = (),
        group: str | None = None,
    ) -> list[Task]:
        """Check the caps and write the intents in one transaction (BEGIN IMMEDIATE: a
        second writer waits for this one's commit, then counts its rows)."""
        with self._tx() as tx:
            enforce(tx, windows, costs_of(jobs))
            tasks = []
            for spec, estimate, fingerprint in jobs:
                task = insert_new(
                    tx, spec, TaskStatus.SUBMITTING, now, estimate, fingerprint, self.owner,
                    group=group,
                )  # fmt: skip
                detail = f"estimate={estimate}" + (f" group={group}" if group else "")
                add_event_row(tx, task.id, now, "intent", task.status, detail)
                tasks.append(task)
        return tasks

    def spending(self, provider: Provider, start: float, end: float) -> Usage:
        rows = self._all(USAGE_SQL, (provider.value, iso(start), iso(end)))
        return caps.usage_of(rows)

    def settle(self, id: str, charged: int | None, now: float) -> Task:
        with self._tx() as tx:
            task = read_task(tx, id)
            if task is None:
                raise TaskNotFoundError(id, path=self.path)
            if task.status is not TaskStatus.ORPHANED:
                raise StoreConflictError(
                    f"task {task.short_id} is {task.status.value}, not orphaned: only an "
                    "orphan's charge is settled by hand (the server reports the others)",
                    path=self.path,
                )
            amount = charged or 0
            tx.execute(
                "UPDATE tasks SET credits_charged=?, credits_refunded=0, updated_at=? WHERE id=?",
                (amount, iso(now), id),
            )
            detail = (
                f"settled by the user: charged {amount}"
                if charged is not None
                else "settled by the user: nothing charged"
            )
            add_event_row(tx, id, now, "settled", task.status, detail)
            settled = read_task(tx, id)
            assert settled is not None
            return settled
