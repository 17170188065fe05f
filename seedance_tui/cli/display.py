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
    from ..config import Settings
    from ..engine import Engine
    from ..notify import Notifier


# A finished render's place in the library (`library.link_state`), one cell before the
# prompt, as the dashboard's list marks it.
LINK_MARKS = {"saved": "⤓", "missing": "!", "expired": "⚠"}
LIST_HEADER = f"{'id':<8}  {'provider':<13} {'status':<10} {'cred':>5}  {'age':>7}    prompt"
LIST_LEGEND = "⤓ saved in the library   ! saved file gone   ⚠ link likely expired, never saved"
PROMPT_CELLS = 48  # terminal cells of the prompt column, at most
LINE_CELLS = 53  # cells of a line before its prompt
MIN_PROMPT_CELLS = 12


def prompt_cells() -> int:
    """The prompt column's width: what the terminal leaves (COLUMNS, else the terminal's
    size; 100 columns when neither is known), PROMPT_CELLS at most, so a line never
    wraps."""
    import shutil

    columns = shutil.get_terminal_size((LINE_CELLS + PROMPT_CELLS, 24)).columns
    return max(MIN_PROMPT_CELLS, min(PROMPT_CELLS, columns - LINE_CELLS))


def task_line(task: Task, now: float, link: str | None = None, cells: int = PROMPT_CELLS) -> str:
    """A task as one line of `list` (and of `watch` off a terminal): `link` is its
    `library.link_state`, shown as a mark; the prompt is cut to `cells` terminal cells
    (by display width: a CJK character or an emoji takes two)."""
    credits = task.credits_charged if task.credits_charged is not None else task.credits_estimated
    credits_text = f"{task.credits_net}" if task.credits_charged is not None else f"~{credits or 0}"
    mark = LINK_MARKS.get(link or "", " ")
    return (
        f"{task.short_id}  {task.provider.value:<13} {task.status.value:<10} "
        f"{credits_text:>5}  {span(now - task.created_at):>7}  {mark} "
        f"{one_line(task.prompt, cells)}"
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
        err(notice_line(event))


def notice_line(notice: Any) -> str:
    """A notice as one line: news as it is, trouble after its level ("warning: …")."""
    message = inert(notice.message)
    return message if notice.level == "information" else f"{notice.level}: {message}"


def start_notifier(settings: Settings, engine: Engine) -> Notifier:
    """The desktop notification and `notify_command` of each task this run sees end,
    subscribed to the engine; the notification goes to stderr's terminal (none when
    stderr is not one), a command that fails is told as a warning."""
    from ..events import Notice
    from ..notify import Notifier

    def write(text: str) -> None:
        sys.stderr.write(text)
        sys.stderr.flush()

    notifier = Notifier(
        settings.desktop_notifications,
        settings.notify_command,
        write=write if sys.stderr.isatty() else None,
        report=lambda message: engine.emit(Notice("warning", message)),
    )
    engine.subscribe(notifier.on_event)
    return notifier


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


class Relay:
    """An engine listener whose target can change (the bus has no unsubscribe): notices
    go to `print_notice` until a live display takes them over."""

    def __init__(self, target: Callable[[object], None]) -> None:
        self.target = target

    def __call__(self, event: object) -> None:
        self.target(event)


def waiting_hint(task: Task) -> str:
    """The line `submit --wait` prints as soon as the provider named the task."""
    return (
        f"task {task.short_id} — Ctrl+C stops waiting, the job keeps rendering; "
        f"`seedance-tui status {task.short_id}`"
    )


class WaitDisplay:
    """`submit --wait`'s progress on stderr: on a terminal one live line (status, elapsed,
    next check, ETA) redrawn every second; otherwise a plain line per change of status."""

    def __init__(self, engine: Engine, task: Task, *, quiet: bool = False) -> None:
        self.engine = engine
        self.task = task
        self.quiet = quiet
        self.tty = sys.stderr.isatty() and not quiet
        self.shown: TaskStatus | None = None  # the status the last plain line said
        self._drawn = False
        self._live = self.tty  # False once the wait is over: nothing is redrawn

    def line(self, now: float) -> str:
        task = self.task
        parts = [f"{task.short_id}  {task.status.value}",
                 f"{span(now - (task.submitted_at or task.created_at))} elapsed"]  # fmt: skip
        waiting = self.engine.waiting_reason(task.id)
        if waiting:
            parts.append(f"not checked: {one_line(waiting, 60)}")
        elif task.status.is_pending:
            next_at = self.engine.next_check(task.id)
            if next_at is not None:
                parts.append(f"next check in {span(max(0.0, next_at - now))}")
            eta = self.engine.eta(task.id)
            if self.engine.overdue(task.id):
                parts.append("past its likely finish")
            elif eta is not None:
                parts.append("likely done now" if eta <= now else f"ETA ~{span(eta - now)}")
        return " · ".join(parts)

    def draw(self) -> None:
        """Redraw the live line (a terminal only), cut to the terminal's width."""
        if not self._live:
            return
        import shutil

        width = max(20, shutil.get_terminal_size((80, 24)).columns - 1)
        text = self.line(time.time())
        if len(text) > width:
            text = text[: width - 1] + "…"
        sys.stderr.write("\r\x1b[K" + text)
        sys.stderr.flush()
        self._drawn = True

    def finish(self) -> None:
        """The wait is over: clear the live line for good."""
        self.clear()
        self._live = False

    def clear(self) -> None:
        if self._drawn:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
            self._drawn = False

    def on_event(self, event: object) -> None:
        from ..events import Notice, TaskChanged  # loaded with the engine

        if isinstance(event, TaskChanged) and event.task.id == self.task.id:
            self.task = event.task
            if self.tty:
                if event.task.status.is_terminal:
                    self.finish()
                else:
                    self.draw()
            elif not self.quiet and event.task.status is not self.shown:
                self.shown = event.task.status
                err(self.line(time.time()))
        elif isinstance(event, Notice):
            if event.topic == f"saved:{self.task.id}":
                return  # the final lines say where it was saved
            self.clear()
            err(notice_line(event))
            self.draw()

    async def run(self) -> None:
        """Redraw the live line every second until cancelled (a terminal only)."""
        import asyncio

        if not self.tty:
            return
        try:
            while True:
                self.draw()
                await asyncio.sleep(1.0)
        finally:
            self.finish()


class WatchDisplay:
    """Progress of `watch`: a live table on a terminal, one line per change otherwise."""

    def __init__(self, engine: Engine, watched: dict[str, Task]) -> None:
        self.engine = engine
        self.tasks = dict(watched)
        self.live: Any = None
        self.tty = sys.stderr.isatty()
        self.shown: dict[str, TaskStatus] = {}  # the status each task's last line said

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
            # One line per change of status: a saved download changes the row, not it.
            if not self.tty and self.shown.get(event.task.id) is not event.task.status:
                self.shown[event.task.id] = event.task.status
                err(f"{task_line(event.task, time.time())}")
        elif isinstance(event, Notice):
            line = notice_line(event)
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
