"""The gallery (`g`): a grid of the history's frames, newest first, like the task list.

It shows the dashboard's query (status and provider filters, sort, search: changing one
here changes the list too) through its own `TaskPages`, so it holds a few pages of tasks
whatever the history's size and opens on 100,000 tasks as fast as on 100. The grid is a
fixed set of tiles, as many as fit (at least 2×2; at 80×24 exactly that); moving past
its edge scrolls a row, and the tiles are given the next tasks. Each tile shows the
render's poster (`FrameView`) or its status, the prompt, then provider, credits,
duration and id. `enter` closes the gallery on the task under the cursor, selected in
the list; `esc` (or `g`) closes it where the list was.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.containers import Grid, Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Input, Static

from ..models import Task, TaskStatus
from ..sheet import facts
from ..store import Store
from ..text import one_line
from .footer import KeyFooter
from .format import STATUS_STYLES, status_glyph
from .frame_view import FrameSource, FrameView
from .keys import GALLERY_BINDINGS
from .task_list import TaskPages
from .unchanged import show_text

if TYPE_CHECKING:
    from .dashboard import DashboardScreen

TILE_MIN_WIDTH = 36  # columns a tile needs (a 16:9 frame ~24 wide, captions)
TILE_MIN_HEIGHT = 10  # rows: border 2, frame, two lines of caption
CAPTION_ROWS = 2
CHROME_ROWS = 2  # the search bar above the grid and the key bar below
# Actions on letter keys: idle while the search field has the focus.
LETTER_ACTIONS = {"cycle_status", "cycle_provider", "cycle_sort", "search", "cursor_left",
                  "cursor_right", "cursor_up", "cursor_down", "last"}  # fmt: skip


def grid_shape(width: int, height: int) -> tuple[int, int]:
    """(columns, rows) of tiles for a screen of width x height cells: at least 2×2."""
    cols = max(2, width // TILE_MIN_WIDTH)
    rows = max(2, (height - CHROME_ROWS) // TILE_MIN_HEIGHT)
    return cols, rows


class Tile(Vertical, can_focus=False):
    """One task: its frame (or status), prompt and facts."""

    DEFAULT_CSS = """
    Tile { border: round $border-blurred; padding: 0; height: 1fr; width: 1fr; }
    Tile.-cursor { border: round $accent; background: $boost; }
    Tile.-empty { border: none; }
    Tile > FrameView { height: 1fr; align: center middle; }
    Tile > .tile-prompt, Tile > .tile-facts {
        height: 1; width: 1fr; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis;
    }
    Tile > .tile-facts { color: $text-muted; }
    """

    def __init__(self, source: FrameSource, index: int, *, clock) -> None:
        super().__init__()
        self.source = source
        self.index = index  # the tile's place in the grid
        self.clock = clock
        self.subject: Task | None = None

    def compose(self) -> ComposeResult:
        frame = FrameView(self.source, box=(1, 1))
        frame.note_justify = "center"
        yield frame
        yield Static(classes="tile-prompt", markup=False)
        yield Static(classes="tile-facts", markup=False)

    def set_box(self, cols: int, rows: int) -> None:
        self.query_one(FrameView).box = (max(1, cols), max(1, rows))

    def show(self, task: Task | None) -> None:
        self.subject = task
        self.set_class(task is None, "-empty")
        frame = self.query_one(FrameView)
        prompt = self.query_one(".tile-prompt", Static)
        facts_line = self.query_one(".tile-facts", Static)
        if task is None:
            frame.show_task(None)
            prompt.update("")
            facts_line.update("")
            return
        status = Text(justify="center")
        status.append(f"{status_glyph(task.status, self.clock())} {task.status.value}",
                      STATUS_STYLES[task.status])  # fmt: skip
        if task.error and task.status is not TaskStatus.COMPLETED:
            status.append("\n" + one_line(task.error, 120), "dim")
        frame.show_task(task, empty=status)
        prompt.update(Text(one_line(task.prompt, 300), no_wrap=True, overflow="ellipsis"))
        facts_line.update(Text(facts(task), no_wrap=True, overflow="ellipsis"))

    def on_click(self, event: events.Click) -> None:
        screen = self.screen
        if isinstance(screen, GalleryScreen) and self.subject is not None:
            screen.move_to(screen.top_row * screen.cols + self.index)
            if event.chain >= 2:
                screen.action_open_task()


class GalleryScreen(Screen[int | None]):
    """The history as a grid of frames; dismissed with the index to select, or None."""

    BINDINGS = GALLERY_BINDINGS
    AUTO_FOCUS = ""  # keys go to the grid; `/` moves to the search field

    def __init__(
        self, dashboard: DashboardScreen, store: Store, source: FrameSource, *, clock,
        start: int = 0,
    ) -> None:  # fmt: skip
        """`dashboard`: whose query the gallery shows and changes; `start`: the index of
        the task to put the cursor on (the list's cursor)."""
        super().__init__()
        self.dashboard = dashboard
        self.start = start
        self.pages = TaskPages(store)
        self.source = source
        self.clock = clock
        self.cols, self.rows = 2, 2
        self.cursor = 0
        self.top_row = 0

    def compose(self) -> ComposeResult:
        with Horizontal(id="gallery-bar"):
            yield Input(placeholder="/ search prompts", id="gallery-search", compact=True)
            yield Static(id="gallery-label")
        yield Grid(id="gallery-grid")
        yield KeyFooter(compact=True, show_command_palette=False)

    async def on_mount(self) -> None:
        search = self.query_one("#gallery-search", Input)
        search.cursor_blink = self.dashboard.dashboard_app.cursor_blink_enabled
        with search.prevent(Input.Changed):
            search.value = self.dashboard.query_state.search
        await self._layout_tiles(self.app.size.width, self.app.size.height)
        self.reload(index=self.start)

    async def on_resize(self, event: events.Resize) -> None:
        if grid_shape(event.size.width, event.size.height) != (self.cols, self.rows):
            await self._layout_tiles(event.size.width, event.size.height)
            self._ensure_visible()
            self._fill()

    # -- layout ------------------------------------------------------------------------

    async def _layout_tiles(self, width: int, height: int) -> None:
        self.cols, self.rows = grid_shape(width, height)
        grid = self.query_one("#gallery-grid", Grid)
        grid.styles.grid_size_columns = self.cols
        grid.styles.grid_size_rows = self.rows
        wanted = self.cols * self.rows
        tiles = list(grid.query(Tile))
        for tile in tiles[wanted:]:
            await tile.remove()
        new = [Tile(self.source, i, clock=self.clock) for i in range(len(tiles), wanted)]
        if new:
            await grid.mount_all(new)
        tile_w = width // self.cols
        tile_h = (height - CHROME_ROWS) // self.rows
        for tile in [*tiles[:wanted], *new]:
            tile.set_box(tile_w - 2, tile_h - 2 - CAPTION_ROWS)

    @property
    def tiles(self) -> list[Tile]:
        return list(self.query_one("#gallery-grid", Grid).query(Tile))

    # -- the query ---------------------------------------------------------------------

    def reload(self, *, keep: str | None = None, index: int = 0) -> None:
        """Read the dashboard's query again; the cursor to `index` (or back on the task
        `keep`, when it is among the first rows)."""
        query = self.dashboard.query_state
        self.pages.set_query(query.filter(), query.sort)
        self.cursor = max(0, min(index, self.pages.total - 1))
        self.top_row = 0
        if keep is not None:
            for index in range(min(self.pages.total, 200)):
                task = self.pages.task_at(index)
                if task is not None and task.id == keep:
                    self.cursor = index
                    break
        self._ensure_visible()
        self._fill()
        self._show_label()

    def _show_label(self) -> None:
        total = self.pages.total
        label = Text(no_wrap=True, overflow="ellipsis", style="dim")
        summary = self.dashboard.query_state.summary()
        label.append(f"{total:,} task{'s' if total != 1 else ''} · {summary}")
        label.append(f" · frames: {self.source.graphics.reason}")
        show_text(self.query_one("#gallery-label", Static), label)

    def _fill(self) -> None:
        """Give each tile its task (and the cursor its mark)."""
        first = self.top_row * self.cols
        for tile in self.tiles:
            index = first + tile.index
            tile.show(self.pages.task_at(index))
            tile.set_class(index == self.cursor and tile.subject is not None, "-cursor")
        tiles = self.tiles
        if self.pages.total == 0 and tiles:
            empty = "no tasks match" if self._filtered else "no tasks yet: press n to write one"
            tiles[0].query_one(FrameView).show_task(None, empty=Text(empty, "dim", justify="center"))  # fmt: skip

    @property
    def _filtered(self) -> bool:
        f = self.pages.filter
        return bool(f.status or f.provider or f.search)

    def _ensure_visible(self) -> None:
        row = self.cursor // self.cols
        if row < self.top_row:
            self.top_row = row
        elif row >= self.top_row + self.rows:
            self.top_row = row - self.rows + 1

    def move_to(self, index: int) -> None:
        if self.pages.total == 0:
            return
        index = max(0, min(index, self.pages.total - 1))
        if index == self.cursor:
            return
        old_top = self.top_row
        self.cursor = index
        self._ensure_visible()
        if self.top_row != old_top:
            self._fill()
            return
        first = self.top_row * self.cols
        for tile in self.tiles:
            tile.set_class(
                first + tile.index == self.cursor and tile.subject is not None, "-cursor"
            )

    @property
    def selected(self) -> Task | None:
        return self.pages.task_at(self.cursor)

    def task_updated(self, task: Task, *, is_new: bool) -> None:
        """The engine changed a task: repaint its tile, or re-read the query if it is new."""
        if is_new:
            current = self.selected
            self.reload(keep=current.id if current else None)
            return
        index = self.pages.locate(task.id)
        if index is None:
            return
        self.pages.replace(index, task)
        first = self.top_row * self.cols
        for tile in self.tiles:
            if first + tile.index == index:
                tile.show(task)

    # -- actions -----------------------------------------------------------------------

    def action_cursor_left(self) -> None:
        self.move_to(self.cursor - 1)

    def action_cursor_right(self) -> None:
        self.move_to(self.cursor + 1)

    def action_cursor_up(self) -> None:
        self.move_to(self.cursor - self.cols)

    def action_cursor_down(self) -> None:
        self.move_to(self.cursor + self.cols)

    def action_page_up(self) -> None:
        self.move_to(self.cursor - self.cols * self.rows)

    def action_page_down(self) -> None:
        self.move_to(self.cursor + self.cols * self.rows)

    def action_first(self) -> None:
        self.move_to(0)

    def action_last(self) -> None:
        self.move_to(self.pages.total - 1)

    def action_open_task(self) -> None:
        if self.selected is not None:
            self.dismiss(self.cursor)

    def action_close(self) -> None:
        if isinstance(self.focused, Input):
            self.set_focus(None)  # esc leaves the search field first
            return
        self.dismiss(None)

    def action_search(self) -> None:
        self.query_one("#gallery-search", Input).focus()

    def _requery(self, change) -> None:
        current = self.selected
        change()
        self.reload(keep=current.id if current else None)

    def action_cycle_status(self) -> None:
        self._requery(self.dashboard.action_cycle_status)

    def action_cycle_provider(self) -> None:
        self._requery(self.dashboard.action_cycle_provider)

    def action_cycle_sort(self) -> None:
        self._requery(self.dashboard.action_cycle_sort)

    @on(Input.Changed, "#gallery-search")
    def _search_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.dashboard.set_search(event.value.strip())
        self.reload()

    @on(Input.Submitted, "#gallery-search")
    def _search_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.set_focus(None)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if isinstance(self.focused, Input) and action in LETTER_ACTIONS:
            return False  # the key types a character here
        if action == "open_task":
            return self.selected is not None
        return True
