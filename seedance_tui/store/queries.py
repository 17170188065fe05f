"""Reading tasks: one by id, pages of a filtered and sorted list (by offset or keyset),
counts, full-text search of prompts, streams of any size, and a task's events."""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from ..models import PENDING_STATUSES, JobSpec, Task, from_iso, iso
from .connection import Connection
from .errors import TaskNotFoundError
from .interface import Filter, search_words
from .rows import CREATED_AT, ID, SELECT_TASKS, task_of


def filter_clauses(filter: Filter | None, *, walk: bool = False) -> tuple[list[str], list[Any]]:
    """The WHERE clauses (joined with AND) and arguments of the tasks `filter` means."""
    filter = filter or Filter()
    clauses: list[str] = []
    args: list[Any] = []
    if filter.status:
        clauses.append(f"status IN ({','.join('?' * len(filter.status))})")
        args.extend(filter.status)
    if filter.provider:
        clauses.append("provider = ?")
        args.append(filter.provider)
    if filter.group:
        clauses.append('"group" = ?')
        args.append(filter.group)
    if filter.since is not None:
        clauses.append("created_at >= ?")
        args.append(iso(filter.since))
    if filter.submitted_by:
        who = filter.submitted_by.strip()
        if who.startswith("@"):
            clauses.append("submitted_by LIKE ? ESCAPE '\\'")
            args.append("%" + _like(who))
        elif "@" in who:
            clauses.append("submitted_by = ?")
            args.append(who)
        else:
            clauses.append("submitted_by LIKE ? ESCAPE '\\'")
            args.append(_like(who) + "@%")
    query = fts_query(filter.search or "")
    if query:
        # `+rowid` keeps SQLite from looking each match up by rowid: it walks an index
        # in the sort's order instead and tests each row against the match set.
        column = "+rowid" if walk else "rowid"
        clauses.append(f"{column} IN (SELECT rowid FROM tasks_fts WHERE tasks_fts MATCH ?)")
        args.append(query)
    return clauses, args


