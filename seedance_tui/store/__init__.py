"""The only place that speaks SQL: the history.

Plain SQLite (WAL) that `sqlite3` or Datasette can open. Tables:

  tasks     one row per job: spec, normalised status, the provider's task id,
            estimated/charged/refunded credits, result URLs, error, times.
  events    append-only: each status change and a summary of each server answer.
  requests  one row per HTTP request to a provider: time, provider, key fingerprint
            (never the key), endpoint, HTTP status. The rate budget is computed from it.
  app_state small named values: the queue's pause, each key's 429 pause.
  tasks_fts FTS5 index of prompts (kept by triggers that fire only when a prompt changes).
  _migrations  named migrations applied, in order.

Times are ISO 8601 UTC text with milliseconds ("2026-11-21T05:33:00.000Z"), which sort
as text. Every write is its own short transaction, committed before the caller goes on.

The modules: `interface` (what any backend guarantees: `StoreBackend`, `Filter`,
`Claim`), `errors` (the StoreError tree), `schema` (migrations), `opening` (opening and
its refusals), `rows` (a task and its row), `connection` (the one connection and its
error boundary), then one mixin per concern — `lifecycle`, `request_ledger`, `queries`,
`reports`, `transfer`, `queue_state` — assembled into `Store` by `sqlite`.
"""

from __future__ import annotations

from .errors import (
    StoreBusyError,
    StoreConflictError,
    StoreDamagedError,
    StoreError,
    StoreForeignError,
    StoreFullError,
    StoreNewerError,
    StoreOpenError,
    StoreReadError,
    StoreWriteError,
    TaskNotFoundError,
    damaged_message,
    is_damage,
    is_transient,
)
from .interface import (
    MAX_KEY_PAUSE,
    SORT_NAMES,
    Claim,
    Filter,
    StoreBackend,
    nothing_to_search,
    search_words,
)
from .queries import fts_query
from .rows import (
    MAX_CREDITS,
    MAX_GENERATION_SECONDS,
    TASK_COLUMNS,
    new_task_id,
    profile_of,
    this_owner,
)
from .schema import MIGRATIONS, SCHEMA_VERSION
from .sqlite import Store

__all__ = [
    "MAX_CREDITS",
    "MAX_GENERATION_SECONDS",
    "MAX_KEY_PAUSE",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "SORT_NAMES",
    "TASK_COLUMNS",
    "Claim",
    "Filter",
    "Store",
    "StoreBackend",
    "StoreBusyError",
    "StoreConflictError",
    "StoreDamagedError",
    "StoreError",
    "StoreForeignError",
    "StoreFullError",
    "StoreNewerError",
    "StoreOpenError",
    "StoreReadError",
    "StoreWriteError",
    "TaskNotFoundError",
    "damaged_message",
    "fts_query",
    "is_damage",
    "is_transient",
    "new_task_id",
    "profile_of",
    "nothing_to_search",
    "search_words",
    "this_owner",
]
