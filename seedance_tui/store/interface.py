"""What a history backend is: the behaviour the engine, the request ledger, the commands
and the dashboard rely on, as a Protocol, and the plain values it takes and gives.

SQLite (`sqlite.py`, the embedded default) is one backend; a second one (PostgreSQL,
issue #17) implements the same methods with the same guarantees, and
`tests/test_store_conformance.py` proves each guarantee against every backend through
this interface alone. Times are epoch seconds (the caller's clock: every write takes
`now`); tasks come back as `models.Task`. Every failure is a StoreError subclass
(errors.py), never the database driver's own exception.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ..caps import Usage, Window
from ..models import JobSpec, Provider, Task, TaskStatus, TaskUpdate

# A persisted 429 pause further ahead than this is not believed (a clock set back, a
# bogus Retry-After): it is cut to this.
MAX_KEY_PAUSE = 3600.0
# The sorts of `list`: newest and oldest by (created_at, id), the two with a keyset;
# credits by net credits (charged - refunded, else the estimate) descending, then newest.
SORT_NAMES = ("newest", "oldest", "credits")
# A search uses at most this many words of what the user typed.
MAX_SEARCH_WORDS = 16


@dataclass(frozen=True, slots=True)
class Filter:
    """Which tasks a query means. Every field narrows it; an empty Filter is everything.
    `status`: any of these statuses; `since`: created at or after; `search`: see
    `search_words`; `group`: the tasks of one compare; `submitted_by`: "user@host",
    "user" (on any host) or "@host" (by anyone there)."""

    status: tuple[str, ...] = ()
    provider: str | None = None
    search: str | None = None
    since: float | None = None
    group: str | None = None
    submitted_by: str | None = None


def search_words(text: str) -> list[str]:
    """What a search matches: the words of the user's text (runs of letters and digits;
    anything else separates words and is never query syntax), at most MAX_SEARCH_WORDS.
    A prompt matches when each word is a prefix of one of its words, in any order and
    case ("golden retr" matches "Golden retriever at dusk"). No word: no search."""
    words = "".join(c if c.isalnum() else " " for c in text).split()
    return words[:MAX_SEARCH_WORDS]


def nothing_to_search(text: str | None) -> bool:
    """Text was typed, but no word of it can be searched for (`"`, `*`, `(`, an emoji):
    say so rather than list everything as an empty search would."""
    return bool(text and text.strip()) and not search_words(text)


@dataclass(frozen=True, slots=True)
class Claim:
    """The ledger's answer to "may this request be sent": its row, or when to ask again."""

    row: int | None  # the request's row in `requests` (None: refused, nothing written)
    retry_at: float | None = None  # refused: when a slot frees (or the pause ends)
    paused: bool = False  # refused by a 429's pause rather than by the window


class ChangeFeed(Protocol):
    def close(self) -> None: ...


