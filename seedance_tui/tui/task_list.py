"""The task list: a virtual list over the history file, a page of rows at a time.

Nothing here holds more than a few pages of tasks, whatever the size of the history:
`render_line` asks a small LRU cache of pages for the row at an index, and the cache
fetches a page from SQLite when it misses (keyset paging from a neighbouring page when it
can, OFFSET from the nearer end of the list when it must). An engine update replaces the
task in its cached page and repaints that one line; only a change of membership (a new
task, a status leaving the filter) re-counts and drops the cache.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace

from rich.cells import cell_len
from rich.control import strip_control_codes
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from ..models import PENDING_STATUSES, Task
from ..store import Filter, Store
from ..text import one_line
from .format import (
    LINK_MARKS,
    PROVIDER_SHORT,
    STATUS_STYLES,
    credits_cell,
    duration,
    eta_text,
    params_text,
    status_glyph,
)
from .keys import TASK_LIST_BINDINGS

PAGE_SIZE = 100
TICK = 1.0  # seconds between two looks at the rows in view (spinners, ages, ETAs): the
# list's owner calls `tick` this often, beside its own once-a-second updates (one frame)
MAX_PAGES = 12  # at most 1,200 tasks held, whatever the history's size
KEPT_ROWS = 500  # rows whose cells are kept (a few screens of them)
TIME_SORTS = {"newest": "oldest", "oldest": "newest"}
NOTHING_TO_SEARCH = "nothing to search for: a search matches words (letters and digits)"
MIN_PROMPT = 16  # cells the prompt keeps before another column is shown
WIDE_PROMPT = 36  # beyond this many cells of prompt, params grow ...
WIDE_PARAMS = 30  # ... up to this width ("1080p 12s landscape img×2 audio fixed")
TICKING = ("status", "time", "eta")  # the columns whose text the clock changes
# The columns worked out at each paint of a row: the clock's, and the library mark (a
# saved file can go); the others are kept per task until the task or the layout changes.
DYNAMIC = frozenset(TICKING) | {"mark"}
COLUMN_ORDER = ["id", "provider", "status", "mark", "prompt", "params", "credits", "time", "eta"]


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    title: str
    width: int
    justify: str = "left"


class TaskPages:
    """The rows of one query over the history, fetched a page at a time and kept in a small
    LRU of pages (the task list and the gallery each hold one).

    A page is fetched by keyset from a neighbouring page when one is held, else by
    OFFSET from the nearer end of the list."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.filter = Filter()
        self.sort = "newest"
        self.unsearchable = False
        self.total = 0
        self._pages: OrderedDict[int, list[Task]] = OrderedDict()
        self.page_loads = 0  # pages fetched from SQLite (tests and benchmarks read it)

    def set_query(self, filter: Filter, sort: str, *, unsearchable: bool = False) -> None:
        """`unsearchable`: a search with no word to search for, which lists nothing."""
        self.filter, self.sort = filter, sort
        self.unsearchable = unsearchable
        self.recount()

    def recount(self) -> None:
        """Drop every held page and count the query's rows again."""
        self._pages.clear()
        self.total = 0 if self.unsearchable else self.store.count(self.filter)

    def task_at(self, index: int) -> Task | None:
        if not 0 <= index < self.total:
            return None
        page_no, offset = divmod(index, PAGE_SIZE)
        page = self._pages.get(page_no)
        if page is None:
            page = self._load(page_no)
        else:
            self._pages.move_to_end(page_no)
        return page[offset] if offset < len(page) else None

    def held(self, index: int) -> Task | None:
        """The task at `index` if its page is held (never a query)."""
        page = self._pages.get(index // PAGE_SIZE)
        offset = index % PAGE_SIZE
        return page[offset] if page is not None and offset < len(page) else None

    def _load(self, page_no: int) -> list[Task]:
        self.page_loads += 1
        start = page_no * PAGE_SIZE
        wanted = min(PAGE_SIZE, self.total - start)
        rows: list[Task] | None = None
        matches = self.total  # how a search is paged depends on how many rows match
        if self.sort in TIME_SORTS:
            before, after = self._pages.get(page_no - 1), self._pages.get(page_no + 1)
            if before and len(before) == PAGE_SIZE:
                rows = self.store.list_after(
                    self.filter, before[-1].id, sort=self.sort, limit=PAGE_SIZE, matches=matches
                )
            elif after:
                rows = self.store.list_after(
                    self.filter, after[0].id, sort=self.sort, limit=PAGE_SIZE, backwards=True,
                    matches=matches,
                )  # fmt: skip
            elif start > self.total // 2:
                # Deep in the list: count from the other end, where the offset is short.
                rows = self.store.list(
                    self.filter,
                    sort=TIME_SORTS[self.sort],
                    limit=wanted,
                    offset=max(self.total - start - wanted, 0),
                    matches=matches,
                )
                rows.reverse()
        if rows is None:
            rows = self.store.list(
                self.filter, sort=self.sort, limit=PAGE_SIZE, offset=start, matches=matches
            )
        self._pages[page_no] = rows
        while len(self._pages) > MAX_PAGES:
            self._pages.popitem(last=False)
        return rows

    def locate(self, task_id: str) -> int | None:
        """The index of a held task."""
        for page_no, rows in self._pages.items():
            for offset, row in enumerate(rows):
                if row.id == task_id:
                    return page_no * PAGE_SIZE + offset
        return None

    def replace(self, index: int, task: Task) -> None:
        """Put a newer copy of the held task at `index` in its page."""
        page_no, offset = divmod(index, PAGE_SIZE)
        self._pages[page_no][offset] = task

    def held_rows(self) -> int:
        return sum(len(rows) for rows in self._pages.values())


class TaskList(ScrollView, can_focus=True):
    """Rows of tasks from the history, newest first by default; a fixed header line."""

    BINDINGS = TASK_LIST_BINDINGS
    COMPONENT_CLASSES = {"task-list--header", "task-list--cursor", "task-list--dim"}
    DEFAULT_CSS = """
    TaskList { background: $surface; }
    TaskList > .task-list--header { text-style: bold; color: $text-muted; }
    TaskList > .task-list--cursor { background: $boost; text-style: bold; }
    TaskList:focus > .task-list--cursor { background: $accent 40%; }
    TaskList > .task-list--dim { color: $text-muted; }
    """

    @dataclass
    class Highlighted(Message):
        """The cursor moved to another task (or the list became empty: None); a newer
        one replaces a queued one (the cursor is where the last one says)."""

        task_id: str | None

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, TaskList.Highlighted)

    @dataclass
    class Reloaded(Message):
        """The query changed or membership changed: a new count (the newest counts)."""

        total: int

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, TaskList.Reloaded)

    def __init__(
        self,
        store: Store,
        *,
        clock: Callable[[], float],
        # A pending task's expected finish (epoch seconds); None: not known; not
        # finite: overdue (past its likely finish).
        eta: Callable[[str], float | None] = lambda task_id: None,
        link: Callable[[Task], str | None] = lambda task: None,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.store = store
        self.clock = clock
        self.eta = eta
        self.link = link  # the library state of a finished render (`library.link_state`)
        self.rows = TaskPages(store)
        self.cursor = 0
        self._cursor_id: str | None = None
        self._reload_queued = False
        self._wanted_id: str | None = None
        # Index -> the clock-driven text of that row as last painted (see `tick`).
        self._painted: dict[int, tuple[str, ...]] = {}
        # Rows whose task changed and that were not repainted yet (see `paint_changed`).
        self._changed: set[int] = set()
        self._rendering = 0  # tasks of the query being submitted or rendered (eta column)
        # The columns of the last layout: ((row width, any eta column), columns).
        self._layout: tuple[tuple[int, bool], list[Column]] | None = None
        # Task id -> (the task, its layout key, each column's cell; None: worked out at
        # each paint, see DYNAMIC): a tick repaints a row from these and three cells.
        self._kept_cells: dict[str, tuple[Task, tuple[int, bool], list]] = {}
        # The line style of a row and of the cursor's row: `rich_style` walks the
        # ancestors' backgrounds (~0.3 ms), once a line was most of a tick's frame.
        self._line_styles: tuple[Style, Style] | None = None

    @property
    def filter(self) -> Filter:
        return self.rows.filter

    @property
    def sort(self) -> str:
        return self.rows.sort

    @property
    def total(self) -> int:
        return self.rows.total

    @property
    def page_loads(self) -> int:
        """Pages fetched from SQLite (tests and benchmarks read it)."""
        return self.rows.page_loads

    # -- the query ---------------------------------------------------------------------

    def on_mount(self) -> None:
        self.set_query(self.filter, self.sort)

    def set_query(self, filter: Filter, sort: str, *, unsearchable: bool = False) -> None:
        """Show another filter or sort: count, drop the cache, cursor to the top.
        `unsearchable`: the search has no word to search for; the list says so."""
        self.rows.set_query(filter, sort, unsearchable=unsearchable)
        self._changed.clear()  # repainted whole, below
        self._count_rendering()
        self.cursor = 0
        self._sync_size()
        self.scroll_to(y=0, animate=False, immediate=True)
        self.refresh()
        self._highlight()
        self.post_message(self.Reloaded(self.total))

    def reload(self) -> None:
        """Re-count and drop the cache, keeping the cursor on its task and the view still.

        Called for changes of membership; several in one tick cost one reload."""
        if not self._reload_queued:
            self._reload_queued = True
            self.call_later(self._reload_now)

    def _reload_now(self) -> None:
        self._reload_queued = False
        old_index, old_id = self.cursor, self._cursor_id
        self.rows.recount()
        self._changed.clear()  # repainted whole, below
        self._count_rendering()
        self._sync_size()
        index = min(old_index, max(self.total - 1, 0))
        if old_id is not None:
            for candidate in range(max(0, old_index - 3), min(self.total, old_index + 4)):
                row = self.task_at(candidate)
                if row is not None and row.id == old_id:
                    index = candidate
                    break
        shift = index - old_index
        self.cursor = index
        # At the top, new rows appear above the cursor in view; further down the view keeps
        # showing the same rows.
        if shift and self.scroll_y > 0:
            self.scroll_to(y=self.scroll_y + shift, animate=False, immediate=True)
        self._ensure_cursor_visible()
        self.refresh()
        self._highlight()
        self.post_message(self.Reloaded(self.total))
        if self._wanted_id is not None:
            self.select(self._wanted_id)

    def select(self, task_id: str, *, near_top: int = 20) -> bool:
        """Put the cursor on a task among the first rows (a fresh submission is there);
        if a reload is pending, once it is done."""
        if self._reload_queued:
            self._wanted_id = task_id
            return False
        self._wanted_id = None
        for index in range(min(self.total, near_top)):
            row = self.task_at(index)
            if row is not None and row.id == task_id:
                self.move_cursor(index)
                return True
        return False

    def _count_rendering(self) -> None:
        """How many of the query's tasks are being submitted or rendered (only they have
        an ETA: without any, the eta column goes)."""
        f = self.filter
        statuses = tuple(s.value for s in PENDING_STATUSES if not f.status or s.value in f.status)
        if not statuses or self.rows.unsearchable:
            self._rendering = 0
        else:
            self._rendering = self.store.count(replace(f, status=statuses))

    def _sync_size(self) -> None:
        self.virtual_size = Size(self.size.width, self.total + 1)  # +1: the header line

    def on_resize(self, event: events.Resize) -> None:
        self._sync_size()

    # -- rows --------------------------------------------------------------------------

    def task_at(self, index: int) -> Task | None:
        return self.rows.task_at(index)

    def _matches(self, task: Task) -> bool:
        """Does the task pass the status and provider filters (search aside)?"""
        f = self.filter
        if f.status and task.status.value not in f.status:
            return False
        return not (f.provider and task.provider.value != f.provider)

    @property
    def selected(self) -> Task | None:
        return self.task_at(self.cursor)

    def held_rows(self) -> int:
        return self.rows.held_rows()

    def held_task(self, task_id: str) -> Task | None:
        """The copy of a task the list holds (never a query), as it was last shown."""
        index = self.rows.locate(task_id)
        return None if index is None else self.rows.held(index)

    def update_task(self, task: Task, *, is_new: bool = False, paint: bool = True) -> None:
        """An engine update: repaint the task's row in place, or re-count if it came or went.

        With `paint=False` the row holds the new task at once (what the list is asked
        shows it) but is repainted by the next `paint_changed`: the caller
        gathers the changes of a moment into one frame, and says when the cursor's task
        changed itself (no Highlighted is posted for it)."""
        index = self.rows.locate(task.id)
        if index is None:
            if is_new or self.filter.status:
                self.reload()
            return
        if not self._matches(task):
            self.reload()
            return
        before = self.rows.held(index)
        self.rows.replace(index, task)
        rendering = task.status in PENDING_STATUSES
        if before is not None and (before.status in PENDING_STATUSES) != rendering:
            # The eta column comes or goes with the first or last rendering task.
            had_eta = self._rendering > 0
            self._rendering = max(0, self._rendering + (1 if rendering else -1))
            if had_eta != (self._rendering > 0):
                self.refresh()
        if not paint:
            self._changed.add(index)
            return
        self._refresh_row(index)
        if index == self.cursor:
            self._highlight()

    def paint_changed(self) -> None:
        """Repaint the rows changed by `update_task(paint=False)` since the last paint,
        in one refresh."""
        changed, self._changed = self._changed, set()
        regions = [region for index in changed if (region := self._row_region(index))]
        if regions:
            self.refresh(*regions)

    # -- cursor ------------------------------------------------------------------------

    def _highlight(self) -> None:
        task = self.selected
        self._cursor_id = task.id if task else None
        self.post_message(self.Highlighted(self._cursor_id))

    def move_cursor(self, index: int) -> None:
        index = max(0, min(index, self.total - 1))
        if self.total == 0 or index == self.cursor:
            return
        old = self.cursor
        self.cursor = index
        self._refresh_row(old)
        self._refresh_row(index)
        self._ensure_cursor_visible()
        self._highlight()

    @property
    def _rows_in_view(self) -> int:
        return max(1, self.size.height - 1)

    def _ensure_cursor_visible(self) -> None:
        top = round(self.scroll_y)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor >= top + self._rows_in_view:
            self.scroll_to(y=self.cursor - self._rows_in_view + 1, animate=False, immediate=True)

    def _refresh_row(self, index: int) -> None:
        region = self._row_region(index)
        if region is not None:
            self.refresh(region)

    def _row_region(self, index: int) -> Region | None:
        """Where the row of this index is on the widget (None: out of view)."""
        y = index - round(self.scroll_y) + 1
        return Region(0, y, self.size.width, 1) if 1 <= y < self.size.height else None

    def action_cursor_up(self) -> None:
        self.move_cursor(self.cursor - 1)

    def action_cursor_down(self) -> None:
        self.move_cursor(self.cursor + 1)

    def action_page_up(self) -> None:
        self.move_cursor(self.cursor - self._rows_in_view)

    def action_page_down(self) -> None:
        self.move_cursor(self.cursor + self._rows_in_view)

    def action_first(self) -> None:
        self.move_cursor(0)

    def action_last(self) -> None:
        self.move_cursor(self.total - 1)

    def on_click(self, event: events.Click) -> None:
        if event.y >= 1:
            self.move_cursor(round(self.scroll_y) + event.y - 1)

    def tick(self) -> None:
        """Once a TICK: repaint the rows in view whose clock-driven text changed (a
        spinner turned, an age or an ETA ticked over), all in one refresh (one frame).

        A row's age changes once a second for its first ten minutes, once a minute or
        less often after that, so a list of finished tasks at rest repaints almost nothing."""
        top = round(self.scroll_y)
        width = self.size.width
        columns = self._columns(self._row_width - 1)[1]
        now = self.clock()
        painted, self._painted = self._painted, {}
        regions = []
        for index in range(top, min(self.total, top + self._rows_in_view)):
            task = self.rows.held(index)
            if task is None:
                continue
            ticking = self._ticking(task, columns, now)
            self._painted[index] = ticking
            if painted.get(index) != ticking:
                regions.append(Region(0, index - top + 1, width, 1))
        if regions:
            self.refresh(*regions)

    # -- painting ----------------------------------------------------------------------

    def columns(self, width: int) -> list[Column]:
        """Which columns fit: the prompt takes what the others leave.

        The library mark (saved, gone, expired) has a column of its own, so prompts line
        up; the eta column is there only while a task of the query is being rendered and
        the prompt keeps room beside it; params grow on a wide list."""
        status_w = 12 if width >= 70 else 1
        wanted = [
            Column("id", "id", 8),
            Column("credits", "cr", 4, "right"),
            Column("time", "age", 5, "right"),
            Column("provider", "prov", 4),
            Column("params", "params", 18),
        ]
        if self._rendering:
            wanted.append(Column("eta", "eta", 7, "right"))  # "overdue"
        chosen = [
            Column("status", "status" if status_w > 1 else "", status_w),
            Column("mark", "", 1),
        ]
        used = status_w + 1  # cells of the chosen columns; one space between two
        for column in wanted:
            if width - (used + column.width) - (len(chosen) + 1) >= MIN_PROMPT:
                chosen.append(column)
                used += column.width
        prompt_w = max(4, width - used - len(chosen))
        if prompt_w > WIDE_PROMPT and any(c.key == "params" for c in chosen):
            # A wide list: whole parameter summaries ("1080p 12s landscape audio fixed").
            grow = min(WIDE_PARAMS - 18, prompt_w - WIDE_PROMPT)
            chosen = [replace(c, width=c.width + grow) if c.key == "params" else c
                      for c in chosen]  # fmt: skip
            prompt_w -= grow
        chosen.append(Column("prompt", "prompt", prompt_w))
        return sorted(chosen, key=lambda c: COLUMN_ORDER.index(c.key))

    def _columns(self, width: int) -> tuple[tuple[int, bool], list[Column]]:
        """`columns(width)`, worked out again only when the width or the eta column
        changes; with its key."""
        key = (width, self._rendering > 0)
        if self._layout is None or self._layout[0] != key:
            self._layout = (key, self.columns(width))
            self._kept_cells.clear()
        return self._layout

    def _row_cells(
        self, task: Task, layout: tuple[tuple[int, bool], list[Column]], now: float
    ) -> list[tuple[str, str]]:
        """Each column's (text, style) of a task's row: the columns the clock or the
        library change worked out now, the others kept from the task's last paint."""
        key, columns = layout
        kept = self._kept_cells.get(task.id)
        if kept is None or kept[0] is not task or kept[1] != key:
            if len(self._kept_cells) > KEPT_ROWS:
                self._kept_cells.clear()  # rows long out of view
            # As Text.append would: no control code reaches the terminal.
            cells = [None if column.key in DYNAMIC else
                     self._sanitized(self._cell(task, column, now)) for column in columns]  # fmt: skip
            kept = (task, key, cells)
            self._kept_cells[task.id] = kept
        return [
            self._cell(task, column, now) if cell is None else cell
            for column, cell in zip(columns, kept[2], strict=True)
        ]

    @staticmethod
    def _sanitized(cell: tuple[str, str]) -> tuple[str, str]:
        return strip_control_codes(cell[0]), cell[1]

    def _ticking(self, task: Task, columns: list[Column], now: float) -> tuple[str, ...]:
        """The text of a row's cells that the clock changes (spinner, age, ETA)."""
        return tuple(
            self._cell(task, column, now)[0] for column in columns if column.key in TICKING
        )

    def _cell(self, task: Task, column: Column, now: float) -> tuple[str, str]:
        """One cell's text (at most its column's width in cells) and style."""
        key = column.key
        style = ""
        if key == "id":
            value = task.short_id
        elif key == "provider":
            value = PROVIDER_SHORT.get(task.provider, task.provider.value[:4])
        elif key == "status":
            glyph = status_glyph(task.status, now)
            value = glyph if column.width == 1 else f"{glyph} {task.status.value}"
            style = STATUS_STYLES[task.status]
        elif key == "mark":
            # A saved, lost or likely expired video.
            value, style = LINK_MARKS.get(self.link(task) or "", ("", ""))
        elif key == "prompt":
            value = task.prompt
        elif key == "params":
            value = params_text(task)
        elif key == "credits":
            value = credits_cell(task)
            if task.credits_mismatch:
                style = "bold yellow"
        elif key == "time":
            value = duration(now - task.created_at)  # its age, finished or not
        else:  # eta
            eta = self.eta(task.id) if task.status.is_pending else None
            value = "" if eta is None else eta_text(eta, now)
        # Inert (a bidi control shows as "\u202e"), on one line, cut by display width
        # with "…" (a CJK character or an emoji takes two cells).
        return one_line(value, column.width), style

    def _header(self, columns: list[Column]) -> Text:
        line = Text(no_wrap=True, end="")
        for i, column in enumerate(columns):
            if i:
                line.append(" ")
            title = column.title[: column.width]
            if column.justify == "right":
                line.append(title.rjust(column.width))
            else:
                line.append(title.ljust(column.width))
        return line

    @property
    def _row_width(self) -> int:
        """Cells a row has (the scrollbar's column aside)."""
        return self.scrollable_content_region.width

    def notify_style_update(self) -> None:
        """The CSS of the list or of an ancestor changed (focus, theme, screen class)."""
        self._line_styles = None
        super().notify_style_update()

    def _line_style(self, cursor: bool = False) -> Style:
        """A row's style, or the cursor row's (kept until the CSS changes)."""
        if self._line_styles is None:
            base = self.rich_style
            cursor_style = base + self.get_component_rich_style("task-list--cursor")
            self._line_styles = (base, cursor_style)
        return self._line_styles[cursor]

    def render_line(self, y: int) -> Strip:
        width = self._row_width
        base = self._line_style()
        layout = self._columns(width - 1)  # a space before the first column
        columns = layout[1]
        if y == 0:
            style = base + self.get_component_rich_style("task-list--header")
            return self._strip(self._header(columns), style, width)
        index = round(self.scroll_y) + y - 1
        task = self.task_at(index)
        if task is None:
            if index == 0 and self.total == 0:
                dim = base + self.get_component_rich_style("task-list--dim")
                if self.rows.unsearchable:
                    empty = NOTHING_TO_SEARCH
                elif self._filtered:
                    empty = "no tasks match"
                else:
                    empty = "no tasks yet: press n to write one"
                return self._strip(Text(empty), dim, width)
            return Strip.blank(width, base)
        style = self._line_style(cursor=index == self.cursor)
        now = self.clock()
        # Each cell once: what the clock changes is kept for `tick`, and the line is made.
        cells = self._row_cells(task, layout, now)
        self._painted[index] = tuple(
            text for column, (text, _style) in zip(columns, cells, strict=True)
            if column.key in TICKING
        )  # fmt: skip
        return self._row_strip(columns, cells, style, width)

    def _row_strip(
        self, columns: list[Column], cells: list[tuple[str, str]], style: Style, width: int
    ) -> Strip:
        """The row's strip: a space, then runs of unstyled cells, padding and
        separators, each styled cell a segment of its own (the segments a Text of the
        same spans would render, without building one)."""
        console = self.app.console
        segments = [Segment(" ", style)]
        run: list[str] = []
        for i, (column, (cell, cell_style)) in enumerate(zip(columns, cells, strict=True)):
            if i:
                run.append(" ")
            pad = " " * max(0, column.width - cell_len(cell))
            right = column.justify == "right"
            if right:
                run.append(pad)
            if cell_style and cell:
                if run:
                    segments.append(Segment("".join(run), style))
                    run = []
                # The line's style with the cell's on top, as a Text span's would be
                # (Rich caches both the parse and the sum).
                segments.append(Segment(cell, style + console.get_style(cell_style)))
            else:
                run.append(cell)
            if not right:
                run.append(pad)
        if run:
            segments.append(Segment("".join(run), style))
        return Strip(segments).crop_extend(0, width, style)

    @property
    def _filtered(self) -> bool:
        f = self.filter
        return bool(f.status or f.provider or f.search)

    def _strip(self, text: Text, style: Style, width: int) -> Strip:
        segments = [Segment(" ", style)]
        segments += text.render(self.app.console)
        strip = Strip(segments).apply_style(style)
        return strip.crop_extend(0, width, style)
