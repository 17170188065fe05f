"""How the commands show things: a task as a line or in full, an outcome, notices, the
live `watch` table and download progress.

Text from outside (prompts, server messages, URLs, paths) goes through `text.inert`, so
that a terminal never acts on it; the live displays hand rich only `Text` objects and
`markup=False` strings.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..models import Task, TaskStatus, iso
from ..text import inert, one_line, span
from .common import err

if TYPE_CHECKING:
    from ..engine import Engine


def task_line(task: Task, now: float) -> str:
    credits = task.credits_charged if task.credits_charged is not None else task.credits_estimated
    credits_text = f"{task.credits_net}" if task.credits_charged is not None else f"~{credits or 0}"
    return (
        f"{task.short_id}  {task.provider.value:<13} {task.status.value:<10} "
        f"{credits_text:>5}  {span(now - task.created_at):>7}  {one_line(task.prompt, 48)}"
    )


def task_detail(task: Task, events: list[dict[str, Any]]) -> str:
    lines = [
        f"id            {task.id}",
        f"provider      {task.provider.value}",
        f"task id       {inert(task.task_id) or '—'}",
        f"status        {task.status.value}",
        f"parameters    {task.spec.summary() or '—'}",
        f"credits       estimated {task.credits_estimated}, charged "
        f"{'—' if task.credits_charged is None else task.credits_charged}"
        + (f", refunded {task.credits_refunded}" if task.credits_refunded else "")
        + ("  (differs from the estimate)" if task.credits_mismatch else ""),
        f"created       {iso(task.created_at)}",
    ]
    if task.completed_at:
        lines.append(f"completed     {iso(task.completed_at)}")
    if task.generation_time is not None:
        lines.append(f"generation    {task.generation_time:g}s")
    for url in task.video_urls:
        lines.append(f"video         {inert(url, newlines=False)}")
    if task.local_path:
        lines.append(f"saved         {inert(task.local_path)}")
    if task.error:
        lines.append(f"error         {inert(task.error)}")
    lines.append(f"prompt        {inert(task.prompt)}")
    if events:
        lines.append("events")
        for event in events:
            lines.append(
                f"  {iso(event['at'])}  {event['kind']:<9} {event['status'] or '':<10} "
                f"{one_line(event['detail'], 60)}"
            )
    return "\n".join(lines)


def print_notice(event: object) -> None:
    """An engine listener: each notice (what a wait is for, trouble) as a line on stderr."""
    from ..events import Notice  # loaded with the engine, which alone emits events

    if isinstance(event, Notice):
        err(f"{event.level}: {inert(event.message)}")


def describe_outcome(task: Task) -> str:
    if task.status is TaskStatus.COMPLETED:
        text = f"completed: {', '.join(inert(u, newlines=False) for u in task.video_urls)}"
        if task.local_path:
            text += f"\nsaved: {inert(task.local_path, newlines=False)}"
        return text
    if task.status is TaskStatus.PROCESSING:
        return f"submitted as {inert(task.task_id)} (id {task.short_id}); check with `seedance-tui status {task.short_id}`"
    return f"{task.status.value}: {inert(task.error)}"


def reasons(held: dict[str, str]) -> dict[str, int]:
    """How many tasks wait for each reason."""
    counts: dict[str, int] = {}
    for reason in held.values():
        counts[reason] = counts.get(reason, 0) + 1
    return counts


class WatchDisplay:
    """Progress of `watch`: a live table on a terminal, one line per change otherwise."""

    def __init__(self, engine: Engine, watched: dict[str, Task]) -> None:
        self.engine = engine
        self.tasks = dict(watched)
        self.live: Any = None
        self.tty = sys.stderr.isatty()

    def start(self) -> None:
        if not self.tty:
            err(f"watching {len(self.tasks)} pending task(s)")
            return
        from rich.console import Console
        from rich.live import Live

        self.live = Live(self.render(), console=Console(stderr=True), refresh_per_second=2,
                         get_renderable=self.render)  # fmt: skip
        self.live.start()

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()

    def on_event(self, event: object) -> None:
        from ..events import Notice, TaskChanged  # loaded with the engine

        if isinstance(event, TaskChanged):
            self.tasks[event.task.id] = event.task
            if not self.tty:
                err(f"{task_line(event.task, time.time())}")
        elif isinstance(event, Notice):
            line = f"{event.level}: {inert(event.message)}"
            if self.live is not None:
                self.live.console.print(line, markup=False, highlight=False)
            else:
                err(line)

    def render(self) -> Any:
        from rich.table import Table
        from rich.text import Text

        now = time.time()
        done = sum(1 for t in self.tasks.values() if t.status.is_terminal)
        table = Table(title=Text(f"watching: {done}/{len(self.tasks)} done"), expand=False)
        for column in ("id", "provider", "status", "elapsed", "next check", "prompt"):
            table.add_column(column)
        for task in sorted(self.tasks.values(), key=lambda t: t.created_at):
            next_at = self.engine.next_check(task.id)
            waiting = self.engine.waiting_reason(task.id)
            if waiting:
                when = one_line(waiting, 40)
            else:
                when = "—" if next_at is None else f"in {max(0, next_at - now):.0f}s"
            table.add_row(
                task.short_id,
                task.provider.value,
                task.status.value,
                span(now - (task.submitted_at or task.created_at)),
                Text(when),
                Text(one_line(task.prompt, 40)),
            )
        return table


class DownloadDisplay:
    """Download progress on stderr: rich progress bars on a terminal, plain lines otherwise."""

    def __init__(self, count: int, *, quiet: bool = False) -> None:
        self.count = count
        self.quiet = quiet
        self.tty = sys.stderr.isatty() and not quiet
        self.progress: Any = None
        self._bars: dict[str, Any] = {}

    def __enter__(self) -> DownloadDisplay:
        if self.tty:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )  # fmt: skip

            self.progress = Progress(
                TextColumn("{task.description}", markup=False), BarColumn(), DownloadColumn(),
                TransferSpeedColumn(), TimeRemainingColumn(), console=Console(stderr=True),
            )  # fmt: skip
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def progress_for(self, task: Task) -> Callable[[int, int | None], None]:
        label = f"{task.short_id} {one_line(task.prompt, 30)}"
        if self.progress is not None:
            bar = self.progress.add_task(label, total=None)
            self._bars[task.id] = bar

            def update(done: int, total: int | None) -> None:
                self.progress.update(bar, completed=done, total=total)

            return update
        if not self.quiet:
            err(f"downloading {label}")
        marks: set[int] = set()

        def plain(done: int, total: int | None) -> None:
            if self.quiet or not total:
                return
            step = min(100, done * 100 // total) // 25 * 25
            if step and step not in marks:
                marks.add(step)
                err(f"  {step:>3}%  {done}/{total} bytes")

        return plain

    def saved(self, task: Task, path: str) -> None:
        if self.progress is None and not self.quiet:
            err(f"  saved {task.short_id} → {inert(path)}")

    def failed(self, task: Task, message: str) -> None:
        if self.progress is not None:
            self.progress.console.print(f"failed {task.short_id}: {inert(message)}", markup=False)
        elif not self.quiet:
            err(f"  failed {task.short_id}: {inert(message)}")
