"""How the dashboard draws frames: kitty graphics, Sixel or unicode half-blocks.

textual-image does the drawing. It asks the terminal what it supports when
`textual_image.renderable` is first imported, which must happen before Textual takes
over the terminal: `detect()` is called by `run_app` before the app starts.

- `images = "auto"` (the config; env `SEEDANCE_TUI_IMAGES`): Sixel or kitty graphics when
  the terminal answers that it has them, else half-blocks (two pixels per cell, 24-bit
  colour: works in any modern terminal, in plain tmux and in web mode).
- Web mode (textual-serve) and output that is not a terminal always get half-blocks.
- Inside tmux, the terminal's answers come from tmux itself: Sixel when tmux is 3.4+ built
  with it; kitty graphics only reach the outer terminal through tmux's passthrough
  (`set -g allow-passthrough on`), which is detected and reported — textual-image 0.12
  does not wrap its kitty sequences for tmux, so half-blocks are drawn there instead.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass

MODES = ("kitty", "sixel", "halfblocks")
LABELS = {"kitty": "kitty graphics", "sixel": "Sixel", "halfblocks": "half-blocks"}


@dataclass(frozen=True, slots=True)
class Graphics:
    mode: str  # "kitty" | "sixel" | "halfblocks"
    reason: str  # why: shown in the gallery's title line
    cell: tuple[int, int] = (10, 20)  # a cell's size in pixels (kitty and Sixel scale by it)

    @property
    def label(self) -> str:
        return LABELS[self.mode]

    def pixels(self, cols: int, rows: int) -> tuple[int, int]:
        """The image size that fills `cols` x `rows` cells."""
        if self.mode == "halfblocks":
            return cols, rows * 2
        return cols * self.cell[0], rows * self.cell[1]

    def fit(self, size: tuple[int, int], cols: int, rows: int) -> tuple[int, int]:
        """The most cells (cols, rows) an image of `size` pixels fills in a box, keeping
        its aspect ratio (a half-block pixel is as wide as it is tall)."""
        width, height = size
        if width <= 0 or height <= 0 or cols <= 0 or rows <= 0:
            return 0, 0
        cell_w, cell_h = (1, 2) if self.mode == "halfblocks" else self.cell
        scale = min(cols * cell_w / width, rows * cell_h / height)
        return max(1, min(cols, round(width * scale / cell_w))), max(
            1, min(rows, round(height * scale / cell_h))
        )


HALFBLOCKS = Graphics("halfblocks", "half-blocks")
_detected: Graphics | None = None


def in_web_mode(env: Mapping[str, str]) -> bool:
    return "web_driver" in env.get("TEXTUAL_DRIVER", "")


def tmux_passthrough(env: Mapping[str, str]) -> str | None:
    """tmux's `allow-passthrough` ("on", "off", "all"), "unknown" if tmux won't say, or
    None outside tmux."""
    if not env.get("TMUX"):
        return None
    tmux = shutil.which("tmux")
    if tmux is None:
        return "unknown"
    try:
        answer = subprocess.run(
            [tmux, "show-options", "-gqv", "allow-passthrough"],
            capture_output=True,
            text=True,
            timeout=2,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    value = answer.stdout.strip()
    return value or ("off" if answer.returncode == 0 else "unknown")


def _quiet_library_logs() -> None:
    """textual-image logs a warning with a traceback when the terminal does not answer a
    query; with no logging set up, Python prints it on stderr, over the screen."""
    logger = logging.getLogger("textual_image")
    logger.addHandler(logging.NullHandler())
    logger.propagate = False


def _probe() -> str:
    """What textual-image found when it asked the terminal (importing it asks; so does
    importing its widgets, for the cell size, which is why both happen here, before the
    app reads the terminal)."""
    _quiet_library_logs()
    import textual_image.widget  # noqa: F401
    from textual_image import renderable

    if renderable.Image is renderable.SixelImage:
        return "sixel"
    if renderable.Image is renderable.TGPImage:
        return "kitty"
    return "halfblocks"


def _cell_size() -> tuple[int, int]:
    from textual_image._terminal import get_cell_size

    try:
        cell = get_cell_size()
    except Exception:  # a closed stdout: the library's own default
        return 10, 20
    return cell.width, cell.height


def detect(setting: str = "auto", env: Mapping[str, str] | None = None) -> Graphics:
    """Choose how frames are drawn (once; later calls return the first answer)."""
    global _detected
    if _detected is not None:
        return _detected
    env = os.environ if env is None else env
    stdout = sys.__stdout__
    terminal = bool(stdout and stdout.isatty())
    passthrough = tmux_passthrough(env)
    found = _probe() if terminal and not in_web_mode(env) else "halfblocks"
    if setting in MODES:
        mode, reason = setting, f"{LABELS[setting]} (set in the config)"
    elif in_web_mode(env):
        mode, reason = "halfblocks", "half-blocks (web mode)"
    elif not terminal:
        mode, reason = "halfblocks", "half-blocks (not a terminal)"
    else:
        mode, reason = found, f"{LABELS[found]} (the terminal's answer)"
    if passthrough is not None and setting not in MODES:
        if mode == "kitty":  # only seen if tmux forwarded the query: its sequences won't be
            mode = "halfblocks"
        if mode == "halfblocks":
            reason = (
                f"half-blocks (inside tmux, allow-passthrough {passthrough}; "
                "Sixel needs tmux 3.4+ built with it)"
            )
        else:
            reason = f"{LABELS[mode]} (inside tmux, allow-passthrough {passthrough})"
    cell = _cell_size() if mode != "halfblocks" else (10, 20)
    _detected = Graphics(mode, reason, cell)
    return _detected


def current() -> Graphics:
    """The detected graphics, or half-blocks when nothing was detected (tests, snapshots)."""
    return _detected or HALFBLOCKS


def reset() -> None:
    """Forget the detection (tests)."""
    global _detected
    _detected = None


def image_widget_class(graphics: Graphics):
    """textual-image's widget for the mode."""
    _quiet_library_logs()
    from textual_image import widget

    if graphics.mode == "sixel":
        return widget.SixelImage
    if graphics.mode == "kitty":
        return widget.TGPImage
    return widget.HalfcellImage
