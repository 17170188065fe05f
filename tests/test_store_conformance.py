"""Every store behaviour the engine, the request ledger, the commands and the dashboard
rely on — the guarantees `StoreBackend` states (seedance_tui/store/interface.py) —
proven through the public API alone, against every backend.

A backend joins by adding a class like SQLiteBackend to BACKENDS: it opens handles on
one shared history (as many as a test asks for, each as the owner it is given), and
knows how to make the files it must refuse and how to tell that one was left as it was.
Races run each handle on its own thread (a handle belongs to the thread that opened
it), released together by a barrier.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import socket
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any, TypeVar

import pytest
from store_cases import tied_tasks

from seedance_tui.caps import CapExceeded, Usage, Window
from seedance_tui.demo import seed_history
from seedance_tui.models import JobSpec, Provider, Task, TaskStatus, TaskUpdate
from seedance_tui.store import (
    MAX_KEY_PAUSE,
    SCHEMA_VERSION,
    Filter,
    Store,
    StoreBackend,
    StoreConflictError,
    StoreError,
    StoreForeignError,
    StoreNewerError,
    TaskNotFoundError,
)
from seedance_tui.store.pg_schema import SCHEMA_VERSION as PG_SCHEMA_VERSION

SQLITE_STORE = Store
NOW = 1_800_000_000.0  # 2027-01-15 08:00 UTC
T = TypeVar("T")


class SQLiteBackend:
    """The embedded history: one SQLite file."""

    schema_version = SCHEMA_VERSION

    def __init__(self, tmp_path: Path) -> None:
        self.path = tmp_path / "history.db"
        self.tmp_path = tmp_path

    def open(self, owner: str | None = None) -> StoreBackend:
        return Store.open(self.path, owner=owner)

    def open_copy(self, path: Path) -> StoreBackend:
        """The history a `backup_to(path)` wrote."""
        return Store.open(path, create=False)

    def make_foreign(self) -> None:
        """Another program's database where the history would be."""
        with closing(sqlite3.connect(self.path)) as conn, conn:
            conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, amount REAL)")
            conn.execute("INSERT INTO invoices (amount) VALUES (12.5)")

    def make_newer(self) -> None:
        """A history of ours that a newer seedance-tui migrated further."""
        store = self.open()
        store.create_intent(job("from the future"), estimate=4, key_fingerprint="k", now=NOW)
        store.close()
        with closing(sqlite3.connect(self.path)) as conn, conn:
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")

    def snapshot(self) -> tuple[str, frozenset[str]]:
        """The file's bytes, and what lies beside it (no -wal or -shm may appear)."""
        digest = hashlib.sha256(self.path.read_bytes()).hexdigest()
        return digest, frozenset(p.name for p in self.path.parent.iterdir())


