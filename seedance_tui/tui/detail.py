"""The detail pane: everything about the selected task, as plain text, and its frame.

The poster frame of a completed render sits at the pane's top right (`FrameView`) on a
wide screen, or a line saying why there is none; on a narrow one (an 80×24 window, where
the pane has eight rows) the text takes the whole width and the gallery (g) shows frames.
A task of a compare shows the pair first: each provider's time to finish, credits and
frame side by side, or that it is still rendering.

Long links and paths are cut in the middle to the pane's width (the host and the file
name stay); `c` copies the whole link, `o` opens the file (or the link)."""

from __future__ import annotations

import math

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.measure import Measurement
from rich.segment import Segment
from rich.table import Table
from rich.text import Text
from textual import events as textual_events
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Static

from ..models import Task, TaskStatus
from ..store import this_submitter
from ..text import inert, one_line
from .format import LINK_MARKS, LINK_TEXT, STATUS_STYLES, clock_time, duration, status_glyph
from .frame_view import FrameSource, FrameView
from .unchanged import update_in_place

# Who this dashboard submits as: its own tasks need no "by" line.
_ME = this_submitter()
LABEL_WIDTH = 8  # the widest field name ("compare", "library", "task id")


def middle_cut(text: str, width: int) -> str:
    """`text` (inert, one line) in at most `width` cells: whole if it fits, else its
    start and its end around "…" — a link keeps its host and its file name."""
    flat = inert(text, newlines=False)
    if cell_len(flat) <= width:
        return flat
    if width < 8 or not flat.isascii():
        return one_line(flat, width)
    for scheme in ("https://", "http://"):  # cut anyway: the host says more
        flat = flat.removeprefix(scheme)
    room = width - 1
    tail = flat.rsplit("/", 1)[-1]
    if 0 < len(tail) <= room - 8:
        # As much of the start as fits, then "…/" and the whole last segment.
        tail = "/" + tail
        return flat[: room - len(tail)] + "…" + tail
    keep_end = room // 2
    return flat[: room - keep_end] + "…" + flat[-keep_end:]


class MiddleCut:
    """A link or a path on one line, cut in the middle to the width it is given."""

    def __init__(self, text: str, style: str = "") -> None:
        self.text = inert(text, newlines=False)
        self.style = style

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield Text(middle_cut(self.text, options.max_width), self.style, no_wrap=True)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(min(8, cell_len(self.text)), cell_len(self.text))


def time_to_finish(task: Task) -> float | None:
    """Seconds a finished render took: the server's generation time, else from its
    acceptance (or creation) to its completion."""
    if task.generation_time is not None:
        return task.generation_time
    if task.completed_at is not None:
        return max(0.0, task.completed_at - (task.submitted_at or task.created_at))
    return None


def credits_of(task: Task) -> int:
    """Net credits as charged, else the estimate."""
    if task.credits_charged is not None:
        return task.credits_net
    return task.credits_estimated or 0


def credits_text(task: Task) -> str:
    """Net credits as charged, else the estimate (≈)."""
    approx = "" if task.credits_charged is not None else "≈"
    return f"{approx}{credits_of(task)} credits"


def pair_caption(member: Task, now: float, *, this: bool, best: set[str]) -> Text:
    """One side of a compare, three short lines (half of an 80-column pane is 19 cells):
    provider and status ("▶" marks the selected task), time to finish (or that it still
    renders, for how long), credits. The faster and the cheaper of a finished pair say so."""
    caption = Text(no_wrap=True, overflow="ellipsis")
    caption.append("▶ " if this else "  ", "bold")
    caption.append(f"{status_glyph(member.status, now)} {member.provider.value}\n",
                   STATUS_STYLES[member.status])  # fmt: skip
    took = time_to_finish(member)
    if member.status.is_pending:
        caption.append(f"  rendering {duration(now - member.created_at)}", "bold cyan")
    elif member.status is TaskStatus.COMPLETED and took is not None:
        caption.append(f"  done in {took:.1f}s", "bold" if "time" in best else "")
        if "time" in best:
            caption.append(" ↑", "green")
    else:
        caption.append(f"  {member.status.value}", STATUS_STYLES[member.status])
    caption.append("\n  ")
    caption.append(credits_text(member), "bold" if "credits" in best else "")
    if "credits" in best:
        caption.append(" ↓", "green")
    return caption


