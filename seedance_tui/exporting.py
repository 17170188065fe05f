"""The history as CSV, JSON or JSON Lines (export), and back (import); history backups.

Rows are `Task.to_public()`: no key, no key fingerprint, nothing secret. In CSV the
list and object fields (`params`, `video_urls`) are JSON text in their cell; empty cells
are nulls. An import inserts tasks whose id the history does not have yet and skips
the others, so importing the same file twice changes nothing.
"""

from __future__ import annotations

import csv
import json
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from .models import Provider, Task, TaskStatus, from_iso
from .store import Filter, Store, StoreError

FORMATS = ("csv", "json", "jsonl")
COLUMNS = (
    "id", "provider", "task_id", "status", "prompt", "params", "credits_estimated",
    "credits_charged", "credits_refunded", "video_urls", "error", "created_at",
    "submitted_at", "completed_at", "generation_time", "local_path",
)  # fmt: skip
JSON_CELLS = ("params", "video_urls")
INT_CELLS = ("credits_estimated", "credits_charged", "credits_refunded")
PAGE = 1000


class ImportError_(ValueError):
    """A row of an import file cannot be read; the message names the row."""


def iter_tasks(store: Store, filter: Filter | None = None) -> Iterator[Task]:
    """Every task matching `filter`, oldest first, a page at a time."""
    offset = 0
    while True:
        page = store.list(filter, sort="oldest", limit=PAGE, offset=offset)
        yield from page
        if len(page) < PAGE:
            return
        offset += PAGE


def write_export(tasks: Iterable[Task], fmt: str, out: IO[str]) -> int:
    """Write tasks in `fmt`; returns how many."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    count = 0
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        for task in tasks:
            row = task.to_public()
            for name in JSON_CELLS:
                row[name] = json.dumps(row[name], ensure_ascii=False)
            writer.writerow({k: "" if row[k] is None else row[k] for k in COLUMNS})
            count += 1
    elif fmt == "jsonl":
        for task in tasks:
            out.write(json.dumps(task.to_public(), ensure_ascii=False) + "\n")
            count += 1
    else:
        out.write("[")
        for task in tasks:
            out.write(
                ("," if count else "") + "\n  " + json.dumps(task.to_public(), ensure_ascii=False)
            )
            count += 1
        out.write("\n]\n" if count else "]\n")
    return count


def task_from_public(row: dict[str, Any]) -> Task:
    """A task from an exported row (either JSON shape or a CSV row)."""

    def cell(name: str) -> Any:
        value = row.get(name)
        return None if value == "" else value

    params = cell("params") or {}
    urls = cell("video_urls") or []
    if isinstance(params, str):
        params = json.loads(params)
    if isinstance(urls, str):
        urls = json.loads(urls)
    if not isinstance(params, dict) or not isinstance(urls, list):
        raise ValueError("params must be an object and video_urls a list")
    ints = {n: None if cell(n) is None else int(cell(n)) for n in INT_CELLS}
    created = from_iso(cell("created_at"))
    if not cell("id") or created is None:
        raise ValueError("id and created_at are required")
    generation_time = cell("generation_time")
    return Task(
        id=str(cell("id")),
        provider=Provider(cell("provider")),
        status=TaskStatus(cell("status")),
        prompt=str(row.get("prompt") or ""),
        params=params,
        created_at=created,
        task_id=cell("task_id"),
        credits_estimated=ints["credits_estimated"],
        credits_charged=ints["credits_charged"],
        credits_refunded=ints["credits_refunded"] or 0,
        video_urls=tuple(str(u) for u in urls),
        error=cell("error"),
        submitted_at=from_iso(cell("submitted_at")),
        completed_at=from_iso(cell("completed_at")),
        generation_time=None if generation_time is None else float(generation_time),
        local_path=cell("local_path"),
    )


def read_rows(path: Path, fmt: str | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, row) of an export file; the format from `fmt` or the file's suffix."""
    fmt = fmt or path.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise ImportError_(f"{path}: cannot tell the format; pass --format csv|json|jsonl")
    with open(path, encoding="utf-8", newline="") as fh:
        if fmt == "csv":
            reader = csv.DictReader(fh)
            for row in reader:
                yield reader.line_num, row
        elif fmt == "jsonl":
            for number, line in enumerate(fh, start=1):
                if line.strip():
                    try:
                        yield number, json.loads(line)
                    except ValueError as exc:
                        raise ImportError_(f"{path}:{number}: not JSON ({exc})") from None
        else:
            try:
                data = json.load(fh)
            except ValueError as exc:
                raise ImportError_(f"{path}: not JSON ({exc})") from None
            if not isinstance(data, list):
                raise ImportError_(f"{path}: expected a JSON array of tasks")
            for number, row in enumerate(data, start=1):
                yield number, row


def import_file(store: Store, path: Path, fmt: str | None = None) -> tuple[int, int]:
    """Insert the file's tasks that the history lacks; returns (imported, skipped).

    Every row is read and checked before anything is written.
    """
    tasks: list[Task] = []
    for number, row in read_rows(path, fmt):
        if not isinstance(row, dict):
            raise ImportError_(f"{path}:{number}: expected an object")
        try:
            tasks.append(task_from_public(row))
        except (ValueError, TypeError, KeyError) as exc:
            raise ImportError_(f"{path}:{number}: {exc}") from None
    imported = skipped = 0
    for task in tasks:
        try:
            store.get(task.id)
        except StoreError:
            try:
                store.insert_task(task)
            except sqlite3.IntegrityError:
                skipped += 1  # the provider's task id is already in the history
                continue
            imported += 1
        else:
            skipped += 1
    return imported, skipped


# -- the history file ------------------------------------------------------------------


def history_stats(store: Store) -> dict[str, Any]:
    """The history file's size on disk (with its WAL) and its counts."""
    stats = store.stats()
    path = store.path
    sizes = {}
    if path is not None:
        for suffix in ("", "-wal", "-shm"):
            part = Path(str(path) + suffix)
            if part.exists():
                sizes[suffix.lstrip("-") or "db"] = part.stat().st_size
    page = store.list(None, sort="oldest", limit=1)
    last = store.list(None, sort="newest", limit=1)
    return {
        "path": str(path) if path else None,
        "bytes": sum(sizes.values()),
        "files": sizes,
        **stats,
        "oldest": page[0].to_public()["created_at"] if page else None,
        "newest": last[0].to_public()["created_at"] if last else None,
    }


def backup_history(store: Store, dest: Path) -> Path:
    """A consistent copy made with SQLite's online backup API (safe while the app runs).

    Written to `dest.tmp` and renamed into place, so `dest` is never a half copy.
    """
    dest = dest.expanduser()
    if dest.exists():
        raise FileExistsError(f"{dest} exists; choose another name")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".tmp")
    tmp.unlink(missing_ok=True)
    store.backup_to(tmp)
    tmp.replace(dest)
    return dest