@runtime_checkable
class StoreBackend(Protocol):
    """A history: tasks, their events, the request ledger, the queue and app state.

    Several handles — in one process, in several processes, on several machines for a
    server backend — may share one history; every guarantee below holds across them."""

    path: Path | None  # the history's file (None: not a file of this machine)
    # Who this handle writes intents and holds poll leases as: "host:pid" of its process
    # unless opened as another (an owner on this host whose pid is gone is dead).
    owner: str

    def close(self) -> None: ...

    def reader(self) -> StoreBackend | None:
        """Another handle on the same history for reads on another thread: called in the
        thread that uses it. None when no other handle can see this history (one in
        memory)."""
        ...

    # -- a task's life --------------------------------------------------------------

    def create_intent(
        self, spec: JobSpec, *, estimate: int | None, key_fingerprint: str | None, now: float
    ) -> Task:
        """Record a submission before its request is sent: a new `submitting` task owned
        by this handle's owner, with an "intent" event, durable (visible to every other
        handle, surviving a crash) when this returns."""
        ...

    def create_intents(
        self,
        jobs: Sequence[tuple[JobSpec, int | None, str | None]],
        *,
        now: float,
        windows: Sequence[Window] = (),
        group: str | None = None,
    ) -> list[Task]:
        """Record (spec, estimate, key fingerprint) submissions as `create_intent` does,
        all or none, in `group` (None: none), only if they pass the spending caps of
        `windows`: for each window of a provider among the jobs, what the window's
        period counts (caps.py: `committed_at`, else `created_at`, within its bounds)
        plus the jobs' estimates for that provider is at most its cap. The check and
        the rows are one transaction: of handles racing for a cap's last credits,
        however many, no more get through than the credits allow. Over a cap:
        caps.CapExceeded (the first window passed), nothing written."""
        ...

    def record_submitted(
        self, id: str, answer_task_id: str, update: TaskUpdate, now: float
    ) -> Task:
        """The provider accepted the job: its task id, `processing`, and the first answer
        (as `apply_update`), in one durable write. StoreConflictError, with nothing
        written, when another task of the history already has this provider task id."""
        ...

    def record_refusal(self, id: str, status: TaskStatus, error: str, now: float) -> Task:
        """End a submission that got no task id (`rejected`, `cancelled` or `orphaned`),
        with its error. Never changes a task the provider named an id for."""
        ...

    def record_lost(self, id: str, error: str, now: float) -> Task:
        """The provider no longer knows an accepted task: `orphaned`, only from
        `submitting` or `processing`; its credits stay as last reported (no refund is
        booked that no server reported); its poll lease is released."""
        ...

    def apply_update(self, id: str, update: TaskUpdate, now: float) -> tuple[Task, bool]:
        """Apply a status answer, durably; returns the task and whether anything visible
        changed. A late answer never reopens a finished task (completed, failed,
        rejected, cancelled: nothing changes); an orphan may still be resolved. Credits
        charged only grow; a failure refunds all that was charged (the estimate, when
        the server only ever said 0). A credit count outside 0..1,000,000 or not whole,
        a render time outside 0 s..1 day, is dropped; the update's oddities become an
        "oddity" event. Releases the task's poll lease. TaskNotFoundError for no task."""
        ...

    def add_event(
        self, id: str, kind: str, detail: str, now: float, status: TaskStatus | None = None
    ) -> None:
        """Append an event to a task's timeline (detail kept up to 1000 characters)."""
        ...

    def set_local_path(self, id: str, path: str | None, now: float) -> None:
        """Where the render is saved (None: not saved)."""
        ...

    def claim_poll(
        self,
        id: str,
        now: float,
        min_interval: float,
        lease: float = 120.0,
        slack: float = 30.0,
        own: float | None = None,
    ) -> bool:
        """Take a `processing` task's next poll, atomically: of any number of handles
        asking at once, at most one gets True. Refused while another poll of it holds a
        lease (until the answer, `release_poll`, or `lease` seconds) or when it was
        polled within `min_interval`, unless `own` is the poll time this handle wrote
        last and still the task's. A lease whose poller is known dead (a process gone on
        this machine) ends with it, once its poll is `min_interval` and a second of
        transit old (its request may have reached the server after the claim). A poll time more than `slack` ahead, or a lease
        longer than `lease` from now, is not believed (written before a clock change)."""
        ...

    def release_poll(self, id: str, now: float) -> None:
        """A poll ended without an answer to apply: free the task's lease."""
        ...

    def orphan_stale_intents(self, now: float, max_age: float = 900.0) -> list[Task]:
        """End the intents whose submitter is gone — its process ended, or (one elsewhere,
        which cannot be told dead) the intent is older than `max_age` —: `cancelled` when
        the ledger shows their `generate` never left, else `orphaned`. This handle's own
        intents are left alone. Returns the tasks it ended."""
        ...

    def settle(self, id: str, charged: int | None, now: float) -> Task:
        """The user's word on an orphan's charge (`settle ID --charged N|--none`): its
        credits charged become `charged` (None: 0), no refund, with a "settled" event;
        it then counts that, not its estimate. StoreConflictError, nothing written, for a
        task that is not orphaned; TaskNotFoundError for no task."""
        ...

    # -- the request ledger -------------------------------------------------------------

    def claim_request(
        self,
        *,
        provider: Provider,
        key_fingerprint: str,
        endpoint: str,
        now: float,
        limit: int | None,
        window: float = 3600.0,
        task: str | None = None,
    ) -> Claim:
        """Count a request in the ledger before it is sent, atomically across handles:
        however many ask at once, no more than `limit` requests of the key are counted
        within any `window` seconds. Refused (nothing written) while a 429 pause of the
        key lasts (`paused`, `retry_at` its end) or while the window is full (`retry_at`
        when its oldest request leaves it, at least 1 s and at most `window` ahead).
        A request counted in the future still counts."""
        ...

    def finish_request(
        self,
        row: int,
        *,
        http_status: int | None,
        sent: bool,
        elapsed: float,
        error: str | None,
        answered_at: float | None = None,
    ) -> None:
        """How a claimed request went; `sent=False` (its connection was never made)
        gives its slot back and means it cannot have reached the server. A sent
        request's time moves to `answered_at` when given (never back): the server
        counted it somewhere between the claim and its answer, so from then on its slot
        frees no earlier than the server's does, however long it took to get there."""
        ...

    def request_rows(
        self, provider: Provider, key_fingerprint: str, since: float
    ) -> list[tuple[int, float]]:
        """(row, time) of the key's requests counted after `since` and not given back."""
        ...

    def pause_key(self, provider: Provider, key_fingerprint: str, until: float, now: float) -> None:
        """A 429: stop every request of the key, in every handle, until `until` (cut to
        MAX_KEY_PAUSE from now). Never shortens a pause already longer."""
        ...

    def key_pause(self, provider: Provider, key_fingerprint: str, now: float) -> float | None:
        """Until when a 429 stops this key (None: it does not)."""
        ...

    def generate_left(self, task: str) -> bool:
        """May a `generate` for this task have reached the server (counted and not given
        back)?"""
        ...

    # -- queries ------------------------------------------------------------------------

    def get(self, id: str) -> Task:
        """The task with our id; TaskNotFoundError if none."""
        ...

    def find(self, ref: str) -> Task | None:
        """A task by our id, the provider's task id, or (6 to 19 characters) the end of
        our id, taken literally; None when nothing or more than one task matches."""
        ...

    def pending(self) -> list[Task]:
        """Tasks `submitting` or `processing`, oldest first."""
        ...

    def same_jobs(self, spec: JobSpec, since: float) -> list[Task]:
        """Tasks created at or after `since` whose job is `spec` — the same provider, the
        same prompt and every field alike — in any status, newest first (what the
        dashboard's duplicate-spend guard asks before a submission)."""
        ...

    def list(
        self,
        filter: Filter | None = None,
        *,
        sort: str = "newest",
        limit: int | None = 50,
        offset: int = 0,
        matches: int | None = None,
    ) -> list[Task]:
        """A page of the tasks `filter` means, in a sort of SORT_NAMES; `limit` None:
        all. `matches`: how many the filter matches, when the caller knows (a hint for
        the backend's plan; it never changes the rows)."""
        ...

    def count(self, filter: Filter | None = None) -> int:
        """How many tasks `filter` means (exactly the rows `list` gives)."""
        ...

    def list_after(
        self,
        filter: Filter | None,
        anchor_id: str,
        *,
        sort: str = "newest",
        limit: int = 100,
        backwards: bool = False,
        matches: int | None = None,
    ) -> list[Task]:
        """Keyset paging in a time sort ("newest" or "oldest", by created_at then id):
        the `limit` rows that follow the row `anchor_id` (`backwards`: precede it), in
        display order, exactly those `list` gives around it, ties on created_at
        included; [] when the anchor is gone. ValueError for another sort."""
        ...

    def iter_tasks(
        self, filter: Filter | None = None, *, sort: str = "oldest", page: int = 1000
    ) -> Iterator[Task]:
        """Every task `filter` means, in a time sort, streamed in the memory of `page`
        tasks: the same tasks in the same order as `list(filter, sort=sort, limit=None)`.
        Between pages no read is held open."""
        ...

    def events(self, id: str) -> list[dict[str, Any]]:
        """A task's timeline in the order written: dicts of at, kind, status, detail."""
        ...

    # -- reports ------------------------------------------------------------------------

    def credits_summary(self, now: float, days: int = 14) -> dict[str, Any]:
        """{"providers": {name: figures}, "per_day": {"YYYY-MM-DD": {name: net}}} where a
        provider's figures are, summed over its tasks: all (charged - refunded), refunded,
        today and last_7_days (net of tasks created then, UTC days), held_by_pending
        (charged, else estimated, of submitting and processing tasks), at_risk_orphaned
        (the estimate of orphans with no reported charge), tasks, completed, failed;
        per_day has the last `days` days, each present even when empty."""
        ...

    def spending(self, provider: Provider, start: float, end: float) -> Usage:
        """What the provider's tasks committed at or after `start` and before `end`
        count against a cap (caps.py's rule): spent, held, at risk."""
        ...

    def stats(self) -> dict[str, Any]:
        """Counts: tasks, by_status, events, requests; and the schema_version."""
        ...

    def generation_history(self, limit_per_profile: int = 50) -> list[tuple[tuple, float]]:
        """(profile, seconds) of the latest completed renders (of the last 2000) with a
        sane, non-zero render time, at most `limit_per_profile` per profile, oldest
        first."""
        ...

    # -- whole tasks in and out -----------------------------------------------------------

    def insert_task(self, task: Task, events: list[dict[str, Any]] | None = None) -> None:
        """Insert a task as it stands, with its events (dicts as `events` gives)."""
        ...

    def bulk_import(self, tasks: Iterator[Task] | list[Task], batch: int = 20_000) -> int:
        """Insert many tasks as they stand in one write, searchable; how many."""
        ...

    def import_tasks(self, tasks: Iterable[Task], batch: int = 5_000) -> tuple[int, int]:
        """Insert tasks as they stand, skipping any whose id or provider task id the
        history has; (inserted, skipped). An exception from `tasks` writes nothing."""
        ...

    def backup_to(self, path: Path) -> None:
        """A consistent copy of the whole history into a new file at `path`."""
        ...

    # -- the batch queue and app state ------------------------------------------------

    def enqueue(
        self,
        jobs: list[tuple[JobSpec, int | None, str | None]],
        now: float,
        windows: Sequence[Window] = (),
        over_cap: bool = False,
    ) -> list[Task]:
        """Queue (spec, estimate, key fingerprint) jobs as `queued` tasks, whole or not
        at all, in their order (creation times 1 ms apart). Nothing is sent. Unless
        `over_cap`, the batch's total per provider is checked against `windows` as
        `create_intents` checks, in the same transaction (caps.CapExceeded: nothing
        queued); `over_cap` marks the jobs as let past the caps when they are claimed."""
        ...

    def next_queued(self, providers: list[str] | None = None) -> Task | None:
        """The oldest queued task (of these providers, when given; [] means none)."""
        ...

    def count_queued(self) -> dict[str, int]:
        """Queued tasks per provider."""
        ...

    def claim_queued(self, id: str, now: float, windows: Sequence[Window] = ()) -> Task | None:
        """Turn a queued task into this process's submission intent, atomically: of
        any number of handles asking at once, exactly one gets the task, the others
        None, so a queued job is never sent twice. Its money is committed now; unless it
        was queued `over_cap`, its estimate must pass `windows` as in `create_intents`,
        checked in the same transaction (caps.CapExceeded: it stays queued)."""
        ...

    def get_state(self, name: str) -> str | None: ...

    # -- live changes -----------------------------------------------------------------

    def changes(self, on_change: Callable[[str], None]) -> ChangeFeed | None:
        """Tell `on_change` (on a thread of the feed's own) the id of each task another
        process changes, as it commits, or "*" when many changed at once or some may
        have been missed; None when the backend has no such feed (an SQLite file: its
        readers look again every few seconds). Stopped by the feed's `close()`."""
        ...

    def set_state(self, name: str, value: str | None) -> None:
        """Persist a small named value for every handle (None deletes it)."""
        ...
