"""The download strip: a one-line progress bar under the task list while videos are saved."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import ProgressBar, Static


def megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f}"


class DownloadStrip(Horizontal):
    """Shows one download (the selected task's, else the latest); hidden when none runs."""

    def compose(self) -> ComposeResult:
        yield Static(id="download-label")
        yield ProgressBar(id="download-bar", show_eta=False)
        yield Static(id="download-size")

    def on_mount(self) -> None:
        self.display = False

    def show(self, short_id: str, done: int, total: int | None, *, others: int = 0) -> None:
        label = Text(no_wrap=True, overflow="ellipsis")
        label.append("⤓ saving ", "bold")
        label.append(short_id)
        self.query_one("#download-label", Static).update(label)
        bar = self.query_one("#download-bar", ProgressBar)
        bar.update(total=total, progress=done)
        size = Text(no_wrap=True, overflow="ellipsis", style="dim")
        size.append(
            f"{megabytes(done)}/{megabytes(total)} MB" if total else f"{megabytes(done)} MB"
        )
        if others:
            size.append(f" · +{others} more")
        self.query_one("#download-size", Static).update(size)
        self.display = True

    def hide(self) -> None:
        self.display = False