def _like(text: str) -> str:
    """Text matched literally by LIKE ... ESCAPE '\\'."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def fts_query(text: str) -> str:
    """User text → an FTS5 query: every word must match, as a prefix, literally."""
    return " ".join(f'"{w}"*' for w in search_words(text))


# Paging a search in a time sort can go two ways: look every match up and sort them (a row
# fetch per match), or walk the time index and test each row against the matches (about
# depth × rows ÷ matches index steps). A row fetch and its share of the sort cost about
# as much as WALK_STEPS_PER_MATCH steps of the walk (measured at 100k and 1M tasks).
WALK_STEPS_PER_MATCH = 40

SORTS = {
    "newest": "created_at DESC, id DESC",
    "oldest": "created_at ASC, id ASC",
    "credits": "COALESCE(credits_charged - credits_refunded, credits_estimated, 0) DESC, created_at DESC",
}
# Keyset conditions: the rows after (created_at, id) in ascending or descending order.
AFTER = {
    True: "created_at >= ? AND (created_at > ? OR id > ?)",
    False: "created_at <= ? AND (created_at < ? OR id < ?)",
}


def _where(clauses: list[str]) -> str:
    return f" WHERE {' AND '.join(clauses)}" if clauses else ""


class Queries(Connection):
    def _filter_clauses(
        self, filter: Filter | None, *, walk: bool = False
    ) -> tuple[list[str], list[Any]]:
        return filter_clauses(filter, walk=walk)

    def get(self, id: str) -> Task:
        rows = self._tasks(f"{SELECT_TASKS} WHERE id=?", (id,))
        if not rows:
            raise TaskNotFoundError(id, path=self.path)
        return rows[0]

    def find(self, ref: str) -> Task | None:
        """A task by our id, its last 8 characters, or the provider's task id."""
        ref = ref.strip()
        rows = self._tasks(f"{SELECT_TASKS} WHERE id=? OR task_id=? LIMIT 2", (ref, ref))
        if not rows and 6 <= len(ref) < 20:
            rows = self._tasks(
                f"{SELECT_TASKS} WHERE id LIKE ? ESCAPE '\\' LIMIT 2",
                ("%" + ref.replace("%", "\\%").replace("_", "\\_"),),
            )
        return rows[0] if len(rows) == 1 else None

    def pending(self) -> list[Task]:
        marks = ",".join("?" * len(PENDING_STATUSES))
        return self._tasks(
            f"{SELECT_TASKS} WHERE status IN ({marks}) ORDER BY created_at",
            [s.value for s in PENDING_STATUSES],
        )

    def same_jobs(self, spec: JobSpec, since: float) -> list[Task]:
        # The prompt and provider narrow it in SQL; the fields (a JSON column, written
        # by one code path but compared as text differently by each backend) in Python,
        # as specs: the stored spec is the validated one, as the form's job is.
        rows = self._tasks(
            f"{SELECT_TASKS} WHERE created_at >= ? AND provider = ? AND prompt = ? "
            "ORDER BY created_at DESC, id DESC",
            (iso(since), spec.provider.value, spec.prompt),
        )
        return [task for task in rows if task.spec == spec]

    def list(
        self,
        filter: Filter | None = None,
        *,
        sort: str = "newest",
        limit: int | None = 50,
        offset: int = 0,
        matches: int | None = None,
    ) -> list[Task]:
        """A page of tasks. `matches`, when the caller knows it, is how many rows the filter
        matches: it picks how a search is paged (asked of the prompt index otherwise)."""
        walk = limit is not None and self._walk(filter, sort, offset + limit, matches)
        clauses, args = self._filter_clauses(filter, walk=walk)
        sql = f"{SELECT_TASKS}{_where(clauses)} ORDER BY {SORTS[sort]}"
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            args += [limit, offset]
        return self._tasks(sql, args)

    def count(self, filter: Filter | None = None) -> int:
        filter = filter or Filter()
        narrowed = filter.status or filter.provider or filter.group or filter.since is not None
        if filter.search and not (narrowed or filter.submitted_by):
            return self._count_matches(filter.search)
        clauses, args = self._filter_clauses(filter)
        return self._scalar(f"SELECT count(*) FROM tasks{_where(clauses)}", args)

    def _count_matches(self, search: str) -> int:
        """How many prompts match a search: the prompt index alone answers (triggers keep
        it in step with `tasks`), no task row is read."""
        query = fts_query(search)
        if not query:
            return self.count()
        return self._scalar("SELECT count(*) FROM tasks_fts WHERE tasks_fts MATCH ?", (query,))

    def _max_rowid(self) -> int:
        return self._scalar("SELECT max(rowid) FROM tasks") or 0

    def _walk(self, filter: Filter | None, sort: str, depth: int, matches: int | None) -> bool:
        """Should a page of a search, `depth` rows deep in a time sort, walk the time index
        (many matches: the first are near) rather than look every match up and sort them
        (few matches)? See WALK_STEPS_PER_MATCH."""
        if filter is None or sort not in ("newest", "oldest") or not fts_query(filter.search or ""):
            return False
        if matches is None:
            matches = self._count_matches(filter.search or "")
        return depth * self._max_rowid() < WALK_STEPS_PER_MATCH * matches * matches

    def events(self, id: str) -> list[dict[str, Any]]:
        rows = self._all(
            "SELECT at, kind, status, detail FROM events WHERE task=? ORDER BY id", (id,)
        )
        return [
            {"at": from_iso(at), "kind": kind, "status": status, "detail": detail}
            for at, kind, status, detail in rows
        ]

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
        """The rows that follow (or, `backwards`, precede) the row `anchor_id` in a time sort.

        Keyset paging: as cheap at the millionth row as at the first, where OFFSET must
        walk every row it skips. Only the "newest" and "oldest" sorts have a keyset.
        Rows come back in display order either way. `matches` as for `list`.
        """
        if sort not in ("newest", "oldest"):
            raise ValueError(f"no keyset for sort {sort!r}")
        anchor = self._one("SELECT created_at, id FROM tasks WHERE id=?", (anchor_id,))
        if anchor is None:
            return []
        created, id = anchor
        ascending = (sort == "oldest") != backwards
        order = SORTS["oldest" if ascending else "newest"]
        clauses, args = self._filter_clauses(filter, walk=self._walk(filter, sort, limit, matches))
        clauses.append(AFTER[ascending])
        args += [created, created, id]
        rows = self._tasks(
            f"{SELECT_TASKS}{_where(clauses)} ORDER BY {order} LIMIT ?", [*args, limit]
        )
        if backwards:
            rows.reverse()
        return rows

    def iter_tasks(
        self, filter: Filter | None = None, *, sort: str = "oldest", page: int = 1000
    ) -> Iterator[Task]:
        """Every task matching `filter` in a time sort ("oldest" or "newest"), streamed:
        the memory of one page and time linear in the rows, at any size (exports, `list`
        of everything).

        Keyset pages, each read and released before its tasks are handed out: the
        millionth row costs what the first does (OFFSET walks every row it skips), and no
        read is held open while the caller works through a page, so a slow reader
        (`export | less`) never keeps the WAL from being checkpointed. Several statuses
        are merged from one ordered stream per status, each a walk of the (status,
        created_at) index: with an IN list SQLite sorts every remaining row for each page.
        A search is read by one statement in one pass, a page at a time: a keyset page
        would match the prompt index anew for each page.
        """
        if sort not in ("newest", "oldest"):
            raise ValueError(f"no keyset for sort {sort!r}")
        filter = filter or Filter()
        searching = bool(fts_query(filter.search or ""))
        if len(set(filter.status)) > 1 and not searching:
            streams = [
                self.iter_tasks(replace(filter, status=(status,)), sort=sort, page=page)
                for status in dict.fromkeys(filter.status)
            ]
            yield from heapq.merge(
                *streams, key=lambda task: (task.created_at, task.id), reverse=sort == "newest"
            )
            return
        keyset, order = AFTER[sort == "oldest"], SORTS[sort]
        if searching:
            walk = self._walk(filter, sort, self._max_rowid(), None)
            clauses, args = self._filter_clauses(filter, walk=walk)
            yield from self._stream(f"{SELECT_TASKS}{_where(clauses)} ORDER BY {order}", args, page)
            return
        clauses, args = self._filter_clauses(filter)
        anchor: tuple[str, str] | None = None
        while True:
            page_clauses, page_args = list(clauses), list(args)
            if anchor is not None:
                page_clauses.append(keyset)
                page_args += [anchor[0], anchor[0], anchor[1]]
            chunk = self._all(
                f"{SELECT_TASKS}{_where(page_clauses)} ORDER BY {order} LIMIT ?",
                [*page_args, page],
            )
            yield from map(task_of, chunk)
            if len(chunk) < page:
                return
            anchor = (chunk[-1][CREATED_AT], chunk[-1][ID])
