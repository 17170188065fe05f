"""`export`, `import`, `history path|stats|backup`: the history file and its tasks for
other tools."""

from __future__ import annotations

import sys
import time

import click

from ..session import Session
from ..store import Filter
from ..text import to_json
from .common import (
    EXIT_OK,
    Options,
    UsageError,
    err,
    existing_file,
    json_option,
    out,
    parse_since,
    pass_options,
    provider_option,
    status_option,
)

FORMATS = click.Choice(["csv", "json", "jsonl"])


@click.command(short_help="write the history as CSV, JSON or JSON Lines (no secrets)")
@click.option("--format", "fmt", type=FORMATS, default="jsonl", show_default=True,
              help="csv (a spreadsheet), json (one array) or jsonl (a task a line)")  # fmt: skip
@click.option("--since", metavar="DATE", help="tasks created since: YYYY-MM-DD or an ISO time")
@status_option
@provider_option("only this provider's tasks")
@click.option("--output", "-o", metavar="FILE", help="write to FILE (default: stdout)")
@pass_options
def export(
    options: Options,
    fmt: str,
    since: str | None,
    statuses: tuple[str, ...],
    provider: str | None,
    output: str | None,
) -> int:
    """The history, oldest first, without secrets. In CSV, params and video_urls are JSON
    text in their cell."""
    from ..exporting import iter_tasks, write_export

    flt = Filter(status=statuses, provider=provider, since=parse_since(since))
    with Session(options.settings()) as session:
        tasks = iter_tasks(session.store, flt)
        if output:
            from pathlib import Path

            path = Path(output).expanduser()
            tmp = path.with_name(path.name + ".tmp")
            with open(tmp, "w", encoding="utf-8", newline="") as fh:
                count = write_export(tasks, fmt, fh)
            tmp.replace(path)
            err(f"wrote {count} task(s) to {path}")
        else:
            write_export(tasks, fmt, sys.stdout, terminal=sys.stdout.isatty())
    return EXIT_OK


@click.command("import", short_help="add the tasks of an export file to the history")
@click.argument("file")
@click.option("--format", "fmt", type=FORMATS, help="default: from the file's suffix")
@pass_options
def import_file(options: Options, file: str, fmt: str | None) -> int:
    """Add an export's tasks back to the history (tasks already in it are skipped)."""
    from ..exporting import ImportError_
    from ..exporting import import_file as import_tasks

    path = existing_file(file)
    with Session(options.settings()) as session:
        try:
            imported, skipped = import_tasks(session.store, path, fmt)
        except ImportError_ as exc:
            raise UsageError(str(exc)) from None
    err(f"imported {imported} task(s), skipped {skipped} already in the history")
    return EXIT_OK


@click.group(short_help="the history file: path, stats, backup")
def history() -> None:
    """The history file: where it is, its size and counts, a consistent copy."""


@history.command("path", short_help="print the history file's path")
@pass_options
def history_path(options: Options) -> int:
    """Print where the history file is (`--db`, SEEDANCE_TUI_DB or the default)."""
    out(str(options.settings().db_path))
    return EXIT_OK


@history.command(short_help="its size and counts")
@json_option
@pass_options
def stats(options: Options, as_json: bool) -> int:
    """The history file's size and its counts: tasks per status, events, requests."""
    from ..exporting import history_stats

    with Session(options.settings()) as session:
        found = history_stats(session.store)
    if as_json:
        out(to_json(found))
        return EXIT_OK
    out(f"path        {found['path']}")
    out(f"size        {found['bytes']:,} bytes")
    out(f"tasks       {found['tasks']}")
    for status, count in sorted(found["by_status"].items()):
        out(f"  {status:<10}{count:>8}")
    out(f"events      {found['events']}")
    out(f"requests    {found['requests']}")
    out(f"oldest      {found['oldest'] or '—'}")
    out(f"newest      {found['newest'] or '—'}")
    out(f"schema      {found['schema_version']}")
    return EXIT_OK


@history.command(short_help="a consistent copy (SQLite backup API; safe while the app runs)")
@click.argument("dest", required=False, metavar="DEST")
@pass_options
def backup(options: Options, dest: str | None) -> int:
    """A consistent copy of the history (SQLite's backup API: safe while the app runs);
    DEST defaults to backups/history-<time>.db in the data dir."""
    from pathlib import Path

    from ..exporting import backup_history
    from ..paths import backups_dir

    target = (
        Path(dest).expanduser()
        if dest
        else backups_dir() / f"history-{time.strftime('%Y%m%d-%H%M%S')}.db"
    )
    with Session(options.settings()) as session:
        try:
            path = backup_history(session.store, target)
        except FileExistsError as exc:
            raise UsageError(str(exc)) from None
    out(str(path))
    return EXIT_OK
