"""A task's life in the history: the intent written before its request is sent, the
provider's answers, its end, the poll leases that keep one poller per task, and its
events. Each write is one short transaction, committed before the caller goes on."""

from __future__ import annotations

import json
import sqlite3

from ..models import JobSpec, Task, TaskStatus, TaskUpdate, from_iso, iso
from .connection import Connection
from .errors import TaskNotFoundError
from .request_ledger import generate_left
from .rows import (
    PLACEHOLDERS,
    TASK_COLUMNS,
    new_task_id,
    owner_alive,
    read_task,
    sane_credits,
    sane_seconds,
    task_row,
)


def add_event_row(
    tx: sqlite3.Connection,
    id: str,
    now: float,
    kind: str,
    status: TaskStatus | None,
    detail: str | None,
) -> None:
    tx.execute(
        "INSERT INTO events (task, at, kind, status, detail) VALUES (?,?,?,?,?)",
        (id, iso(now), kind, status.value if status else None, (detail or "")[:1000]),
    )


INSERT_NEW = (
    f"INSERT INTO tasks ({TASK_COLUMNS}, committed_at, over_cap) VALUES ({PLACEHOLDERS},?,?)"
)


def insert_new(
    tx: sqlite3.Connection, spec: JobSpec, status: TaskStatus, now: float,
    estimate: int | None, key_fingerprint: str | None, owner: str | None,
    group: str | None = None, over_cap: bool = False,
) -> Task:  # fmt: skip
    """Insert the row of a job not yet sent (submitting, or queued in a batch). A
    submission's money is committed now (`committed_at`); a queued job's when it leaves
    the queue."""
    task = Task(
        id=new_task_id(now), provider=spec.provider, status=status, prompt=spec.prompt,
        params=spec.params(), created_at=now, key_fingerprint=key_fingerprint,
        credits_estimated=estimate, updated_at=now, group=group,
    )  # fmt: skip
    committed = iso(now) if status is TaskStatus.SUBMITTING else None
    tx.execute(INSERT_NEW, (*task_row(task, owner), committed, int(over_cap)))
    return task


