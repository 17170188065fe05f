"""A render's poster frame on screen: the detail pane's and each gallery tile's.

`FrameSource` turns a task into an image scaled for a box of cells: the poster comes from
`frames.FrameLoader` (the library's PNG, made from the file or the link when missing),
is decoded and scaled in a thread once, and the scaled image is kept in an LRU, so moving
the cursor back over a task shows its frame at once, with no I/O.

`FrameView` shows one task's frame, or a line saying why there is none ("link expired,
never saved", "no frame: …"). Its worker only computes and posts `FrameView.Loaded`; the
handler swaps the picture in if the view still shows that task. A poster that must be
extracted waits EXTRACT_DELAY first, so holding a cursor key down through a hundred
renders starts no extraction but the one it stops on.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Container
from textual.message import Message
from textual.widgets import Static

from .. import frames, library
from ..models import Task, TaskStatus
from ..text import one_line
from .images import Graphics, current, image_widget_class

if TYPE_CHECKING:
    from PIL.Image import Image

    from ..config import Settings

SCALED_CACHE = 160  # scaled frames kept in memory
EXTRACT_DELAY = 0.15  # seconds a view waits before it asks for a poster to be made


class FrameSource:
    """Posters scaled for the screen, shared by every FrameView of the app."""

    def __init__(self, settings: Settings, *, graphics: Graphics | None = None, clock=None) -> None:
        self.settings = settings
        self.graphics = graphics or current()
        self.loader = frames.FrameLoader(settings)
        self.clock = clock
        self._scaled: OrderedDict[tuple[str, int, int], tuple[Image, int, int]] = OrderedDict()
        self.scaled_made = 0  # scalings done (tests and the benchmark read it)

    def scaled_cached(self, task_id: str, cols: int, rows: int) -> tuple[Image, int, int] | None:
        key = (task_id, cols, rows)
        hit = self._scaled.get(key)
        if hit is not None:
            self._scaled.move_to_end(key)
        return hit

    def poster_on_disk(self, task: Task) -> bool:
        return frames.cached_poster(self.settings, task) is not None

    def unavailable(self, task: Task) -> str | None:
        """Why the task shows no frame without trying (None: it has or may have one)."""
        if task.status is not TaskStatus.COMPLETED:
            return None
        if self.poster_on_disk(task):
            return None
        now = self.clock() if self.clock else None
        if library.link_state(task, self.settings, now) == "expired":
            return "⚠ link expired, never saved: no frame"
        failure = self.loader.known_failure(task)
        if failure is not None:
            return "no frame: " + one_line(str(failure), 200)
        return None

    async def scaled(self, task: Task, cols: int, rows: int) -> tuple[Image, int, int]:
        """The task's frame scaled to fit `cols` x `rows` cells: (image, cols, rows) used."""
        hit = self.scaled_cached(task.id, cols, rows)
        if hit is not None:
            return hit
        path = await self.loader.poster(task)
        result = await asyncio.to_thread(self._scale, path, cols, rows)
        key = (task.id, cols, rows)
        self._scaled[key] = result
        self._scaled.move_to_end(key)
        while len(self._scaled) > SCALED_CACHE:
            self._scaled.popitem(last=False)
        self.scaled_made += 1
        return result

    def _scale(self, path, cols: int, rows: int) -> tuple[Image, int, int]:
        from PIL import Image as PILImage

        with PILImage.open(path) as opened:
            image = opened.convert("RGB")
        used_cols, used_rows = self.graphics.fit(image.size, cols, rows)
        size = self.graphics.pixels(used_cols, used_rows)
        return image.resize(size, PILImage.Resampling.BOX), used_cols, used_rows

    async def aclose(self) -> None:
        await self.loader.aclose()


