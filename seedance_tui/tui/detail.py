"""The detail pane: everything about the selected task, as plain text, and its frame.

The poster frame of a completed render sits at the pane's top right (`FrameView`), or a
line saying why there is none; other tasks leave the text the whole width."""

from __future__ import annotations

import math

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Static

from ..models import Task, TaskStatus
from ..store import this_submitter
from ..text import inert
from .format import LINK_MARKS, LINK_TEXT, STATUS_STYLES, clock_time, duration, status_glyph
from .frame_view import FrameSource, FrameView

# Who this dashboard submits as: its own tasks need no "by" line.
_ME = this_submitter()


class DetailPane(VerticalScroll, can_focus=False):
    """Full prompt, parameters, timeline, URLs, error, timing and credits of one task."""

    def __init__(self, *, frames: FrameSource | None = None, id: str | None = None) -> None:
        super().__init__(id=id)
        self.frames = frames
        self._shown: tuple | None = None  # what the pane was last asked to show

    def compose(self) -> ComposeResult:
        with Horizontal(id="detail-top"):
            yield Static(id="detail-body")
            if self.frames is not None:
                yield FrameView(self.frames, id="detail-frame")

    def show(
        self,
        task: Task | None,
        events: list[dict],
        *,
        now: float,
        eta: float | None = None,
        next_check: float | None = None,
        link: str | None = None,
        waiting: str | None = None,
        group: list[Task] | None = None,
    ) -> None:
        # The same task, events and timing show the same text: rendering it again would
        # repaint and lay out the screen for nothing. `now` only shows for pending work.
        # The clock shows only in a pending task's spinner and timing row.
        timing = None
        if task is not None and task.status.is_pending:
            line = timing_line(task, now, eta, next_check, waiting).plain
            timing = (status_glyph(task.status, now), line)
        shown = (task, events, link, waiting, timing, group or None)
        if shown == self._shown:
            return
        # Once a second a pending task's spinner and timing change and nothing else: when
        # the timing row keeps its length, the pane keeps its height and needs no new
        # layout (a layout of the whole screen: the costliest part of a dashboard at rest).
        previous = self._shown
        same_shape = (
            previous is not None
            and shown[:4] == previous[:4]
            and timing is not None
            and previous[4] is not None
            and len(timing[1]) == len(previous[4][1])
            # A compare's rows show the pair's timings too: their lengths may change.
            and shown[5] is None
            and previous[5] is None
        )
        self._shown = shown
        body = self.query_one("#detail-body", Static)
        if self.frames is not None:
            self.query_one(FrameView).show_task(task)
        if task is None:
            body.update(Text("No task selected.", style="dim"))
            if self.border_title != "Task":
                self.border_title = "Task"
            return
        title = f"Task {task.short_id}"
        if self.border_title != title:
            self.border_title = title  # each setting repaints the pane
        body.update(
            render_task(
                task,
                events,
                now=now,
                eta=eta,
                next_check=next_check,
                link=link,
                waiting=waiting,
                group=group,
            ),
            layout=not same_shape,
        )


def timing_line(
    task: Task, now: float, eta: float | None, next_check: float | None, waiting: str | None
) -> Text:
    """A pending task's "timing" row: how long it has run, its ETA, its next check."""
    if task.status is TaskStatus.QUEUED:
        return Text(f"queued {duration(now - task.created_at)} ago (batch queue)")
    timing = Text(f"running {duration(now - task.created_at)}")
    if eta is not None and not math.isfinite(eta):
        timing.append(", overdue (past its likely finish)")
    elif eta is not None:
        timing.append(f", ETA {'in ' + duration(eta - now) if eta > now else 'any moment'}")
    if waiting is not None:
        # Not checked at all (e.g. it needs the key it was submitted with): say why.
        timing.append(", not checked: ")
        timing.append(inert(waiting, newlines=False), "bold yellow")
    elif next_check is not None:
        timing.append(f", next check in {duration(max(0.0, next_check - now))}")
    return timing