def pair_bests(pair: list[Task]) -> list[set[str]]:
    """Which side of a finished pair was faster, which cheaper (nothing on a tie)."""
    bests: list[set[str]] = [set() for _ in pair]
    done = [m for m in pair if m.status is TaskStatus.COMPLETED]
    if len(done) != 2 or len(pair) != 2:
        return bests
    times = [time_to_finish(m) for m in pair]
    if None not in times and times[0] != times[1]:
        bests[times.index(min(times))].add("time")  # type: ignore[type-var]
    costs = [credits_of(m) for m in pair]
    if costs[0] != costs[1]:
        bests[costs.index(min(costs))].add("credits")
    return bests


class ComparePair(Horizontal):
    """The two tasks of a compare side by side: a caption and a frame each."""

    def __init__(self, frames: FrameSource | None, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.frames = frames
        self.captions: list[Text] = []  # what each side says (tests read them)

    def compose(self) -> ComposeResult:
        for side in ("left", "right"):
            with Vertical(classes=f"pair-side pair-{side}"):
                yield Static(classes="pair-caption", markup=False)
                if self.frames is not None:
                    yield FrameView(self.frames, classes="pair-frame")

    def on_mount(self) -> None:
        self.display = False

    def show(self, pair: list[Task] | None, this_id: str | None, now: float) -> None:
        if not pair:
            self.captions = []
            self.display = False
            for view in self.query(FrameView):
                view.show_task(None)
            return
        bests = pair_bests(pair)
        self.captions = [
            pair_caption(m, now, this=m.id == this_id, best=b)
            for m, b in zip(pair, bests, strict=True)
        ]
        for caption_widget, caption in zip(self.query(".pair-caption").results(Static),
                                           self.captions, strict=True):  # fmt: skip
            caption_widget.update(caption)
        for view, member in zip(self.query(FrameView).results(FrameView), pair, strict=True):
            if member.status.is_pending:
                why = Text("  no frame yet", "dim")
            else:
                why = Text("  no video, no frame", "dim")
            view.show_task(member, empty=why)
        self.display = True


class DetailPane(VerticalScroll, can_focus=False):
    """Full prompt, parameters, timeline, URLs, error, timing and credits of one task;
    the pair of a compare."""

    def __init__(self, *, frames: FrameSource | None = None, id: str | None = None) -> None:
        super().__init__(id=id)
        self.frames = frames
        self._shown: tuple | None = None  # what the pane was last asked to show
        # (task, events, link, group) -> the fields and timeline they show, as rendered
        self._rest: tuple[tuple, KeptLines] | None = None
        self._asked: tuple | None = None  # the last call's arguments (a resize redoes it)

    def compose(self) -> ComposeResult:
        yield ComparePair(self.frames, id="detail-pair")
        with Horizontal(id="detail-top"):
            # The head (status, error, timing) changes with the clock; the body (the
            # rest of the fields and the timeline) only with the task: a tick repaints
            # the head's few lines, not the body's.
            with Vertical(id="detail-text"):
                yield Static(id="detail-head")
                yield Static(id="detail-body")
            if self.frames is not None:
                yield FrameView(self.frames, id="detail-frame")

    @property
    def wide(self) -> bool:
        """Room for a frame beside the text (the screen's -wide class)."""
        return self.screen.has_class("-wide")

    def on_resize(self, event: textual_events.Resize) -> None:
        # Across the breakpoint the frame comes or goes: show the same task again.
        if self._asked is not None and self._shown is not None and self._shown[6] != self.wide:
            args, kwargs = self._asked
            self.show(*args, **kwargs)

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
        self._asked = ((task, events), dict(now=now, eta=eta, next_check=next_check, link=link,
                                            waiting=waiting, group=group))  # fmt: skip
        # The same task, events and timing show the same text: rendering it again would
        # repaint and lay out the screen for nothing. The clock shows only in a pending
        # task's spinner and timing row, and in a compare's pending side.
        timing = None
        if task is not None and task.status.is_pending:
            line = timing_line(task, now, eta, next_check, waiting).plain
            timing = (status_glyph(task.status, now), line)
        pair = compare_pair(task, group)
        pair_clock = tuple(
            (status_glyph(m.status, now), duration(now - m.created_at))
            for m in pair or () if m.status.is_pending
        )  # fmt: skip
        wide = self.wide
        shown = (task, events, link, waiting, timing, pair_clock, wide, group or None)
        if shown == self._shown:
            return
        self._shown = shown
        head = self.query_one("#detail-head", Static)
        body = self.query_one("#detail-body", Static)
        self.query_one(ComparePair).show(pair, task.id if task else None, now)
        if self.frames is not None:
            # A compare shows both frames in its pair; a narrow pane shows none beside.
            self.query_one("#detail-frame", FrameView).show_task(
                task if wide and not pair else None
            )
        if task is None:
            self._rest = None
            head.update(Text("No task selected.", style="dim"))
            body.display = False
            if self.border_title != "Task":
                self.border_title = "Task"
            return
        title = f"Task {task.short_id}" + (" · compare" if pair else "")
        if self.border_title != title:
            self.border_title = title  # each setting repaints the pane
        what = (task, events, link, group or None)
        if self._rest is None or self._rest[0] != what:
            self._rest = (what, render_rest(task, events, link=link, group=group))
            update_in_place(body, self._rest[1])
        if not body.display:
            body.display = True
        # Once a second a pending task's head changes (spinner, timing): the screen is
        # laid out again only if the head's height changes (a layout is of the whole
        # screen, the costliest part of a dashboard at rest).
        content = render_head(task, now=now, eta=eta, next_check=next_check, waiting=waiting)
        update_in_place(head, content)

    @property
    def pair_pending(self) -> bool:
        """A compare is shown and one of its pair still renders (its side ticks)."""
        return bool(self._shown and self._shown[5])


def compare_pair(task: Task | None, group: list[Task] | None) -> list[Task] | None:
    """The two tasks of the compare `task` belongs to, oldest first (None: not a pair)."""
    if task is None or not group or len(group) < 2:
        return None
    members = sorted(group, key=lambda m: (m.created_at, m.id))
    if len(members) > 2:
        # More than a pair (a compare re-run): this task and the other provider's latest.
        others = [m for m in members if m.id != task.id and m.provider is not task.provider]
        if not others:
            return None
        members = sorted([task, others[-1]], key=lambda m: (m.created_at, m.id))
    return members


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


class KeptLines:
    """A renderable's lines, rendered once per width and kept: the detail pane shows
    the same fields and timeline again every second beside a ticking timing row."""

    def __init__(self, renderable: RenderableType) -> None:
        self.renderable = renderable
        self._lines: dict[int, list[list[Segment]]] = {}

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        lines = self._lines.get(options.max_width)
        if lines is None:
            if len(self._lines) >= 4:
                self._lines.clear()  # widths long gone
            lines = console.render_lines(self.renderable, options.update(height=None), pad=False)
            self._lines[options.max_width] = lines
        new_line = Segment.line()
        for line in lines:
            yield from line
            yield new_line

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement.get(console, options, self.renderable)


def _fields() -> Table:
    """A grid of fields: names, and values that wrap under themselves at a space."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="bold", no_wrap=True, width=LABEL_WIDTH)
    grid.add_column(overflow="fold")
    return grid


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
    rest: KeptLines | None = None,
) -> Group:
    """The pane's whole text in one renderable (the pane shows it as two widgets, the
    head and the rest): fields as a two-column grid (values wrap under themselves at a
    space), then the timeline. What a narrow pane's first rows must say comes first:
    status, error, timing, credits, the prompt.

    The head (status, error, timing) is what the clock changes; the rest, from the
    credits on, is the same for the same task, events, link and group: `rest`, what
    `render_rest` made for them, is shown as it was rendered."""
    return Group(
        render_head(task, now=now, eta=eta, next_check=next_check, waiting=waiting),
        rest if rest is not None else render_rest(task, events, link=link, group=group),
    )


def render_head(
    task: Task,
    *,
    now: float,
    eta: float | None = None,
    next_check: float | None = None,
    waiting: str | None = None,
) -> Table:
    """The fields the clock changes: status (a spinner), error, timing (or render time)."""
    grid = _fields()
    status = Text(
        f"{status_glyph(task.status, now)} {task.status.value}", STATUS_STYLES[task.status]
    )
    status.append(f"  {task.provider.value}", "")
    grid.add_row("status", status)
    if task.error:
        grid.add_row("error", Text(inert(task.error), "bold red"))
    if task.status.is_pending:
        grid.add_row("timing", timing_line(task, now, eta, next_check, waiting))
    elif (took := time_to_finish(task)) is not None and task.status is TaskStatus.COMPLETED:
        grid.add_row("render", Text(f"took {took:.1f}s"))
    return grid


def render_rest(
    task: Task, events: list[dict], *, link: str | None = None, group: list[Task] | None = None
) -> KeptLines:
    """The fields from the credits on, then the timeline (kept once rendered)."""
    grid = _fields()

    def row(name: str, value: Text | MiddleCut) -> None:
        grid.add_row(name, value)

    est = "-" if task.credits_estimated is None else str(task.credits_estimated)
    charged = "-" if task.credits_charged is None else str(task.credits_charged)
    credits = Text(f"charged {charged} (est. {est})")
    if task.credits_refunded:
        credits.append(f", refunded {task.credits_refunded}", "green")
    if task.credits_mismatch:
        credits.append(" ⚠ ≠ estimate", "bold yellow")
    row("credits", credits)
    pair = compare_pair(task, group)
    if pair:
        # The pair itself is shown above (time to finish, credits, frames): the total.
        total = sum(credits_of(m) for m in pair)
        row("compare", Text(f"{' vs '.join(m.provider.value for m in pair)}: {total} credits"))
    row("prompt", Text(inert(task.prompt)))
    row("params", Text(inert(params_line(task), newlines=False)))
    for url in task.params.get("image_urls", ()):
        row("image", MiddleCut(str(url), "underline"))
    for index, url in enumerate(task.video_urls):
        row("video", MiddleCut(url, "underline"))
        if index == 0:
            row("", Text("c copies the whole link", "dim"))
    if task.local_path:
        row("file", MiddleCut(task.local_path, "green" if link == "saved" else ""))
    if link is not None:
        mark, style = LINK_MARKS.get(link, ("·", "dim"))
        row("library", Text(f"{mark} {LINK_TEXT[link]}", style))
    if task.task_id:
        row("task id", Text(inert(task.task_id, newlines=False), "dim"))
    row("created", Text(clock_time(task.created_at), "dim"))
    if task.submitted_by and task.submitted_by != _ME:
        # A history shared by several machines (studio mode): someone else's task.
        row("by", Text(inert(task.submitted_by, newlines=False), "bold"))

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
    return KeptLines(Group(grid, Text(""), Text("timeline", "bold"), timeline))


def params_line(task: Task) -> str:
    """The job's fields in short ("text-to-video · 720p 8s landscape audio"); the raw
    fields when they do not make a job any more."""
    try:
        summary = task.spec.summary()
    except (ValueError, KeyError):
        summary = ""
    if not summary:
        return " ".join(f"{k}={v}" for k, v in task.params.items() if k != "image_urls")
    mode = task.params.get("mode")
    return f"{mode} · {summary}" if mode else summary