class FrameView(Container, can_focus=False):
    """One task's poster frame in a box of cells (`box`, else the CSS width/max-height)."""

    DEFAULT_CSS = """
    FrameView { height: auto; align-horizontal: center; }
    FrameView > .frame-note { color: $text-muted; width: 1fr; height: auto; }
    """

    @dataclass
    class Loaded(Message):
        """A frame scaled for the view (`image`, its size in cells), or why there is none."""

        task_id: str
        image: Image | None
        cols: int
        rows: int
        note: str | None

    def __init__(
        self,
        source: FrameSource,
        *,
        box: tuple[int, int] | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.source = source
        self.box = box
        self.note_justify = "left"
        self.subject: Task | None = None
        self.shown: str | None = None  # the task id whose frame is on screen
        self.note: str | None = None  # the text shown instead of a frame
        self._image_widget = None
        self._noted: tuple | None = None  # what _note last showed (see _note)

    def compose(self) -> ComposeResult:
        yield Static(classes="frame-note", markup=False)

    def _box(self) -> tuple[int, int]:
        if self.box is not None:
            return self.box
        width = self.styles.width.cells if self.styles.width else None
        height = self.styles.max_height.cells if self.styles.max_height else None
        return (width or self.size.width or 20), (height or 8)

    def show_task(self, task: Task | None, *, empty: str | Text | None = None) -> None:
        """Show this task's frame (or why there is none); `empty` is what no task, or a
        task that is not a completed render, shows (None: the view hides)."""
        previous = self.subject
        self.subject = task
        if task is None:
            self._note(empty)
            return
        if task.status is not TaskStatus.COMPLETED:
            self._note(empty)
            return
        if (
            previous is not None
            and previous.id == task.id
            and previous.local_path == task.local_path
            and (self.shown == task.id or self.note is not None)
        ):
            return  # the same frame (or the same reason) is on screen
        reason = self.source.unavailable(task)
        if reason is not None:
            self._note(reason)
            return
        cols, rows = self._box()
        hit = self.source.scaled_cached(task.id, cols, rows)
        if hit is not None:
            self._picture(task.id, *hit)
            return
        if self.shown != task.id:
            self._note("loading frame…")
        self.run_worker(
            self._load(task, cols, rows), group="frame", exclusive=True, exit_on_error=False
        )

    async def _load(self, task: Task, cols: int, rows: int) -> None:
        if not self.source.poster_on_disk(task):
            await asyncio.sleep(EXTRACT_DELAY)  # the cursor may move on: then nothing is made
        try:
            image, used_cols, used_rows = await self.source.scaled(task, cols, rows)
        except frames.NoVideo:
            self.post_message(self.Loaded(task.id, None, 0, 0, "⚠ link expired, never saved: no frame"))  # fmt: skip
        except frames.FrameError as exc:
            self.post_message(self.Loaded(task.id, None, 0, 0, "no frame: " + one_line(str(exc), 200)))  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - said where the frame would be
            # Every view runs its own worker (group "frame", exclusive per view); a
            # failure it did not foresee is reported in the view, not lost with the worker.
            note = f"no frame: {type(exc).__name__}: {one_line(str(exc), 200)}"
            self.post_message(self.Loaded(task.id, None, 0, 0, note))
        else:
            self.post_message(self.Loaded(task.id, image, used_cols, used_rows, None))

    def on_frame_view_loaded(self, message: Loaded) -> None:
        message.stop()
        if self.subject is None or self.subject.id != message.task_id:
            return  # the view moved on to another task
        if message.image is None:
            self._note(message.note)
        else:
            self._picture(message.task_id, message.image, message.cols, message.rows)

    def _note(self, text: str | Text | None) -> None:
        # The same note again (a pending task's view, asked once a second) changes
        # nothing on screen: an update would lay the whole screen out again.
        noted = (
            (text.plain, text.spans, text.style, text.justify)
            if isinstance(text, Text)
            else (text,)
        )
        if self._noted == noted and self.shown is None and self._image_widget is None:
            return
        self._noted = noted
        self.shown = None
        self.note = text.plain if isinstance(text, Text) else text
        if self._image_widget is not None:
            self._image_widget.remove()
            self._image_widget = None
        note = self.query_one(".frame-note", Static)
        if isinstance(text, Text):
            note.update(text)
        else:
            note.update(Text(text or "", style="dim", justify=self.note_justify))
        note.display = bool(text)
        self.display = bool(text)

    def _picture(self, task_id: str, image: Image, cols: int, rows: int) -> None:
        self.note = None
        self._noted = None
        self.query_one(".frame-note", Static).display = False
        self.display = True
        widget = self._image_widget
        if widget is None:
            widget = image_widget_class(self.source.graphics)(image, classes="frame-image")
            widget.styles.width = cols
            widget.styles.height = rows
            self._image_widget = widget
            self.mount(widget)
        else:
            widget.styles.width = cols
            widget.styles.height = rows
            widget.image = image
        self.shown = task_id