class PostgresBackend:
    """Studio mode: a fresh database of the session's throwaway server (conftest.py)."""

    schema_version = PG_SCHEMA_VERSION

    def __init__(self, tmp_path: Path, url: str) -> None:
        self.url = url
        self.tmp_path = tmp_path

    def open(self, owner: str | None = None) -> StoreBackend:
        from seedance_tui.store.postgres import PgStore

        return PgStore.open(self.url, owner=owner)

    def open_copy(self, path: Path) -> StoreBackend:
        """The history a `backup_to(path)` wrote: a SQLite history file."""
        return Store.open(path, create=False)

    def make_foreign(self) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("CREATE TABLE invoices (id SERIAL PRIMARY KEY, amount REAL)")
            conn.execute("INSERT INTO invoices (amount) VALUES (12.5)")

    def make_newer(self) -> None:
        import psycopg

        store = self.open()
        store.create_intent(job("from the future"), estimate=4, key_fingerprint="k", now=NOW)
        store.close()
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("INSERT INTO _migrations VALUES ('pg999_from_the_future', 'later')")

    def snapshot(self) -> Any:
        """Every table of the database with all its rows."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            tables = sorted(
                row[0] for row in conn.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
                )
            )  # fmt: skip
            return {t: sorted(map(repr, conn.execute(f"SELECT * FROM {t}"))) for t in tables}


def _postgres(request: pytest.FixtureRequest, tmp_path: Path) -> PostgresBackend:
    return PostgresBackend(tmp_path, request.getfixturevalue("pg_url"))


BACKENDS: dict[str, Callable[[pytest.FixtureRequest, Path], Any]] = {
    "sqlite": lambda request, tmp_path: SQLiteBackend(tmp_path),
    "postgres": _postgres,
}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    return BACKENDS[request.param](request, tmp_path)


@pytest.fixture
def store(backend: Any) -> Iterator[StoreBackend]:
    handle = backend.open()
    yield handle
    handle.close()


def race(backend: Any, handles: int, attempt: Callable[[StoreBackend, int], T]) -> list[T]:
    """`attempt(handle, i)` on `handles` handles at once, each on its own thread and
    opened as its own owner (another machine's process); their results in order."""
    barrier = threading.Barrier(handles)
    results: list[Any] = [None] * handles
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            handle = backend.open(owner=f"machine-{i}.invalid:{1000 + i}")
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()
            return
        try:
            barrier.wait(timeout=60)
            results[i] = attempt(handle, i)
        except BaseException as exc:
            errors.append(exc)
        finally:
            handle.close()

    threads = [threading.Thread(target=run, args=(i,), name=f"handle-{i}") for i in range(handles)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not [t.name for t in threads if t.is_alive()], "a racing handle never finished"
    assert not errors, errors
    return results


def job(prompt: str = "a lighthouse at dusk", provider: Provider = Provider.NANOPHOTO) -> JobSpec:
    return JobSpec(provider, prompt, duration="8" if provider is Provider.NANOPHOTO else "5")


def processing(
    store: StoreBackend, *, now: float = NOW, task_id: str | None = None, estimate: int = 4
) -> Task:
    """A submission the provider accepted: `processing` with its task id."""
    intent = store.create_intent(job(), estimate=estimate, key_fingerprint="fp", now=now)
    answer = task_id or "t-" + intent.id
    return store.record_submitted(intent.id, answer, TaskUpdate(answer, TaskStatus.PROCESSING), now)


def finished(i: int, **fields: Any) -> Task:
    """A finished task to insert as it stands."""
    created = fields.pop("created_at", NOW - 1000 + i)
    values: dict[str, Any] = dict(
        id=f"{int(created * 1000):012x}{i:08x}", provider=Provider.NANOPHOTO,
        status=TaskStatus.COMPLETED, prompt=f"take {i}", params={"mode": "text-to-video"},
        created_at=created, task_id=f"done-{i}", credits_estimated=4, credits_charged=4,
    )  # fmt: skip
    values.update(fields)
    return Task(**values)


def dead_owner(processes) -> str:
    """The owner name of a process of this machine that has ended."""
    child = processes.spawn([sys.executable, "-c", "pass"])
    processes.wait(child, "a process that does nothing")
    return f"{socket.gethostname()}:{child.pid}"


def load_benchmark():
    """benchmarks/history.py, whose synthetic histories the paging test reuses."""
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "history.py"
    spec = importlib.util.spec_from_file_location("history_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- the interface itself -----------------------------------------------------------------


def _pg_store() -> type:
    pytest.importorskip("psycopg", reason="psycopg is not installed (the postgres extra)")
    from seedance_tui.store.postgres import PgStore

    return PgStore


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_each_store_implements_the_whole_interface_and_nothing_unsaid(kind) -> None:
    """Every method of StoreBackend exists on each backend's store with the same
    parameters, and every public method of it is one of them: the Protocol is the whole
    contract."""
    Store = _pg_store() if kind == "postgres" else SQLITE_STORE
    wanted = {
        name for name, value in vars(StoreBackend).items()
        if not name.startswith("_") and callable(value)
    }  # fmt: skip
    for name in wanted:
        declared = inspect.signature(getattr(StoreBackend, name))
        implemented = inspect.signature(getattr(Store, name))
        assert list(declared.parameters.items()) == list(implemented.parameters.items()), name
    offered = {
        name for name, value in inspect.getmembers(Store)
        if not name.startswith("_") and inspect.isfunction(value)
    }  # fmt: skip
    assert offered == wanted, (offered - wanted, wanted - offered)
    assert {"path", "owner"} <= set(StoreBackend.__annotations__)


def test_a_handle_is_a_store_backend(store) -> None:
    assert isinstance(store, StoreBackend)


# -- opening and refusals -----------------------------------------------------------------


def test_another_programs_database_is_refused_and_left_untouched(backend) -> None:
    backend.make_foreign()
    before = backend.snapshot()
    with pytest.raises(StoreForeignError, match="another program"):
        backend.open()
    assert backend.snapshot() == before


def test_a_newer_history_is_refused_and_left_untouched(backend) -> None:
    backend.make_newer()
    before = backend.snapshot()
    with pytest.raises(StoreNewerError, match="newer seedance-tui") as refused:
        backend.open()
    assert refused.value.version == backend.schema_version + 1
    assert backend.snapshot() == before


def test_a_reopened_history_keeps_everything(backend) -> None:
    first = backend.open()
    task = processing(first)
    first.set_state("queue_paused", "1")
    first.close()
    again = backend.open()
    try:
        assert again.get(task.id) == task
        assert again.get_state("queue_paused") == "1"
        assert again.stats()["schema_version"] == backend.schema_version
    finally:
        again.close()


def test_a_reader_sees_the_history_from_its_own_thread(store) -> None:
    processing(store)
    seen: list[int] = []

    def read() -> None:
        reader = store.reader()
        assert reader is not None
        try:
            seen.append(reader.count())
        finally:
            reader.close()

    thread = threading.Thread(target=read)
    thread.start()
    thread.join(timeout=60)
    assert seen == [1]


# -- a task's life --------------------------------------------------------------------------


def test_an_intent_is_durable_and_seen_by_every_handle_before_it_is_sent(backend, store) -> None:
    task = store.create_intent(job(), estimate=8, key_fingerprint="fp", now=NOW)
    other = backend.open()  # another instance, or the same after a crash
    try:
        seen = other.get(task.id)
        assert seen.status is TaskStatus.SUBMITTING and seen.task_id is None
        assert (seen.credits_estimated, seen.key_fingerprint) == (8, "fp")
        assert seen.spec == job() and seen.created_at == pytest.approx(NOW)
        assert [(e["kind"], e["status"]) for e in other.events(task.id)] == [
            ("intent", "submitting")
        ]
        assert [t.id for t in other.pending()] == [task.id]
    finally:
        other.close()


def test_an_accepted_submission_records_its_task_id_and_first_answer(store) -> None:
    intent = store.create_intent(job(), estimate=4, key_fingerprint="fp", now=NOW)
    update = TaskUpdate("t-1", TaskStatus.PROCESSING, credits_charged=4, summary="accepted")
    task = store.record_submitted(intent.id, "t-1", update, NOW + 1)
    assert (task.status, task.task_id, task.credits_charged) == (TaskStatus.PROCESSING, "t-1", 4)
    assert task.submitted_at == pytest.approx(NOW + 1)
    assert store.find("t-1") == task
    assert [e["kind"] for e in store.events(task.id)] == ["intent", "submitted"]


def test_a_provider_task_id_another_task_has_is_a_conflict_and_writes_nothing(store) -> None:
    first = processing(store, task_id="t-same")
    intent = store.create_intent(job(), estimate=4, key_fingerprint="fp", now=NOW + 1)
    with pytest.raises(StoreConflictError):
        store.record_submitted(
            intent.id, "t-same", TaskUpdate("t-same", TaskStatus.PROCESSING), NOW
        )
    kept = store.get(intent.id)
    assert (kept.status, kept.task_id) == (TaskStatus.SUBMITTING, None)
    assert [e["kind"] for e in store.events(intent.id)] == ["intent"]
    assert store.get(first.id).task_id == "t-same"
    other = store.create_intent(job(provider=Provider.SEEDANCE15PRO), estimate=65,
                                key_fingerprint="fp", now=NOW + 2)  # fmt: skip
    update = TaskUpdate("t-same", TaskStatus.PROCESSING)  # unique per provider only
    assert store.record_submitted(other.id, "t-same", update, NOW + 3).task_id == "t-same"


@pytest.mark.parametrize("status", [TaskStatus.REJECTED, TaskStatus.CANCELLED, TaskStatus.ORPHANED])
def test_a_refusal_ends_a_submission_but_never_an_accepted_task(store, status) -> None:
    intent = store.create_intent(job(), estimate=4, key_fingerprint="fp", now=NOW)
    ended = store.record_refusal(intent.id, status, "no credits left", NOW + 1)
    assert (ended.status, ended.error) == (status, "no credits left")
    assert ended.completed_at == pytest.approx(NOW + 1)
    accepted = processing(store)
    assert store.record_refusal(accepted.id, status, "late", NOW + 2).status is (
        TaskStatus.PROCESSING
    )


@pytest.mark.parametrize(
    "final", [TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.REJECTED, TaskStatus.CANCELLED]
)
def test_a_late_answer_never_reopens_a_finished_task(store, final) -> None:
    task = processing(store)
    if final in (TaskStatus.COMPLETED, TaskStatus.FAILED):
        done, _ = store.apply_update(task.id, TaskUpdate(task.task_id, final), NOW + 60)
    else:
        intent = store.create_intent(job(), estimate=4, key_fingerprint="fp", now=NOW)
        done = store.record_refusal(intent.id, final, "stopped", NOW + 60)
    late = TaskUpdate(done.task_id or "x", TaskStatus.PROCESSING, video_urls=("https://e/v",))
    again, changed = store.apply_update(done.id, late, NOW + 120)
    assert not changed
    assert again == store.get(done.id) == done


def test_an_orphan_is_resolved_by_a_late_answer(store) -> None:
    task = processing(store)
    lost = store.record_lost(task.id, "not found three times", NOW + 30)
    assert lost.status is TaskStatus.ORPHANED
    done, changed = store.apply_update(
        task.id, TaskUpdate(task.task_id, TaskStatus.COMPLETED, video_urls=("https://e/v",)), NOW
    )
    assert changed and done.status is TaskStatus.COMPLETED and done.video_urls == ("https://e/v",)


def test_a_lost_task_keeps_its_credits_and_only_a_pending_one_is_lost(store) -> None:
    task = processing(store, estimate=8)
    store.apply_update(
        task.id, TaskUpdate(task.task_id, TaskStatus.PROCESSING, credits_charged=8), NOW
    )
    lost = store.record_lost(task.id, "the provider no longer knows it", NOW + 10)
    assert (lost.status, lost.credits_charged, lost.credits_refunded) == (TaskStatus.ORPHANED, 8, 0)
    done = processing(store)
    store.apply_update(done.id, TaskUpdate(done.task_id, TaskStatus.COMPLETED), NOW + 10)
    assert store.record_lost(done.id, "late", NOW + 20).status is TaskStatus.COMPLETED


def test_credits_only_grow_and_a_failure_refunds_what_was_charged(store) -> None:
    task = processing(store, estimate=8)
    update = TaskUpdate(task.task_id, TaskStatus.PROCESSING, credits_charged=8)
    charged, changed = store.apply_update(task.id, update, NOW + 5)
    assert changed and charged.credits_charged == 8
    lower = TaskUpdate(task.task_id, TaskStatus.PROCESSING, credits_charged=2)
    assert store.apply_update(task.id, lower, NOW + 10)[0].credits_charged == 8
    failed, _ = store.apply_update(task.id, TaskUpdate(task.task_id, TaskStatus.FAILED), NOW + 15)
    assert (failed.credits_charged, failed.credits_refunded, failed.credits_net) == (8, 8, 0)
    # A server that only ever said 0 (seedance15pro once refunded): the estimate is refunded.
    zero = processing(store, estimate=65)
    update = TaskUpdate(zero.task_id, TaskStatus.FAILED, credits_charged=0)
    refunded, _ = store.apply_update(zero.id, update, NOW + 15)
    assert (refunded.credits_charged, refunded.credits_refunded) == (65, 65)


def test_figures_out_of_range_are_dropped_and_the_oddities_kept(store) -> None:
    task = processing(store)
    for credits, seconds in ((-1, -5.0), (10**9, float("inf")), (2.5, 1e9), (True, float("nan"))):
        update = TaskUpdate(task.task_id, TaskStatus.PROCESSING, credits_charged=credits,
                            generation_time=seconds, oddities=("creditsUsed=junk ignored",))  # fmt: skip
        kept, _ = store.apply_update(task.id, update, NOW + 5)
        assert (kept.credits_charged, kept.generation_time) == (None, None)
    oddities = [e["detail"] for e in store.events(task.id) if e["kind"] == "oddity"]
    assert oddities == ["creditsUsed=junk ignored"] * 4


def test_a_render_time_not_reported_is_measured_from_the_submission(store) -> None:
    task = processing(store, now=NOW)
    done, _ = store.apply_update(
        task.id, TaskUpdate(task.task_id, TaskStatus.COMPLETED), NOW + 42.25
    )
    assert done.generation_time == pytest.approx(42.2, abs=0.11)
    assert done.completed_at == pytest.approx(NOW + 42.25)
    reported = processing(store, now=NOW)
    update = TaskUpdate(reported.task_id, TaskStatus.COMPLETED, generation_time=38.0)
    assert store.apply_update(reported.id, update, NOW + 60)[0].generation_time == 38.0


def test_answers_are_events_and_an_unchanged_silent_answer_is_not(store) -> None:
    task = processing(store)
    same = TaskUpdate(task.task_id, TaskStatus.PROCESSING)
    assert store.apply_update(task.id, same, NOW + 5)[1] is False
    noted = TaskUpdate(task.task_id, TaskStatus.PROCESSING, summary="status=processing")
    store.apply_update(task.id, noted, NOW + 10)
    store.apply_update(task.id, TaskUpdate(task.task_id, TaskStatus.COMPLETED), NOW + 15)
    assert [(e["kind"], e["status"]) for e in store.events(task.id)] == [
        ("intent", "submitting"), ("submitted", "processing"), ("answer", "processing"),
        ("status", "completed"),
    ]  # fmt: skip


def test_an_answer_for_no_task_is_task_not_found(store) -> None:
    with pytest.raises(TaskNotFoundError):
        store.apply_update("nope", TaskUpdate("x", TaskStatus.COMPLETED), NOW)
    with pytest.raises(StoreError, match="no task nope"):
        store.get("nope")


def test_events_keep_their_order_and_at_most_1000_characters(store) -> None:
    task = processing(store)
    store.add_event(task.id, "saved", "x" * 5000, NOW + 1)
    store.add_event(task.id, "note", "second", NOW + 1, status=TaskStatus.PROCESSING)
    *_, saved, note = store.events(task.id)
    assert (saved["kind"], len(saved["detail"]), saved["status"]) == ("saved", 1000, None)
    assert (note["kind"], note["detail"], note["status"]) == ("note", "second", "processing")
    assert note["at"] == pytest.approx(NOW + 1)


def test_the_saved_file_is_recorded(store) -> None:
    task = processing(store)
    store.set_local_path(task.id, "/videos/a.mp4", NOW + 1)
    assert store.get(task.id).local_path == "/videos/a.mp4"
    store.set_local_path(task.id, None, NOW + 2)
    assert store.get(task.id).local_path is None


def test_intents_of_a_gone_submitter_end_cancelled_or_orphaned(backend, store, processes) -> None:
    """`cancelled` when its generate never left (never claimed, or given back), else
    `orphaned`; an intent of a live process elsewhere is left until `max_age`, one of
    this handle's own always."""
    gone = backend.open(owner=dead_owner(processes))
    elsewhere = backend.open(owner="another-machine.invalid:77")
    now = time.time()  # after the history was created: its ledger links requests to tasks
    try:
        never_sent = gone.create_intent(job("a"), estimate=4, key_fingerprint="fp", now=now)
        given_back = gone.create_intent(job("b"), estimate=4, key_fingerprint="fp", now=now)
        sent = gone.create_intent(job("c"), estimate=4, key_fingerprint="fp", now=now)
        young = elsewhere.create_intent(job("d"), estimate=4, key_fingerprint="fp", now=now)
        old = elsewhere.create_intent(job("e"), estimate=4, key_fingerprint="fp", now=now - 1000)
        mine = store.create_intent(job("f"), estimate=4, key_fingerprint="fp", now=now - 5000)
        for task, left in ((given_back, False), (sent, True), (old, True)):
            claim = gone.claim_request(provider=Provider.NANOPHOTO, key_fingerprint="fp",
                                       endpoint="generate", now=now, limit=None, task=task.id)  # fmt: skip
            gone.finish_request(claim.row, http_status=None, sent=left, elapsed=0.1, error=None)
        ended = {t.id: t.status for t in store.orphan_stale_intents(now + 10, max_age=900.0)}
    finally:
        gone.close()
        elsewhere.close()
    assert ended == {
        never_sent.id: TaskStatus.CANCELLED, given_back.id: TaskStatus.CANCELLED,
        sent.id: TaskStatus.ORPHANED, old.id: TaskStatus.ORPHANED,
    }  # fmt: skip
    assert "nothing charged" in store.get(never_sent.id).error
    assert "may have accepted" in store.get(sent.id).error
    assert store.get(young.id).status is store.get(mine.id).status is TaskStatus.SUBMITTING


# -- poll leases ----------------------------------------------------------------------------


def test_of_handles_racing_for_a_poll_exactly_one_gets_it(backend, store) -> None:
    task = processing(store)
    won = race(backend, 6, lambda handle, i: handle.claim_poll(task.id, NOW + 10, 5.0))
    assert won.count(True) == 1, won


def test_a_poll_is_refused_while_leased_and_within_min_interval(store) -> None:
    task = processing(store)
    assert store.claim_poll(task.id, NOW + 10, 5.0)
    assert not store.claim_poll(task.id, NOW + 20, 5.0)  # its lease: the answer is awaited
    store.release_poll(task.id, NOW + 21)
    assert not store.claim_poll(task.id, NOW + 24, 5.0)  # polled 3 s ago
    assert store.claim_poll(task.id, NOW + 26, 5.0)
    store.apply_update(task.id, TaskUpdate(task.task_id, TaskStatus.PROCESSING), NOW + 27)
    assert store.claim_poll(task.id, NOW + 33, 5.0)  # the answer released the lease


def test_a_handle_keeps_its_own_schedule_with_own(store) -> None:
    task = processing(store)  # its first answer counts as polled at NOW
    assert not store.claim_poll(task.id, NOW + 10, 30.0)
    assert store.claim_poll(task.id, NOW + 40, 30.0)
    store.release_poll(task.id, NOW + 41)
    assert not store.claim_poll(task.id, NOW + 42, 30.0)
    assert store.claim_poll(task.id, NOW + 42, 30.0, own=NOW + 41)  # still its own poll time


def test_a_lease_expires_and_only_processing_tasks_are_polled(backend, store) -> None:
    task = processing(store)
    other = backend.open(owner="another-machine.invalid:5")
    try:
        assert other.claim_poll(task.id, NOW + 10, 5.0, lease=60.0)
        assert not store.claim_poll(task.id, NOW + 69, 5.0)
        assert store.claim_poll(task.id, NOW + 71, 5.0)  # its poller went silent
    finally:
        other.close()
    intent = store.create_intent(job(), estimate=4, key_fingerprint="fp", now=NOW)
    assert not store.claim_poll(intent.id, NOW + 100, 0.0)
    store.apply_update(task.id, TaskUpdate(task.task_id, TaskStatus.COMPLETED), NOW + 101)
    assert not store.claim_poll(task.id, NOW + 200, 0.0)


def test_a_claim_of_a_poller_on_another_machine_is_kept(backend, store) -> None:
    task = processing(store)
    other = backend.open(owner="not-" + socket.gethostname() + ":1")  # can't be told dead
    try:
        assert other.claim_poll(task.id, NOW + 10, 0.0)
        assert not store.claim_poll(task.id, NOW + 11, 0.0)
    finally:
        other.close()


def test_a_claim_of_a_dead_poller_on_this_machine_ends_with_it(backend, store, processes) -> None:
    task = processing(store)
    gone = backend.open(owner=dead_owner(processes))
    try:
        assert gone.claim_poll(task.id, NOW + 10, 0.0)
    finally:
        gone.close()
    assert store.claim_poll(task.id, NOW + 11, 0.0)
    assert not store.claim_poll(task.id, NOW + 12, 0.0)  # and now it is ours


def test_a_dead_pollers_task_is_taken_over_only_min_interval_after_its_poll(
    backend, store, processes
) -> None:
    """Its request may have reached the server just before it died: no second poll of
    the task sooner than any other poll would be."""
    task = processing(store)
    gone = backend.open(owner=dead_owner(processes))
    try:
        assert gone.claim_poll(task.id, NOW + 10, 4.0)
    finally:
        gone.close()
    assert not store.claim_poll(task.id, NOW + 12, 4.0)
    # Its request may have reached the server a moment after the claim: a margin more.
    assert not store.claim_poll(task.id, NOW + 14.5, 4.0)
    assert store.claim_poll(task.id, NOW + 15, 4.0)


def test_a_poll_time_written_before_the_clock_was_set_back_is_not_believed(store) -> None:
    task = store.create_intent(job(), estimate=4, key_fingerprint="k", now=NOW)
    store.record_submitted(task.id, "t-1", TaskUpdate("t-1", TaskStatus.PROCESSING), NOW)
    now = NOW + 5
    assert store.claim_poll(task.id, now, 4.0)
    assert not store.claim_poll(task.id, now + 1, 4.0)  # spaced as before
    assert store.claim_poll(task.id, now - 3600, 4.0)  # the clock went back an hour


# -- the request ledger -----------------------------------------------------------------------


def claim(store: StoreBackend, at: float, *, limit: int | None = 2, window: float = 60.0,
          key: str = "k", provider: Provider = Provider.NANOPHOTO, task: str | None = None):  # fmt: skip
    return store.claim_request(provider=provider, key_fingerprint=key, endpoint="status",
                               now=at, limit=limit, window=window, task=task)  # fmt: skip


def test_the_claim_counts_over_the_providers_rate_window(store) -> None:
    now = NOW
    assert claim(store, now).row is not None
    assert claim(store, now + 1).row is not None
    refused = claim(store, now + 2)
    assert refused.row is None and refused.retry_at == pytest.approx(now + 60)
    assert claim(store, now + 61).row is not None  # the first left the 60 s window


def test_of_handles_racing_for_the_last_slots_only_the_limit_get_one(backend, store) -> None:
    claim(store, NOW, limit=None, window=3600.0)  # one slot of five spent already
    rows = race(backend, 8, lambda handle, i: claim(handle, NOW + 1, limit=5, window=3600.0).row)
    granted = [row for row in rows if row is not None]
    assert len(granted) == 4 and len(set(granted)) == 4, rows
    assert len(store.request_rows(Provider.NANOPHOTO, "k", NOW - 3600)) == 5


def test_a_request_never_sent_gives_its_slot_back(store) -> None:
    first = claim(store, NOW, limit=1)
    store.finish_request(first.row, http_status=None, sent=False, elapsed=0.0, error="refused")
    assert store.request_rows(Provider.NANOPHOTO, "k", NOW - 60) == []
    second = claim(store, NOW + 1, limit=1)
    store.finish_request(second.row, http_status=200, sent=True, elapsed=0.2, error=None)
    assert claim(store, NOW + 2, limit=1).row is None
    [(row, at)] = store.request_rows(Provider.NANOPHOTO, "k", NOW - 60)
    assert row == second.row and at == pytest.approx(NOW + 1)


def test_a_sent_request_counts_from_its_answer_never_from_earlier(store) -> None:
    """The server counted it between the claim and the answer: its slot frees a window
    after the answer, so a slow exchange never lets a request in before the server's
    window has let go of it."""
    slow = claim(store, NOW, limit=1)
    store.finish_request(slow.row, http_status=200, sent=True, elapsed=5.0, error=None,
                         answered_at=NOW + 5)  # fmt: skip
    early = claim(store, NOW + 61, limit=1)  # a window after the claim, not the answer
    assert early.row is None and early.retry_at == pytest.approx(NOW + 65)
    assert claim(store, NOW + 66, limit=1).row is not None
    # An answer time before the claim (another clock) never moves the request back.
    fast = claim(store, NOW + 200, limit=None)
    store.finish_request(fast.row, http_status=200, sent=True, elapsed=0.1, error=None,
                         answered_at=NOW + 100)  # fmt: skip
    times = dict(store.request_rows(Provider.NANOPHOTO, "k", NOW))
    assert times[fast.row] == pytest.approx(NOW + 200)


def test_keys_and_providers_have_budgets_of_their_own(store) -> None:
    assert claim(store, NOW, limit=1).row is not None
    assert claim(store, NOW, limit=1).row is None
    assert claim(store, NOW, limit=1, key="other").row is not None
    assert claim(store, NOW, limit=1, provider=Provider.SEEDANCE15PRO).row is not None
    assert claim(store, NOW, limit=None).row is not None  # no limit: always counted


def test_a_request_counted_in_the_future_still_counts(store) -> None:
    assert claim(store, NOW + 600, limit=1).row is not None  # another clock, ahead
    refused = claim(store, NOW, limit=1)
    assert refused.row is None and NOW + 1 <= refused.retry_at <= NOW + 60


def test_a_429_pause_stops_the_key_in_every_handle(backend, store) -> None:
    store.pause_key(Provider.NANOPHOTO, "k", NOW + 30, NOW)
    other = backend.open()
    try:
        refused = claim(other, NOW + 1, limit=None)
        assert (
            refused.row is None and refused.paused and refused.retry_at == pytest.approx(NOW + 30)
        )
        assert other.key_pause(Provider.NANOPHOTO, "k", NOW + 1) == pytest.approx(NOW + 30)
        assert other.key_pause(Provider.NANOPHOTO, "k2", NOW + 1) is None
        store.pause_key(Provider.NANOPHOTO, "k", NOW + 10, NOW + 2)  # never shortened
        assert other.key_pause(Provider.NANOPHOTO, "k", NOW + 3) == pytest.approx(NOW + 30)
        assert claim(other, NOW + 31, limit=None).row is not None  # over
        assert other.key_pause(Provider.NANOPHOTO, "k", NOW + 31) is None
    finally:
        other.close()


def test_a_pause_is_believed_at_most_max_key_pause(store) -> None:
    store.pause_key(Provider.NANOPHOTO, "k", NOW + 10 * MAX_KEY_PAUSE, NOW)
    assert store.key_pause(Provider.NANOPHOTO, "k", NOW) == pytest.approx(NOW + MAX_KEY_PAUSE)


def test_whether_a_generate_left_is_told_by_the_ledger(store) -> None:
    intent = store.create_intent(job(), estimate=4, key_fingerprint="k", now=NOW)
    assert not store.generate_left(intent.id)
    row = store.claim_request(provider=Provider.NANOPHOTO, key_fingerprint="k",
                              endpoint="generate", now=NOW, limit=None, task=intent.id).row  # fmt: skip
    assert store.generate_left(intent.id)  # counted before sending: it may have left
    store.finish_request(row, http_status=None, sent=False, elapsed=0.0, error="no connection")
    assert not store.generate_left(intent.id)
    claim(store, NOW, limit=None, task=intent.id)  # a status request is no generate
    assert not store.generate_left(intent.id)


# -- queries ----------------------------------------------------------------------------------


def test_find_by_id_provider_id_or_the_end_of_the_id_literally(store) -> None:
    store.insert_task(finished(1, id="0190aaaa0000000012345678", task_id="prov-1"))
    store.insert_task(finished(2, id="0190aaaa000000000_%_%_%", task_id="prov-2"))
    a = store.get("0190aaaa0000000012345678")
    assert store.find(a.id) == a and store.find("prov-1") == a and store.find(" prov-1 ") == a
    assert store.find("12345678") == a
    assert store.find("5678") is None  # too short to be the end of an id
    assert store.find("_%_%_%").task_id == "prov-2"  # not wildcards: only this id ends so
    assert store.find("%%%%%%") is None
    assert store.find("000000") is None  # the end of no id
    store.insert_task(finished(3, id="0190bbbb0000000012345678", task_id="prov-3"))
    assert store.find("12345678") is None  # two ids end so: ambiguous


def test_pending_is_what_is_sent_and_not_finished_oldest_first(store) -> None:
    later = processing(store, now=NOW + 10)
    earlier = store.create_intent(job(), estimate=4, key_fingerprint="fp", now=NOW)
    store.enqueue([(job(), 4, "fp")], NOW - 50)
    store.insert_task(finished(1))
    assert [t.id for t in store.pending()] == [earlier.id, later.id]


def test_same_jobs_are_the_recent_tasks_of_that_very_job_newest_first(store) -> None:
    spec = job("a koi pond at dawn")
    older = store.create_intent(spec, estimate=4, key_fingerprint="fp", now=NOW - 600)
    newer = store.create_intent(spec, estimate=4, key_fingerprint="fp", now=NOW - 60)
    store.record_refusal(newer.id, TaskStatus.REJECTED, "no", NOW - 59)
    store.create_intent(spec, estimate=4, key_fingerprint="fp", now=NOW - 7200)  # too old
    # One thing differs each: a field, the provider, the prompt (by a letter, by case).
    store.create_intent(JobSpec(Provider.NANOPHOTO, spec.prompt, duration="4"), estimate=2,
                        key_fingerprint="fp", now=NOW - 30)  # fmt: skip
    store.create_intent(job(spec.prompt, Provider.SEEDANCE15PRO), estimate=65,
                        key_fingerprint="fp", now=NOW - 30)  # fmt: skip
    store.create_intent(job("a koi pond at dawn."), estimate=4, key_fingerprint="fp", now=NOW)
    store.create_intent(job("A koi pond at dawn"), estimate=4, key_fingerprint="fp", now=NOW)
    same = store.same_jobs(spec, NOW - 3600)
    assert [t.id for t in same] == [newer.id, older.id]
    assert same[0].status is TaskStatus.REJECTED and same[1].spec == spec
    assert store.same_jobs(spec, NOW - 59) == []
    assert store.same_jobs(job("nothing like it"), NOW - 3600) == []


@pytest.fixture
def tied(store) -> StoreBackend:
    store.bulk_import(reversed(tied_tasks()))  # inserted in another order than the time sort
    return store


FILTERS = [
    Filter(),
    Filter(status=("failed",)),
    Filter(status=("failed", "orphaned", "completed")),
    Filter(status=("failed", "failed")),
    Filter(provider="seedance15pro"),
    Filter(status=("completed", "processing"), provider="nanophoto"),
    Filter(since=1_800_000_017.0),
    Filter(search="lantern"),
    Filter(search="koi", status=("completed", "failed")),
]


@pytest.mark.parametrize("sort", ["oldest", "newest"])
@pytest.mark.parametrize("flt", FILTERS, ids=repr)
def test_streamed_tasks_are_the_listed_ones_in_order(tied, flt, sort) -> None:
    store = tied
    expected = [t.id for t in store.list(flt, sort=sort, limit=None)]
    assert expected, "the filter matches nothing"
    for page in (1, 7, 1000):
        got = [t.id for t in store.iter_tasks(flt, sort=sort, page=page)]
        assert got == expected, page


def test_lists_are_sorted_filtered_and_counted_alike(tied) -> None:
    tasks = tied_tasks()
    for flt in FILTERS:
        wanted = [
            t for t in tasks
            if (not flt.status or t.status.value in flt.status)
            and (not flt.provider or t.provider.value == flt.provider)
            and (flt.since is None or t.created_at >= flt.since)
            and (not flt.search or t.prompt.startswith(flt.search))
        ]  # fmt: skip
        newest = [t.id for t in sorted(wanted, key=lambda t: (t.created_at, t.id), reverse=True)]
        assert [t.id for t in tied.list(flt, limit=None)] == newest, flt
        assert [t.id for t in tied.list(flt, sort="oldest", limit=None)] == newest[::-1], flt
        assert tied.count(flt) == len(newest), flt
        assert [t.id for t in tied.list(flt, limit=7, offset=3)] == newest[3:10], flt


def test_the_credits_sort_is_by_net_credits_then_newest(store) -> None:
    store.insert_task(finished(1, credits_charged=8))
    store.insert_task(finished(2, credits_charged=8, credits_refunded=8))  # net 0
    store.insert_task(finished(3, credits_charged=None, credits_estimated=22))
    store.insert_task(finished(4, credits_charged=8))
    store.insert_task(finished(5, credits_charged=None, credits_estimated=None))
    assert [t.prompt for t in store.list(sort="credits", limit=None)] == [
        "take 3", "take 4", "take 1", "take 5", "take 2",
    ]  # fmt: skip


@pytest.mark.parametrize("sort", ["newest", "oldest"])
@pytest.mark.parametrize("flt", FILTERS, ids=repr)
def test_keyset_pages_are_the_list_around_their_anchor(tied, flt, sort) -> None:
    every = [t.id for t in tied.list(flt, sort=sort, limit=None)]
    for at in (0, 1, 5, len(every) // 2, len(every) - 1):
        after = tied.list_after(flt, every[at], sort=sort, limit=13)
        assert [t.id for t in after] == every[at + 1 : at + 14], at
        before = tied.list_after(flt, every[at], sort=sort, limit=13, backwards=True)
        assert [t.id for t in before] == every[max(at - 13, 0) : at], at


def test_a_keyset_page_of_a_gone_anchor_is_empty_and_credits_have_no_keyset(tied) -> None:
    assert tied.list_after(None, "no-such-task") == []
    with pytest.raises(ValueError, match="no keyset"):
        tied.list_after(None, tied_tasks()[0].id, sort="credits")
    with pytest.raises(ValueError, match="no keyset"):
        list(tied.iter_tasks(None, sort="credits"))


def test_a_search_pages_alike_whichever_way_the_store_walks(store):
    """A search in a time sort either looks every match up and sorts them (few matches)
    or walks the time index testing rows (many): both give the same rows, and the count
    read from the prompt index alone is the count of those rows."""
    synthetic_tasks = load_benchmark().synthetic_tasks
    store.bulk_import(synthetic_tasks(3_000, now=NOW))

    for words in ("lantern", "fox beach", "take 12", "nothing-matches"):
        for extra in ({}, {"status": ("failed",)}, {"provider": "nanophoto"}):
            search = Filter(search=words, **extra)
            every = [t.id for t in store.list(search, limit=None)]
            assert store.count(search) == len(every)
            for sort in ("newest", "oldest"):
                ordered = every if sort == "newest" else every[::-1]
                for matches in (None, 1, 10**9):  # the hint steers which way it goes
                    for offset in (0, 150):
                        page = store.list(
                            search, sort=sort, limit=100, offset=offset, matches=matches
                        )
                        assert [t.id for t in page] == ordered[offset : offset + 100]
                    if len(ordered) > 2:
                        anchor = ordered[1]
                        after = store.list_after(search, anchor, sort=sort, matches=matches)
                        assert [t.id for t in after] == ordered[2:102]


PROMPTS = [
    "Golden retriever at dusk",
    "a golden gate, retro film",
    "fox or cat: who wins?",
    "a fox alone",
    'quotes "inside" and * stars',
    "NOT a negation, just words",
    "twelve words one two three four five six seven eight nine ten eleven",
]


@pytest.mark.parametrize(
    "search, matched",
    [
        ("golden retr", [0, 1]),  # each word a prefix of a word
        ("golden dusk", [0]),  # all of them needed
        ("GOLDEN", [0, 1]),  # any case
        ("retr", [0, 1]),  # a prefix of a later word
        ("dusk golden", [0]),  # in any order
        ("fox OR cat", [2]),  # OR is a word, not an operator
        ("fox", [2, 3]),
        ("-alone fox", [3]),  # a minus is no exclusion
        ('"inside', [4]),  # an unbalanced quote is just punctuation
        ("*", list(range(7))),  # no word: no search at all
        ("st*", [4]),
        ("NOT negation", [5]),
        ("(fox)", [2, 3]),
        ("fox:", [2, 3]),
        ("wins?", [2]),
        ("dog", []),
        # At most 16 words are used: a 17th that matches nothing is not asked for.
        ("twelve words one two three four five six seven eight nine ten eleven t w o zzz", [6]),
    ],
)
def test_search_matches_word_prefixes_literally(store, search, matched) -> None:
    for i, prompt in enumerate(PROMPTS):
        store.insert_task(finished(i, prompt=prompt))
    expected = sorted(PROMPTS[i] for i in matched)
    assert sorted(t.prompt for t in store.list(Filter(search=search), limit=None)) == expected
    assert store.count(Filter(search=search)) == len(expected)
    assert sorted(t.prompt for t in store.iter_tasks(Filter(search=search))) == expected


# -- reports ----------------------------------------------------------------------------------


def test_the_credits_summary_adds_up_every_task(store):
    """Totals from the covering index, holds by status, today and the week from the
    per-day sums: the same as adding up the tasks one by one."""
    import datetime as dt

    FIXED_NOW = NOW
    seed_history(store, FIXED_NOW, media_base="http://127.0.0.1:47615")
    store.create_intent(JobSpec(Provider.NANOPHOTO, "being sent"), estimate=8,
                        key_fingerprint="fp", now=FIXED_NOW - 60)  # fmt: skip
    lost = store.create_intent(JobSpec(Provider.SEEDANCE15PRO, "lost"), estimate=65,
                               key_fingerprint="fp", now=FIXED_NOW - 3600)  # fmt: skip
    store.record_refusal(lost.id, TaskStatus.ORPHANED, "interrupted", FIXED_NOW - 3000)
    summary = store.credits_summary(FIXED_NOW)
    assert summary["providers"]["nanophoto"]["held_by_pending"] == 8
    assert summary["providers"]["seedance15pro"]["at_risk_orphaned"] == 65
    tasks = store.list(limit=None)
    day = dt.datetime.fromtimestamp(FIXED_NOW, tz=dt.UTC).date()
    for provider in Provider:
        mine = [t for t in tasks if t.provider is provider]
        row = summary["providers"][provider.value]

        def net(t):
            return (t.credits_charged or 0) - t.credits_refunded

        def days_ago(t):
            return (day - dt.datetime.fromtimestamp(t.created_at, tz=dt.UTC).date()).days

        assert row["tasks"] == len(mine)
        assert row["all"] == sum(net(t) for t in mine)
        assert row["refunded"] == sum(t.credits_refunded for t in mine)
        assert row["today"] == sum(net(t) for t in mine if days_ago(t) <= 0)
        assert row["last_7_days"] == sum(net(t) for t in mine if days_ago(t) <= 6)
        assert row["completed"] == sum(t.status is TaskStatus.COMPLETED for t in mine)
        assert row["failed"] == sum(t.status is TaskStatus.FAILED for t in mine)
        assert row["held_by_pending"] == sum(
            t.credits_charged if t.credits_charged is not None else t.credits_estimated or 0
            for t in mine
            if t.status in (TaskStatus.SUBMITTING, TaskStatus.PROCESSING)
        )
        assert row["at_risk_orphaned"] == sum(
            t.credits_estimated or 0 for t in mine if t.status is TaskStatus.ORPHANED
        )
    assert len(summary["per_day"]) == 14


def test_per_day_sums_cover_the_last_days_even_empty_ones(store) -> None:
    store.insert_task(finished(1, created_at=NOW - 86_400 * 2, credits_charged=8))
    store.insert_task(finished(2, created_at=NOW - 86_400 * 20, credits_charged=4))
    summary = store.credits_summary(NOW, days=3)
    assert list(summary["per_day"]) == ["2027-01-13", "2027-01-14", "2027-01-15"]
    assert summary["per_day"]["2027-01-13"] == {"nanophoto": 8}
    assert summary["per_day"]["2027-01-15"] == {}
    row = summary["providers"]["nanophoto"]
    assert (row["all"], row["last_7_days"], row["today"]) == (12, 8, 0)


def test_stats_count_the_history(backend, store) -> None:
    task = processing(store)
    store.insert_task(finished(1))
    claim(store, NOW, limit=None)
    stats = store.stats()
    assert stats["tasks"] == 2 and stats["by_status"] == {"processing": 1, "completed": 1}
    assert stats["events"] == len(store.events(task.id)) and stats["requests"] == 1
    assert stats["schema_version"] == backend.schema_version


def test_generation_history_learns_from_recent_sane_renders_per_profile(store) -> None:
    for i in range(6):
        store.insert_task(finished(i, completed_at=NOW + i, generation_time=30.0 + i,
                                   params={"resolution": "720p", "duration": "8"}))  # fmt: skip
    store.insert_task(finished(10, completed_at=NOW + 10, generation_time=0.0))
    store.insert_task(finished(11, completed_at=NOW + 11, generation_time=10**7))
    store.insert_task(finished(12, status=TaskStatus.FAILED, completed_at=NOW + 12,
                               generation_time=50.0))  # fmt: skip
    profile = ("nanophoto", "720p", "8", False)
    assert store.generation_history(limit_per_profile=4) == [
        (profile, 32.0), (profile, 33.0), (profile, 34.0), (profile, 35.0),
    ]  # fmt: skip


# -- whole tasks in and out -------------------------------------------------------------------


def test_a_task_inserted_whole_comes_back_as_it_was_with_its_events(store) -> None:
    task = finished(1, video_urls=("https://e/a.mp4", "https://e/b.mp4"), error=None,
                    submitted_at=NOW - 900, completed_at=NOW - 850, generation_time=48.5,
                    updated_at=NOW - 850, local_path="/v/a.mp4", credits_refunded=0,
                    params={"mode": "text-to-video", "duration": "8", "audio": True})  # fmt: skip
    events = [{"at": NOW - 900, "kind": "submitted", "status": "processing", "detail": "ok"},
              {"at": NOW - 850, "kind": "status", "status": "completed", "detail": None}]  # fmt: skip
    store.insert_task(task, events)
    assert store.get(task.id) == task
    assert store.events(task.id) == [{**events[0]}, {**events[1], "detail": ""}]


def test_an_import_skips_known_tasks_and_writes_nothing_when_its_source_fails(store) -> None:
    store.insert_task(finished(1, task_id="same"))
    tasks = [finished(1), finished(2, task_id="same"), finished(3), finished(4)]
    assert store.import_tasks(tasks, batch=2) == (2, 2)
    assert store.count(Filter(search="take")) == 3  # searchable

    def failing() -> Iterator[Task]:
        yield finished(5)
        yield finished(6)
        raise ValueError("line 3: not a task")

    with pytest.raises(ValueError, match="line 3"):
        store.import_tasks(failing(), batch=1)
    assert store.count() == 3


def test_a_bulk_import_is_counted_and_searchable(store) -> None:
    assert store.bulk_import(finished(i, prompt=f"reef {i}") for i in range(50)) == 50
    assert store.count(Filter(search="reef")) == 50 == store.count()


def test_a_backup_is_a_history_with_the_same_tasks(backend, store, tmp_path) -> None:
    store.bulk_import(tied_tasks())
    processing(store)
    store.backup_to(tmp_path / "copy.db")
    copy = backend.open_copy(tmp_path / "copy.db")
    try:
        assert copy.list(limit=None) == store.list(limit=None)
        assert copy.count(Filter(search="koi")) == store.count(Filter(search="koi"))
    finally:
        copy.close()


def test_every_task_records_who_submitted_it_and_lists_filter_by_it(backend, store) -> None:
    from seedance_tui.store.rows import this_submitter

    me = this_submitter()
    user, host = me.split("@", 1)
    intent = store.create_intent(job(), estimate=4, key_fingerprint="fp", now=NOW)
    [queued] = store.enqueue([(job("queued"), 4, "fp")], NOW + 1)
    assert store.get(intent.id).submitted_by == me == queued.submitted_by
    store.insert_task(finished(1, submitted_by="ana@render-box"))
    store.import_tasks([finished(2, submitted_by="ana@laptop_1"), finished(3)])
    assert store.get(finished(2).id).submitted_by == "ana@laptop_1"
    assert store.get(finished(3).id).submitted_by is None

    def ids(who: str) -> set[str]:
        flt = Filter(submitted_by=who)
        listed = {t.id for t in store.list(flt, limit=None)}
        assert store.count(flt) == len(listed)
        assert {t.id for t in store.iter_tasks(flt)} == listed
        return listed

    assert ids(me) == {intent.id, queued.id}
    assert ids(user) >= {intent.id, queued.id}
    assert ids("ana") == {finished(1).id, finished(2).id}
    assert ids("@render-box") == {finished(1).id}
    assert ids("ana@laptop_1") == {finished(2).id}
    assert ids("ana@laptop%") == set()  # taken literally
    assert ids("@laptop_%") == set()
    assert ids("an") == set()  # a user is named whole
    store.backup_to(backend.tmp_path / "who.db")
    copy = backend.open_copy(backend.tmp_path / "who.db")
    try:
        assert copy.get(finished(1).id).submitted_by == "ana@render-box"
    finally:
        copy.close()


# -- the batch queue and app state ------------------------------------------------------------


def test_a_batch_is_queued_whole_in_order_and_nothing_is_sent(store) -> None:
    jobs = [(job(f"shot {i}"), 4, "fp") for i in range(3)]
    jobs.insert(1, (job("a seedance shot", Provider.SEEDANCE15PRO), 65, "fp2"))
    queued = store.enqueue(jobs, NOW)
    assert [t.status for t in queued] == [TaskStatus.QUEUED] * 4
    assert [t.prompt for t in store.list(sort="oldest", limit=None)] == [
        "shot 0", "a seedance shot", "shot 1", "shot 2",
    ]  # fmt: skip
    assert store.count_queued() == {"nanophoto": 3, "seedance15pro": 1}
    assert store.pending() == [] and store.stats()["requests"] == 0
    assert store.next_queued().prompt == "shot 0"
    assert store.next_queued(["seedance15pro"]).prompt == "a seedance shot"
    assert store.next_queued([]) is None
    assert [e["kind"] for e in store.events(queued[0].id)] == ["queued"]


def test_of_handles_racing_for_a_queued_job_exactly_one_gets_it(backend, store) -> None:
    [queued] = store.enqueue([(job(), 4, "fp")], NOW)
    taken = race(backend, 6, lambda handle, i: handle.claim_queued(queued.id, NOW + 1))
    [winner] = [task for task in taken if task is not None]
    assert winner.status is TaskStatus.SUBMITTING and taken.count(None) == 5
    assert store.get(queued.id) == winner
    assert store.next_queued() is None and store.claim_queued(queued.id, NOW + 2) is None
    assert [e["kind"] for e in store.events(queued.id)] == ["queued", "intent"]


def test_app_state_is_shared_and_deletable(backend, store) -> None:
    assert store.get_state("queue_paused") is None
    store.set_state("queue_paused", "1")
    other = backend.open()
    try:
        assert other.get_state("queue_paused") == "1"
        other.set_state("queue_paused", "0")
        assert store.get_state("queue_paused") == "0"
        other.set_state("queue_paused", None)
        assert store.get_state("queue_paused") is None
    finally:
        other.close()


# -- spending caps and compare groups -------------------------------------------------------


def cap_window(cap: int, *, start: float = NOW - 3600, end: float = NOW + 3600,
               provider: Provider = Provider.NANOPHOTO) -> Window:  # fmt: skip
    return Window(provider, "daily", cap, start, end)


def intent_within(handle: StoreBackend, cap: int, estimate: int = 16, **fields: Any) -> Task | None:
    """One intent under a cap: the task, or None when the cap refused it."""
    try:
        [task] = handle.create_intents(
            [(job(), estimate, "fp")], now=NOW, windows=[cap_window(cap)], **fields
        )
    except CapExceeded:
        return None
    return task


def test_of_handles_racing_for_a_caps_last_credits_exactly_one_gets_through(backend, store) -> None:
    store.insert_task(finished(1, credits_charged=4))  # 4 of 20 spent: room for one 16
    passed = race(backend, 8, lambda handle, i: intent_within(handle, 20))
    through = [task for task in passed if task is not None]
    assert len(through) == 1, passed
    assert store.spending(Provider.NANOPHOTO, NOW - 3600, NOW + 3600) == Usage(spent=4, held=16)
    assert store.count(Filter(status=("submitting",))) == 1


def test_an_intent_over_a_cap_writes_nothing_and_says_what_counts(store) -> None:
    store.insert_task(finished(1, credits_charged=10))
    processing(store, estimate=8)  # held
    with pytest.raises(CapExceeded) as raised:
        store.create_intents([(job(), 16, "fp")], now=NOW, windows=[cap_window(30)])
    exc = raised.value
    assert (exc.cap, exc.usage, exc.cost) == (30, Usage(spent=10, held=8), 16)
    assert store.count() == 2
    assert intent_within(store, 34) is not None  # 10 + 8 + 16 = 34: reaching it is allowed


def test_a_cap_counts_its_period_and_its_providers_tasks_only(store) -> None:
    store.insert_task(finished(1, credits_charged=8))
    store.insert_task(finished(2, created_at=NOW - 7200, credits_charged=100))  # the day before
    store.insert_task(finished(3, provider=Provider.SEEDANCE15PRO, task_id="s3",
                               credits_charged=130))  # fmt: skip
    store.insert_task(finished(4, status=TaskStatus.FAILED, task_id="f4", credits_charged=8,
                               credits_refunded=8))  # fmt: skip
    store.insert_task(finished(5, status=TaskStatus.CANCELLED, task_id=None, credits_charged=None))
    store.insert_task(finished(6, status=TaskStatus.COMPLETED, task_id="n6", credits_charged=None,
                               credits_estimated=12))  # fmt: skip
    usage = store.spending(Provider.NANOPHOTO, NOW - 3600, NOW + 3600)
    assert usage == Usage(spent=8 + 12)


def test_an_orphan_counts_its_estimate_until_it_is_settled(store) -> None:
    [lost] = store.create_intents([(job(), 16, "fp")], now=NOW)
    store.record_refusal(lost.id, TaskStatus.ORPHANED, "interrupted", NOW + 1)
    window = (Provider.NANOPHOTO, NOW - 3600, NOW + 3600)
    assert store.spending(*window) == Usage(at_risk=16)
    assert intent_within(store, 20, estimate=8) is None  # 16 at risk + 8 > 20
    settled = store.settle(lost.id, 4, NOW + 2)
    assert (settled.status, settled.credits_charged) == (TaskStatus.ORPHANED, 4)
    assert store.spending(*window) == Usage(spent=4)
    assert store.settle(lost.id, None, NOW + 3).credits_charged == 0
    assert store.spending(*window) == Usage()
    assert [e["kind"] for e in store.events(lost.id)][-2:] == ["settled", "settled"]
    done = processing(store)
    with pytest.raises(StoreConflictError, match="not orphaned"):
        store.settle(done.id, 4, NOW)
    with pytest.raises(TaskNotFoundError):
        store.settle("no-such-task", 4, NOW)


def test_a_batch_over_a_cap_queues_nothing_unless_let_past_it(store) -> None:
    jobs = [(job(f"take {i}"), 8, "fp") for i in range(3)]
    with pytest.raises(CapExceeded) as raised:
        store.enqueue(jobs, NOW, windows=[cap_window(20)])
    assert (raised.value.cost, raised.value.jobs) == (24, 3)
    assert store.count_queued() == {}
    queued = store.enqueue(jobs, NOW, windows=[cap_window(20)], over_cap=True)
    for task in queued:  # let past the caps: each is claimed however far over it goes
        assert store.claim_queued(task.id, NOW, windows=[cap_window(20)]) is not None
    assert store.spending(Provider.NANOPHOTO, NOW - 3600, NOW + 3600) == Usage(held=24)


def test_a_queued_job_is_claimed_only_within_the_caps_and_counts_from_then(store) -> None:
    yesterday = NOW - 86_400
    [early, late] = store.enqueue([(job("a"), 8, "fp"), (job("b"), 8, "fp")], yesterday)
    today = [cap_window(12)]
    assert store.spending(Provider.NANOPHOTO, NOW - 3600, NOW + 3600) == Usage()  # queued: 0
    claimed = store.claim_queued(early.id, NOW, windows=today)
    assert claimed is not None and claimed.status is TaskStatus.SUBMITTING
    # Its money is committed today, though it was queued yesterday.
    assert store.spending(Provider.NANOPHOTO, NOW - 3600, NOW + 3600) == Usage(held=8)
    assert store.spending(Provider.NANOPHOTO, yesterday - 3600, yesterday + 3600) == Usage()
    with pytest.raises(CapExceeded):
        store.claim_queued(late.id, NOW, windows=today)
    assert store.get(late.id).status is TaskStatus.QUEUED
    assert store.claim_queued(early.id, NOW, windows=today) is None  # taken already


def test_the_tasks_of_a_compare_share_a_group_all_or_none(store) -> None:
    pair = [(job("fox"), 16, "fp"), (job("fox", Provider.SEEDANCE15PRO), 260, "fp2")]
    with pytest.raises(CapExceeded) as raised:  # the second's cap refuses the pair
        store.create_intents(pair, now=NOW, group="g1", windows=[
            cap_window(100), cap_window(200, provider=Provider.SEEDANCE15PRO)])  # fmt: skip
    assert raised.value.provider is Provider.SEEDANCE15PRO
    assert store.count() == 0
    tasks = store.create_intents(pair, now=NOW, group="g1", windows=[cap_window(100)])
    assert {t.group for t in tasks} == {"g1"}
    assert {t.id for t in store.list(Filter(group="g1"))} == {t.id for t in tasks}
    assert store.count(Filter(group="g1", provider="nanophoto")) == 1
    assert store.get(tasks[1].id).group == "g1"
