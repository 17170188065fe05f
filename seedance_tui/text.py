"""Showing text we did not write (prompts, server messages, URLs) inertly."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from typing import Any

# Bidirectional controls (embeddings, overrides, isolates, marks): they reorder what
# follows them on the line, so a prompt could make a row read unlike what it holds.
_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
# C0 controls but tab/newline, DEL, C1 controls (0x80-0x9f: 8-bit CSI/OSC among them) and
# the bidirectional controls.
_CONTROL = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI}]")
# What json.dumps leaves raw that a terminal would act on (it escapes C0 itself).
_JSON_RAW = re.compile(f"[\x7f-\x9f{_BIDI}]")


def _visible(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def inert(text: str | None, *, newlines: bool = True) -> str:
    """Text with every control character made visible (ESC becomes '\\x1b', a right-to-left
    override '\\u202e'), so a terminal never acts on it. Markup needs no escaping here:
    callers print it as plain text."""
    if text is None:
        return ""
    out = _CONTROL.sub(lambda m: _visible(m.group()), text)
    if not newlines:
        out = out.replace("\n", " ").replace("\t", " ")
    return out


def one_line(text: str | None, width: int) -> str:
    """`text` inert on one line, at most `width` terminal cells wide (an emoji or a CJK
    character takes two), cut with "…"."""
    flat = inert(text, newlines=False)
    if flat.isascii():  # a cell a character (inert left no control character)
        return flat if len(flat) <= width else flat[: max(1, width - 1)] + "…"
    from rich.cells import cell_len, get_character_cell_size

    if cell_len(flat) <= width:
        return flat
    room = max(1, width - 1)  # the cells left before "…"
    used = 0
    for index, char in enumerate(flat):
        size = get_character_cell_size(char)
        if used + size > room:
            return flat[:index] + "…"
        used += size
    return flat


# Built once: json.dumps builds an encoder per call when given options (exports call this
# once per task).
_ENCODERS = {
    indent: json.JSONEncoder(ensure_ascii=False, indent=indent).encode for indent in (None, 2)
}


def to_json(data: Any, *, indent: int | None = 2) -> str:
    """JSON that is safe to print: readable unicode, every control character escaped (as
    \\uXXXX, which any JSON reader turns back into the same text)."""
    encode = _ENCODERS.get(indent) or json.JSONEncoder(ensure_ascii=False, indent=indent).encode
    text = encode(data)
    if text.isascii() and "\x7f" not in text:
        return text  # nothing json.dumps leaves raw (DEL is the one ASCII character)
    return _JSON_RAW.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def to_json_array(items: Iterable[Any]) -> Iterator[str]:
    """`to_json(list(items))` in pieces, one item at a time: a list of any length printed
    in the memory of one item."""
    count = 0
    for item in items:
        body = to_json(item).replace("\n", "\n  ")  # JSON strings hold no raw newline
        yield ("[\n  " if count == 0 else ",\n  ") + body
        count += 1
    yield "\n]" if count else "[]"


def plural(count: int, word: str) -> str:
    """ "1 request", "3 requests", "0 requests"."""
    return f"{count} {word}" + ("" if count == 1 else "s")


SPAN_CAP_DAYS = 999  # longer spans (an infinite one included) show as "999d+"


def span(seconds: float) -> str:
    """A compact span of time: 42s, 1m05s, 12m, 2h, 3d; "999d+" beyond that (infinity
    included) and "?" for a value that is not a number. Never raises."""
    if seconds != seconds:  # NaN
        return "?"
    if seconds >= (SPAN_CAP_DAYS + 1) * 86400:
        return f"{SPAN_CAP_DAYS}d+"
    seconds = max(0, int(seconds)) if seconds > 0 else 0
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"