def render_task(
    task: Task,
    events: list[dict],
    *,
    now: float,
    eta: float | None = None,
    next_check: float | None = None,
    link: str | None = None,
    waiting: str | None = None,
    group: list[Task] | None = None,
) -> Group:
    """Fields as a two-column grid (values wrap under themselves), then prompt and timeline."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="bold", no_wrap=True, width=8)
    grid.add_column(overflow="fold")

    def row(name: str, value: Text) -> None:
        grid.add_row(name, value)

    status = Text(
        f"{status_glyph(task.status, now)} {task.status.value}", STATUS_STYLES[task.status]
    )
    status.append(f"  {task.provider.value}", "")
    row("status", status)
    if task.task_id:
        row("task id", Text(inert(task.task_id, newlines=False), "dim"))
    if task.status.is_pending:
        row("timing", timing_line(task, now, eta, next_check, waiting))
    elif task.generation_time is not None:
        row("render", Text(f"{task.generation_time:.1f}s generation time"))
    est = "-" if task.credits_estimated is None else str(task.credits_estimated)
    charged = "-" if task.credits_charged is None else str(task.credits_charged)
    credits = Text(f"estimated {est}, charged {charged}")
    if task.credits_refunded:
        credits.append(f", refunded {task.credits_refunded}", "green")
    if task.credits_mismatch:
        credits.append("  ⚠ charged ≠ estimate", "bold yellow")
    row("credits", credits)
    for member in group or ():
        # A compare: each provider's task of the group, its time to finish and credits.
        line = Text(f"{status_glyph(member.status, now)} {member.provider.value} ",
                    STATUS_STYLES[member.status])  # fmt: skip
        line.append(member.status.value)
        credits_ = member.credits_net if member.credits_charged is not None else (
            member.credits_estimated or 0)  # fmt: skip
        line.append(f" · {'' if member.credits_charged is not None else '≈'}{credits_} credits")
        if member.generation_time is not None:
            line.append(f" · {member.generation_time:.1f}s")
        elif member.status.is_pending:
            line.append(f" · running {duration(now - member.created_at)}")
        if member.id == task.id:
            line.append("  (this)", "dim")
        row("compare", line)
    params = [f"{k}={v}" for k, v in task.params.items() if k != "image_urls"]
    row("params", Text(inert(" ".join(params), newlines=False)))
    for url in task.params.get("image_urls", ()):
        row("image", Text(inert(str(url), newlines=False), "underline"))
    for url in task.video_urls:
        row("video", Text(inert(url, newlines=False), "underline"))
    if task.local_path:
        row(
            "file", Text(inert(task.local_path, newlines=False), "green" if link == "saved" else "")
        )
    if link is not None:
        mark, style = LINK_MARKS.get(link, ("·", "dim"))
        row("library", Text(f"{mark} {LINK_TEXT[link]}", style))
    if task.error:
        row("error", Text(inert(task.error), "bold red"))
    row("created", Text(clock_time(task.created_at), "dim"))
    if task.submitted_by and task.submitted_by != _ME:
        # A history shared by several machines (studio mode): someone else's task.
        row("by", Text(inert(task.submitted_by, newlines=False), "bold"))

    prompt = Text("prompt\n", "bold")
    prompt.append(inert(task.prompt))
    timeline = Table.grid(padding=(0, 1))
    timeline.add_column(style="dim", no_wrap=True)
    timeline.add_column(overflow="fold")
    for event in events:
        at = event.get("at")
        line = Text(event.get("kind") or "", "bold")
        if event.get("status"):
            line.append(f" → {event['status']}", "")
        if event.get("detail"):
            line.append("  " + inert(event["detail"], newlines=False), "dim")
        timeline.add_row(clock_time(at)[11:19] if at else "--:--:--", line)
    return Group(grid, Text(""), prompt, Text(""), Text("timeline", "bold"), timeline)
