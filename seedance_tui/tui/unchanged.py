"""Updates that leave the screen alone when nothing would change on it.

Every `Static.update` repaints its widget and, by default, lays the whole screen out
again: at 160×48 a layout repaints every widget (30-40 ms here, against 1-8 ms for the
repaint alone), and the once-a-second tick and the messages that follow a search or a
poll would otherwise redo that for text of the same size. A layout is needed only when
the widget's size would change: for a widget as wide as its container gives it (what a
Static is unless its width is `auto`), when its text wraps to another number of lines at
that width; for one sized by its content, when a line's length changes.
"""

from __future__ import annotations

from weakref import WeakKeyDictionary

from rich.cells import cell_len
from rich.console import RenderableType
from rich.text import Text
from textual.visual import visualize
from textual.widgets import Static


def same_text(a: object, b: Text) -> bool:
    """The same characters with the same styles (Rich's `==` ignores the base style)."""
    return (
        isinstance(a, Text)
        and a.plain == b.plain
        and a.spans == b.spans
        and a.style == b.style
        and (a.justify, a.overflow, a.no_wrap, a.end) == (b.justify, b.overflow, b.no_wrap, b.end)
    )


def same_shape(a: object, b: Text) -> bool:
    """Lines of the same lengths (then the widget keeps its size: no layout needed)."""
    return isinstance(a, Text) and [cell_len(line) for line in a.plain.split("\n")] == [
        cell_len(line) for line in b.plain.split("\n")
    ]


# The height each widget's content was found to have, at a width (a Rich table's height
# takes rendering it: worked out once per content, not again at the next update).
_heights: WeakKeyDictionary[Static, tuple[int, object, int]] = WeakKeyDictionary()


def _height_at(static: Static, content: RenderableType, width: int) -> int:
    return visualize(static, content).get_height(static.styles, width)


def keeps_size(static: Static, content: RenderableType) -> bool:
    """The widget keeps its size showing `content` instead of what it shows (the
    height found for `content` is kept for the next question)."""
    styles = static.styles
    old = static.content
    if styles.width is not None and styles.width.is_auto:  # sized by its content
        return isinstance(content, Text) and same_shape(old, content)
    if styles.height is not None and not styles.height.is_auto:
        return True  # a fixed height, and the container's width: its size is set
    width = static.content_region.width
    if width <= 0 or isinstance(old, str):  # not laid out yet; or markup to parse
        return False
    if isinstance(old, Text) and isinstance(content, Text) and same_shape(old, content):
        return True
    known = _heights.get(static)  # (width, the content, its height)
    if known is not None and known[0] == width and known[1] is old:
        before = known[2]
    else:
        before = _height_at(static, old, width)
    after = _height_at(static, content, width)
    _heights[static] = (width, content, after)
    return before == after


def update_in_place(static: Static, content: RenderableType) -> None:
    """`static.update(content)`, with a layout of the screen only if its size changes."""
    static.update(content, layout=not keeps_size(static, content))


def show_text(static: Static, text: Text) -> None:
    """`static.update(text)` unless it shows that text already; without a layout of the
    screen when the widget keeps its size."""
    if not same_text(static.content, text):
        update_in_place(static, text)