class Lifecycle(Connection):
    def _task_after(self, tx: sqlite3.Connection, id: str) -> Task:
        task = read_task(tx, id)
        if task is None:
            raise TaskNotFoundError(id, path=self.path)
        return task

    def create_intent(
        self, spec: JobSpec, *, estimate: int | None, key_fingerprint: str | None, now: float
    ) -> Task:
        """Record a submission before it is sent (status `submitting`), committed."""
        with self._tx() as tx:
            task = insert_new(
                tx, spec, TaskStatus.SUBMITTING, now, estimate, key_fingerprint, self.owner
            )
            add_event_row(tx, task.id, now, "intent", task.status, f"estimate={estimate}")
        return task

    def record_submitted(
        self, id: str, answer_task_id: str, update: TaskUpdate, now: float
    ) -> Task:
        """The provider accepted the job: its task id and first answer, committed."""
        with self._tx() as tx:
            tx.execute(
                "UPDATE tasks SET task_id=?, status=?, submitted_at=?, updated_at=?, owner=NULL "
                "WHERE id=?",
                (answer_task_id, TaskStatus.PROCESSING.value, iso(now), iso(now), id),
            )
            add_event_row(
                tx, id, now, "submitted", TaskStatus.PROCESSING,
                f"task_id={answer_task_id} {update.summary}",
            )  # fmt: skip
            self._apply(tx, id, update, now, event=False)
            return self._task_after(tx, id)

    def record_refusal(self, id: str, status: TaskStatus, error: str, now: float) -> Task:
        """The submission ended without a task id: `rejected` (refused), `cancelled` (its
        request never left) or `orphaned` (it left; the outcome is unknown)."""
        with self._tx() as tx:
            tx.execute(
                "UPDATE tasks SET status=?, error=?, updated_at=?, completed_at=?, owner=NULL "
                "WHERE id=? AND task_id IS NULL",
                (status.value, error, iso(now), iso(now), id),
            )
            add_event_row(tx, id, now, "status", status, error)
            return self._task_after(tx, id)

    def record_lost(self, id: str, error: str, now: float) -> Task:
        """The provider no longer knows an accepted task (asked with the key it was
        submitted with): `orphaned`, its credits left as the server last reported them
        (it may have rendered and been charged; no refund is booked that no server
        reported)."""
        with self._tx() as tx:
            tx.execute(
                "UPDATE tasks SET status=?, error=?, updated_at=?, completed_at=?, "
                "poll_lease_until=NULL WHERE id=? AND status IN ('submitting', 'processing')",
                (TaskStatus.ORPHANED.value, error, iso(now), iso(now), id),
            )
            add_event_row(tx, id, now, "status", TaskStatus.ORPHANED, error)
            return self._task_after(tx, id)

    def apply_update(self, id: str, update: TaskUpdate, now: float) -> tuple[Task, bool]:
        """Apply a status answer; returns the task and whether anything visible changed."""
        with self._tx() as tx:
            changed = self._apply(tx, id, update, now, event=True)
            return self._task_after(tx, id), changed

    def _apply(
        self, tx: sqlite3.Connection, id: str, update: TaskUpdate, now: float, *, event: bool
    ) -> bool:
        row = tx.execute(
            "SELECT status, credits_charged, credits_refunded, credits_estimated, video_urls, "
            "error, generation_time, submitted_at FROM tasks WHERE id=?",
            (id,),
        ).fetchone()
        if row is None:
            raise TaskNotFoundError(id, path=self.path)
        old_status = TaskStatus(row[0])
        if old_status.is_terminal and old_status is not TaskStatus.ORPHANED:
            return False  # a late answer never reopens a finished task
        charged, refunded, estimated = row[1], row[2], row[3]
        status = update.status
        reported = sane_credits(update.credits_charged)
        if reported:
            charged = max(charged or 0, reported)
        if status is TaskStatus.FAILED:
            # Failed renders are refunded (both providers' docs). When the server only ever
            # said "0" (seedance15pro reports 0 once refunded), the charge was the estimate.
            if not charged:
                charged = estimated
            refunded = charged or 0
        urls = json.dumps(list(update.video_urls)) if update.video_urls else row[4]
        error = update.error if update.error else row[5]
        reported_time = sane_seconds(update.generation_time)
        generation_time = reported_time if reported_time is not None else row[6]
        completed_at = None
        if status.is_terminal:
            completed_at = iso(now)
            if generation_time is None and row[7]:
                # From the submission to now; a clock set back can make it negative.
                generation_time = sane_seconds(round(now - (from_iso(row[7]) or now), 1))
        new = (status.value, charged, refunded, urls, error, generation_time)
        old = (row[0], row[1], row[2], row[4], row[5], row[6])
        changed = new != old
        tx.execute(
            "UPDATE tasks SET status=?, credits_charged=?, credits_refunded=?, video_urls=?, "
            "error=?, generation_time=?, updated_at=?, last_polled_at=?, poll_lease_until=NULL, "
            "completed_at=COALESCE(completed_at, ?) WHERE id=?",
            (*new, iso(now), iso(now), completed_at, id),
        )
        if event and (changed or update.summary):
            kind = "status" if status is not old_status else "answer"
            add_event_row(tx, id, now, kind, status, update.summary)
        if update.oddities:
            # What the server sent that could not be used, kept for the user to see.
            add_event_row(tx, id, now, "oddity", None, "; ".join(update.oddities))
        return changed

    def add_event(
        self, id: str, kind: str, detail: str, now: float, status: TaskStatus | None = None
    ) -> None:
        with self._tx() as tx:
            add_event_row(tx, id, now, kind, status, detail)

    def set_local_path(self, id: str, path: str | None, now: float) -> None:
        with self._tx() as tx:
            tx.execute(
                "UPDATE tasks SET local_path=?, updated_at=? WHERE id=?", (path, iso(now), id)
            )

    # -- poll leases -------------------------------------------------------------------

    def claim_poll(
        self,
        id: str,
        now: float,
        min_interval: float,
        lease: float = 120.0,
        slack: float = 30.0,
        own: float | None = None,
    ) -> bool:
        """Take a task's poll: refused while another poll of it is in flight (its lease) or
        when some instance polled it within min_interval.

        One statement, so two instances sharing the file never both claim the same poll.
        The lease is released with the answer (`_apply`) or by `release_poll`. The row's
        `owner` names the poller holding the lease: a lease whose poller is gone (killed
        on this machine) ends with it, instead of delaying the task until it expires. A
        poll time more than `slack` in the future, or a lease longer than `lease` from
        now, is not believed (it was written before the clock was set back). `own`: the
        poll time this instance wrote last; if it is still the task's, the spacing is this
        instance's own schedule's business.
        """
        owner = self.owner
        with self._tx() as tx:
            cursor = tx.execute(
                "UPDATE tasks SET last_polled_at=?, poll_lease_until=?, owner=? WHERE id=? "
                "AND status IN ('processing') "
                "AND (last_polled_at IS NULL OR last_polled_at <= ? OR last_polled_at > ? "
                "OR last_polled_at = ?) "
                "AND (poll_lease_until IS NULL OR poll_lease_until <= ? "
                "OR poll_lease_until > ?)",
                (
                    iso(now), iso(now + lease), owner, id, iso(now - min_interval),
                    iso(now + slack), iso(own) if own is not None else "", iso(now),
                    iso(now + lease + slack),
                ),
            )  # fmt: skip
            if cursor.rowcount == 1:
                return True
            held = tx.execute(
                "SELECT owner, poll_lease_until FROM tasks WHERE id=? "
                "AND status IN ('processing') AND poll_lease_until > ?",
                (id, iso(now)),
            ).fetchone()
            if held is None or not held[0] or held[0] == owner or owner_alive(held[0]):
                return False
            cursor = tx.execute(
                "UPDATE tasks SET last_polled_at=?, poll_lease_until=?, owner=? WHERE id=? "
                "AND owner=? AND poll_lease_until=?",
                (iso(now), iso(now + lease), owner, id, held[0], held[1]),
            )
            return cursor.rowcount == 1

    def release_poll(self, id: str, now: float) -> None:
        """The poll ended without an answer to apply: free the task for the next poll."""
        with self._tx() as tx:
            tx.execute(
                "UPDATE tasks SET poll_lease_until=NULL, last_polled_at=? WHERE id=? "
                "AND poll_lease_until IS NOT NULL",
                (iso(now), id),
            )

    # -- start-up ----------------------------------------------------------------------

    def orphan_stale_intents(self, now: float, max_age: float = 900.0) -> list[Task]:
        """Intent rows whose submitter is gone: `orphaned` when their `generate` may have
        left (the outcome is unknown), `cancelled` when the ledger shows it never did
        (stopped while waiting for budget, say: nothing was sent, nothing charged).

        Intents older than the ledger's link between requests and tasks (migration
        m006) cannot be told apart: they stay `orphaned`."""
        rows = self._all(
            "SELECT id, owner, created_at FROM tasks WHERE status='submitting' AND task_id IS NULL"
        )
        linked_since = self._one(
            "SELECT applied_at FROM _migrations WHERE name='m006_request_task'"
        )
        linked_from = from_iso(linked_since[0]) if linked_since and linked_since[0] else None
        ended = []
        for id, owner, created in rows:
            created_at = from_iso(created) or now
            if owner == self.owner:
                continue
            if owner_alive(owner) and now - created_at < max_age:
                continue
            linked = linked_from is not None and created_at >= linked_from
            if linked and not generate_left(self, id):
                status, error = (
                    TaskStatus.CANCELLED,
                    (
                        "stopped before its request was sent (the program ended while it "
                        "waited): nothing was sent and nothing charged; submit it again"
                    ),
                )
            else:
                status, error = (
                    TaskStatus.ORPHANED,
                    (
                        "interrupted while submitting: the provider may have accepted and "
                        "charged this job, but its task id was never received. Neither API can "
                        "list tasks; check the provider's dashboard before re-running."
                    ),
                )
            ended.append(self.record_refusal(id, status, error, now))
        return ended
