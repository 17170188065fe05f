"""Downloads: the strip (a one-line progress bar under the task list while videos are
saved) and the state it shows; opening the selected video (o) and checking the selected
task now (p), whose answer is told when it comes."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import ProgressBar, Static

from .. import library
from ..models import Task, TaskStatus
from ..store import TaskNotFoundError
from ..text import one_line, span
from .messages import DownloadFailed, DownloadFinished, DownloadProgress
from .opener import over_ssh

if TYPE_CHECKING:
    from textual.widget import Widget

    from .dashboard import DashboardScreen

PROGRESS_EVERY = 0.1  # seconds between two progress messages of one download


def megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f}"


class DownloadStrip(Horizontal):
    """Shows one download (the selected task's, else the latest); hidden when none runs."""

    def compose(self) -> ComposeResult:
        yield Static(id="download-label")
        yield ProgressBar(id="download-bar", show_eta=False)
        yield Static(id="download-size")

    def on_mount(self) -> None:
        self.display = False

    def show(self, short_id: str, done: int, total: int | None, *, others: int = 0) -> None:
        label = Text(no_wrap=True, overflow="ellipsis")
        label.append("⤓ saving ", "bold")
        label.append(short_id)
        self.query_one("#download-label", Static).update(label)
        bar = self.query_one("#download-bar", ProgressBar)
        bar.update(total=total, progress=done)
        size = Text(no_wrap=True, overflow="ellipsis", style="dim")
        size.append(
            f"{megabytes(done)}/{megabytes(total)} MB" if total else f"{megabytes(done)} MB"
        )
        if others:
            size.append(f" · +{others} more")
        self.query_one("#download-size", Static).update(size)
        self.display = True

    def hide(self) -> None:
        self.display = False


class Downloads:
    """The downloads in progress, started by a key or by the engine's auto-download:
    task id → (bytes done, total, started by auto-download), oldest first; and the pace
    of their progress messages (at most one per PROGRESS_EVERY seconds per download,
    and the last one)."""

    def __init__(self) -> None:
        self.running: dict[str, tuple[int, int | None, bool]] = {}
        self._sent: dict[str, float] = {}

    def __contains__(self, task_id: object) -> bool:
        return task_id in self.running

    def __bool__(self) -> bool:
        return bool(self.running)

    def start(self, task_id: str) -> None:
        """A download started by a key (shown at once, at 0 bytes)."""
        self.running[task_id] = (0, None, False)

    def due(self, task_id: str, done: int, total: int | None) -> bool:
        """Should this progress be sent on (not too soon after the last, or the end)?"""
        now = time.monotonic()
        finished = total is not None and done >= total
        if not finished and now - self._sent.get(task_id, 0.0) < PROGRESS_EVERY:
            return False
        self._sent[task_id] = now
        return True

    def progress(self, task_id: str, done: int, total: int | None, *, auto: bool) -> bool:
        """Record a progress; False for a late one of a download started by a key that
        has ended (nothing to show)."""
        if task_id not in self.running and not auto:
            return False
        self.running[task_id] = (done, total, auto)
        return True

    def end(self, task_id: str) -> None:
        self.running.pop(task_id, None)
        self._sent.pop(task_id, None)

    def ended_auto(self, still_running: Iterable[str]) -> list[str]:
        """The auto-downloads shown here that the downloader no longer runs."""
        alive = set(still_running)
        return [
            task_id
            for task_id, (_, _, auto) in self.running.items()
            if auto and task_id not in alive
        ]

    def shown(self, selected_id: str | None) -> tuple[str, int, int | None, int] | None:
        """What the strip shows: the selected task's download, else the latest started —
        (task id, done, total, how many others); None when none runs."""
        if not self.running:
            return None
        task_id = selected_id if selected_id in self.running else next(reversed(self.running))
        done, total, _ = self.running[task_id]
        return task_id, done, total, len(self.running) - 1


class DownloadFlow:
    """Saving the selected task's video with a key (`d`), in a worker of the dashboard
    (group "download"), and the strip that shows it and the auto-downloads."""

    def __init__(self, screen: DashboardScreen, downloads: Downloads) -> None:
        self.screen = screen
        self.downloads = downloads

    def start(self, task: Task) -> None:
        screen = self.screen
        if task.id in self.downloads:
            screen.notify(f"{task.short_id} is being saved already.")
            return
        self.downloads.start(task.id)
        screen.refresh_bindings()
        self.show()
        screen.run_worker(self._download(task), name="download", group="download",
                          exit_on_error=False)  # fmt: skip

    async def _download(self, task: Task) -> None:
        screen = self.screen

        def progress(done: int, total: int | None) -> None:
            if self.downloads.due(task.id, done, total):
                screen.post_message(DownloadProgress(task.id, done, total, auto=False))

        try:
            path = await library.download_task(task, screen.store, screen.settings,
                                               on_progress=progress, clock=screen.clock)  # fmt: skip
        except library.DownloadError as exc:
            screen.post_message(DownloadFailed(task.id, str(exc)))
        else:
            screen.post_message(DownloadFinished(task.id, str(path)))

    def progressed(self, message: DownloadProgress) -> None:
        if self.downloads.progress(message.task_id, message.done, message.total,
                                   auto=message.auto):  # fmt: skip
            self.show()

    def finished(self, message: DownloadFinished) -> None:
        self.ended(message.task_id)
        screen = self.screen
        task = screen.store.get(message.task_id)
        screen.task_list.update_task(task)
        screen.refresh_selected(task.id)
        screen.notify(f"Saved {task.short_id} to {message.path}", title="Saved", markup=False)

    def failed(self, message: DownloadFailed) -> None:
        self.ended(message.task_id)
        self.screen.notify(
            f"Could not save {message.task_id[-8:]}: {one_line(message.reason, 200)}",
            title="Not saved",
            severity="error",
            markup=False,
            timeout=10,
        )

    def ended(self, task_id: str) -> None:
        self.downloads.end(task_id)
        self.show()
        self.screen.refresh_bindings()

    def prune_auto(self) -> None:
        """Auto-downloads that ended (saved or given up) leave the strip."""
        downloader = self.screen.session.downloads
        running = downloader.progress if downloader is not None else {}
        for task_id in self.downloads.ended_auto(running):
            self.ended(task_id)

    def show(self) -> None:
        """The strip shows the selected task's download, else the latest one started."""
        strip = self.screen.download_strip
        selected = self.screen.task_list.selected
        shown = self.downloads.shown(selected.id if selected is not None else None)
        if shown is None:
            strip.hide()
            return
        task_id, done, total, others = shown
        strip.show(task_id[-8:], done, total, others=others)


# -- the selected task's video: open it (o), check it now (p) ---------------------------


def open_video(node: Widget, task: Task | None) -> None:
    """The saved file (else the link) with the system's opener; without one (over SSH,
    no desktop) copy what would have been opened — the file's path for a saved render,
    else the link — and say so."""
    try:
        target = library.open_target(task) if task else None
    except library.UnsafeTarget as exc:
        node.notify(str(exc), title="Not opened", severity="error", markup=False)
        return
    if task is None or target is None:
        node.notify("This task has no video yet.", severity="warning")
        return
    if library.open_with_system(target):
        node.notify(f"Opening {one_line(target, 80)}", markup=False)
        return
    node.app.copy_to_clipboard(target)
    where = "over SSH" if over_ssh() else "on this machine"
    what = "the link" if task.video_urls and target == task.video_urls[0] else "the file's path"
    node.notify(
        f"No system opener {where}: copied {what} instead — {one_line(target, 80)}",
        title="Copied",
        markup=False,
    )


CHECK_ANSWER_WAIT = 60.0  # seconds a check asked with `p` is watched for its answer


class PollChecks:
    """Checks asked with `p`: each is watched (once a second, from the dashboard's
    tick) until the task's events show the server's answer or a failed request, and
    that answer is told in a toast; a check with no answer after CHECK_ANSWER_WAIT says
    so."""

    def __init__(self, screen: DashboardScreen) -> None:
        self.screen = screen
        self.asked: dict[str, tuple[int, float]] = {}  # task id → (events then, asked at)

    def ask(self, task: Task | None) -> None:
        screen = self.screen
        engine = screen.engine
        if task is None or engine is None or task.status is not TaskStatus.PROCESSING:
            screen.notify("Only a task that is rendering can be checked.", severity="warning")
            return
        if task.id in self.asked:
            screen.notify(f"{task.short_id} is being checked already: its answer comes in a toast.")
            return
        if engine.poll_now(task.id):
            self.asked[task.id] = (len(screen.store.events(task.id)), time.monotonic())
            screen.notify(f"Checking {task.short_id} now: the answer comes in a toast.")
            return
        next_check = engine.next_check(task.id)
        when = f" next check in {span(max(0, next_check - screen.clock()))}" if next_check else ""
        screen.notify(f"The hourly request budget is spent;{when}", severity="warning",
                      markup=False)  # fmt: skip

    def tick(self) -> None:
        """Tell the checks that got an answer (or waited too long)."""
        screen = self.screen
        for task_id, (seen, asked_at) in list(self.asked.items()):
            try:
                task = screen.store.get(task_id)
            except TaskNotFoundError:
                self.asked.pop(task_id)
                continue
            new = screen.store.events(task_id)[seen:]
            if new:
                self.asked.pop(task_id)
                screen.notify(self.answer(task, new[-1]), title=f"Checked {task.short_id}",
                              severity="error" if new[-1].get("kind") == "error" else "information",
                              markup=False)  # fmt: skip
            elif time.monotonic() - asked_at > CHECK_ANSWER_WAIT:
                self.asked.pop(task_id)
                screen.notify(
                    f"No answer yet to the check of {task.short_id}: it stays scheduled "
                    "(the list shows its status).",
                    title=f"Checked {task.short_id}",
                    severity="warning",
                )

    def answer(self, task: Task, event: dict) -> str:
        """What the check found, in a sentence."""
        detail = one_line(event.get("detail") or "", 120)
        if event.get("kind") == "error":
            return f"The check failed: {detail or 'no usable answer'}"
        if task.status.is_pending:
            text = f"still {task.status.value}"
            engine = self.screen.engine
            next_check = engine.next_check(task.id) if engine is not None else None
            if next_check is not None and math.isfinite(next_check):
                text += f"; next check in {span(max(0.0, next_check - self.screen.clock()))}"
        else:
            text = task.status.value
            if task.error:
                text += f": {one_line(task.error, 120)}"
        return f"{text} ({detail})" if detail else text
