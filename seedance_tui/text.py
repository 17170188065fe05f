"""Showing text we did not write (prompts, server messages, URLs) inertly."""

from __future__ import annotations

import json
import re
from typing import Any

# C0 controls but tab/newline, DEL, and C1 controls (0x80-0x9f: 8-bit CSI/OSC among them).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_C1 = re.compile(r"[\x7f-\x9f]")


def inert(text: str | None, *, newlines: bool = True) -> str:
    """Text with every control character made visible (ESC becomes '\\x1b'), so a terminal
    never acts on it. Markup needs no escaping here: callers print it as plain text."""
    if text is None:
        return ""
    out = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    if not newlines:
        out = out.replace("\n", " ").replace("\t", " ")
    return out


def one_line(text: str | None, width: int) -> str:
    flat = inert(text, newlines=False)
    return flat if len(flat) <= width else flat[: max(1, width - 1)] + "…"


def to_json(data: Any, *, indent: int | None = 2) -> str:
    """JSON that is safe to print: readable unicode, every control character escaped."""
    text = json.dumps(data, ensure_ascii=False, indent=indent)
    return _C1.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


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
