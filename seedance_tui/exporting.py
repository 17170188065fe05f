"""The history as CSV, JSON or JSON Lines (export), and back (import); history backups.

Rows are `Task.to_public()`: no key, no key fingerprint, nothing secret. In CSV the
list and object fields (`params`, `video_urls`) are JSON text in their cell; empty cells
are nulls. An import inserts tasks whose id the history does not have yet and skips
the others, so importing the same file twice changes nothing.

Every export is inert on a terminal and exact in a file:
  * JSON and JSON Lines escape every control character (C0, DEL, C1 such as the 8-bit
    CSI, bidirectional controls) as \\uXXXX: the text a terminal shows is inert, and any
    JSON reader gets the exact text back.
  * CSV keeps cells exact in a file; written to a terminal, control characters are shown
    escaped (as the screen output is: a display, not for reading back).
  * CSV cells a spreadsheet would run as a formula (starting with = + - @, a tab or a CR)
    get a leading apostrophe, which spreadsheets hide; so does a cell that starts with an
    apostrophe, so that `import` takes exactly one off every cell starting with one and
    gets the text back.
  * CSV records end in CRLF (RFC 4180), so a cell holding a bare CR is quoted.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from .models import Provider, Task, TaskStatus, from_iso
from .store import Filter, Store
from .text import inert, to_json

FORMATS = ("csv", "json", "jsonl")
COLUMNS = (
    "id", "provider", "task_id", "status", "prompt", "params", "credits_estimated",
    "credits_charged", "credits_refunded", "video_urls", "error", "created_at",
    "submitted_at", "completed_at", "generation_time", "local_path", "group",
)  # fmt: skip
JSON_CELLS = ("params", "video_urls")
INT_CELLS = ("credits_estimated", "credits_charged", "credits_refunded")
PAGE = 1000
# How a cell a spreadsheet would evaluate starts (the fullwidth forms too, which some
# spreadsheets read as the ASCII ones); the apostrophe that marks a neutralised cell.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
TEXT_MARK = "'"
_BLANK = re.compile(r"[ \t\r\n]*")  # JSON's white space


class ImportError_(ValueError):
    """A row of an import file cannot be read; the message names the row."""


def iter_tasks(store: Store, filter: Filter | None = None) -> Iterator[Task]:
    """Every task matching `filter`, oldest first, streamed (keyset pages)."""
    return store.iter_tasks(filter, sort="oldest", page=PAGE)


def spreadsheet_cell(text: str) -> str:
    """A CSV cell no spreadsheet runs as a formula (see the module's docstring)."""
    return TEXT_MARK + text if text.startswith((*FORMULA_STARTS, TEXT_MARK)) else text


def from_spreadsheet_cell(text: str) -> str:
    """The text `spreadsheet_cell` was given."""
    return text[len(TEXT_MARK) :] if text.startswith(TEXT_MARK) else text


def write_export(tasks: Iterable[Task], fmt: str, out: IO[str], *, terminal: bool = False) -> int:
    """Write tasks in `fmt`; returns how many. `terminal`: `out` is shown on a screen
    (CSV cells then have their control characters made visible)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    count = 0
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(COLUMNS)
        for task in tasks:
            row = task.to_public()
            for name in JSON_CELLS:
                row[name] = json.dumps(row[name], ensure_ascii=False)
            cells = []
            for name in COLUMNS:
                value = row[name]
                if isinstance(value, str):
                    value = spreadsheet_cell(value)
                    if terminal:
                        value = inert(value)
                cells.append("" if value is None else value)
            writer.writerow(cells)
            count += 1
    elif fmt == "jsonl":
        for task in tasks:
            out.write(to_json(task.to_public(), indent=None) + "\n")
            count += 1
    else:
        out.write("[")
        for task in tasks:
            out.write(("," if count else "") + "\n  " + to_json(task.to_public(), indent=None))
            count += 1
        out.write("\n]\n" if count else "]\n")
    return count


def task_from_public(row: dict[str, Any]) -> Task:
    """A task from an exported row (either JSON shape or a CSV row)."""

    cell = {name: None if value == "" else value for name, value in row.items()}.get

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
        group=cell("group"),
    )


def read_rows(path: Path, fmt: str | None = None) -> Iterator[tuple[int, Any]]:
    """(line number, row) of an export file, read as it goes (a file of any size in the
    memory of one row); the format from `fmt` or the file's suffix."""
    fmt = fmt or path.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise ImportError_(f"{path}: cannot tell the format; pass --format csv|json|jsonl")
    # utf-8-sig: a file saved by Excel (or any editor that adds one) starts with a BOM.
    with open(path, encoding="utf-8-sig", newline="") as fh:
        try:
            if fmt == "csv":
                reader = csv.DictReader(fh)
                for row in reader:
                    yield (
                        reader.line_num,
                        {
                            name: from_spreadsheet_cell(value) if isinstance(value, str) else value
                            for name, value in row.items()
                        },
                    )
            elif fmt == "jsonl":
                for number, line in enumerate(fh, start=1):
                    if line.strip():
                        try:
                            yield number, json.loads(line)
                        except ValueError as exc:
                            raise ImportError_(f"{path}:{number}: not JSON ({exc})") from None
            else:
                yield from enumerate(json_array_items(fh, path), start=1)
        except UnicodeDecodeError as exc:
            raise ImportError_(
                f"{path}: not UTF-8 text ({exc.reason}); check its encoding"
            ) from None


def json_array_items(fh: IO[str], path: Path, chunk: int = 1 << 16) -> Iterator[Any]:
    """The items of the JSON array `fh` holds, one at a time (json.load would hold the
    whole file and every item at once)."""
    decoder = json.JSONDecoder()
    buffer, pos, eof = "", 0, False

    def fill() -> bool:
        nonlocal buffer, pos, eof
        more = fh.read(chunk)
        buffer, pos = buffer[pos:] + more, 0
        eof = not more
        return bool(more)

    def next_char() -> str:
        """The next character that is not white space ("" at the end), left unread."""
        nonlocal pos
        while True:
            pos = _BLANK.match(buffer, pos).end()
            if pos < len(buffer) or not fill():
                return buffer[pos] if pos < len(buffer) else ""

    if next_char() != "[":
        raise ImportError_(f"{path}: expected a JSON array of tasks")
    pos += 1
    count = 0
    while True:
        char = next_char()
        if char == "]":
            pos += 1
            if next_char():
                raise ImportError_(f"{path}: not JSON (text after the array)")
            return
        if count:
            if char != ",":
                raise ImportError_(f"{path}: not JSON after item {count} (expected , or ])")
            pos += 1
            next_char()
        while True:
            try:
                item, end = decoder.raw_decode(buffer, pos)
            except json.JSONDecodeError as exc:
                if eof:
                    raise ImportError_(
                        f"{path}: not JSON at item {count + 1} ({exc.msg})"
                    ) from None
                fill()  # the item may go on past what is read so far
                continue
            after = _BLANK.match(buffer, end).end()
            if not eof and (after == len(buffer) or buffer[after] not in ",]"):
                # What is read may end inside the item: a number ("12" of "123", "2." of
                # "2.5") decodes without an error. Read on, and decode it again.
                fill()
                continue
            break
        pos = end
        count += 1
        yield item


def import_file(store: Store, path: Path, fmt: str | None = None) -> tuple[int, int]:
    """Insert the file's tasks that the history lacks; returns (imported, skipped).

    One pass over the file in the memory of one row. Every row is read and checked before
    any is written to the history (the store stages them first), so a bad row anywhere
    means nothing is imported; then they go in in batches, each its own short transaction.
    An import cut short there (killed, a full disk) can be run again: the tasks already in
    are skipped.
    """
    return store.import_tasks(_tasks_of(path, fmt))


def _tasks_of(path: Path, fmt: str | None) -> Iterator[Task]:
    for number, row in read_rows(path, fmt):
        if not isinstance(row, dict):
            raise ImportError_(f"{path}:{number}: expected an object")
        try:
            yield task_from_public(row)
        except (ValueError, TypeError, KeyError) as exc:
            raise ImportError_(f"{path}:{number}: {exc}") from None


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
