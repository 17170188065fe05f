"""Updates that leave the screen alone when nothing would change on it.

Every `Static.update` repaints its widget and, for one sized by its content, lays the
whole screen out again (about 10 ms at 160×48 here); the once-a-second tick and the
messages that follow a search or a poll would otherwise redo that for the same text.
"""

from __future__ import annotations

from rich.cells import cell_len
from rich.text import Text
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


def show_text(static: Static, text: Text) -> None:
    """`static.update(text)` unless it shows that text already; without a layout of the
    screen when only characters changed, not the lengths of its lines."""
    content = static.content
    if not same_text(content, text):
        static.update(text, layout=not same_shape(content, text))
