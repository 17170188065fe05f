"""`queue status|pause|resume`: the batch queue (the pause is persisted in the history)."""

from __future__ import annotations

import click

from ..batch_queue import is_paused, set_paused
from ..session import Session
from ..text import to_json
from .common import EXIT_OK, Options, err, json_option, out, pass_options


@click.group(short_help="the batch queue: status, pause, resume (persisted)")
def queue() -> None:
    """The batch queue: queued jobs are sent within each key's rate budget by
    `submit --batch`, `watch` or the dashboard; a pause stops all of them."""


@queue.command(short_help="queued jobs per provider and whether paused")
@json_option
@pass_options
def status(options: Options, as_json: bool) -> int:
    """Queued batch jobs per provider, and whether the queue is paused."""
    with Session(options.settings()) as session:
        counts = session.store.count_queued()
        paused = is_paused(session.store)
    if as_json:
        out(to_json({"paused": paused, "queued": counts, "total": sum(counts.values())}))
        return EXIT_OK
    out(f"queue {'paused' if paused else 'running'}: {sum(counts.values())} job(s) waiting")
    for name, count in sorted(counts.items()):
        out(f"  {name:<14}{count:>6}")
    return EXIT_OK


@queue.command(short_help="send no queued job until resumed")
@pass_options
def pause(options: Options) -> int:
    """Send no queued job until `queue resume` (the pause is kept in the history, so
    every dashboard and `watch` sharing it obeys)."""
    with Session(options.settings()) as session:
        set_paused(session.store, True)
    err("queue paused: no queued job is sent until `seedance-tui queue resume`")
    return EXIT_OK


@queue.command(short_help="send queued jobs again")
@pass_options
def resume(options: Options) -> int:
    """Send queued jobs again, within each key's rate budget."""
    with Session(options.settings()) as session:
        set_paused(session.store, False)
    err("queue resumed: a running dashboard or `watch` sends the jobs")
    return EXIT_OK
