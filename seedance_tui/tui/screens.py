"""Modal screens: confirm a submission, and the help screen with every binding."""

from __future__ import annotations

from collections.abc import Mapping

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from ..models import CreditQuote, JobSpec
from ..text import one_line
from .keys import CONFIRM_BINDINGS, HELP_BINDINGS, HELP_SECTIONS, effective_keys


class ConfirmSubmit(ModalScreen[bool]):
    """Shows what will be sent and what it costs; Enter/y submits, Esc cancels."""

    BINDINGS = CONFIRM_BINDINGS
    # Focus the submit button once the dialog is shown. Textual's AUTO_FOCUS, not a query
    # in on_mount: a dialog closed before it was composed (the app quitting right after
    # ctrl+s) mounts no children, and that query would raise.
    AUTO_FOCUS = "#confirm-yes"

    def __init__(self, spec: JobSpec, quote: CreditQuote) -> None:
        super().__init__()
        self.spec = spec
        self.quote = quote

    def compose(self) -> ComposeResult:
        body = Text()
        body.append("Provider  ", "bold")
        body.append(f"{self.spec.provider.value}\n")
        body.append("Job       ", "bold")
        body.append(f"{self.spec.mode.value} {self.spec.summary()}\n")
        for url in self.spec.image_urls:
            body.append("Image     ", "bold")
            body.append(one_line(url, 200) + "\n")
        body.append("Prompt    ", "bold")
        body.append(one_line(self.spec.prompt, 120) + "\n\n")
        body.append("Cost      ", "bold")
        body.append(f"≈ {self.quote.credits} credits", "bold yellow")
        body.append(f"  ({self.quote.basis}; the server's charge is the truth)", "dim")
        with Vertical(id="confirm-box"):
            yield Static(Text("Submit this job?", style="bold"), id="confirm-title")
            yield Static(body, id="confirm-body")
            with Horizontal(id="confirm-buttons"):
                yield Button("Submit (enter)", id="confirm-yes", variant="primary", compact=True)
                yield Button("Cancel (esc)", id="confirm-no", compact=True)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "confirm-yes")

    def action_confirm(self) -> None:
        self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(False)


def key_label(binding: Binding, keymap: Mapping[str, str] | None = None) -> str:
    """The binding's keys as the user presses them, after the config's `[keymap]`."""
    names = {"question_mark": "?", "slash": "/", "escape": "esc", "pageup": "pgup",
             "pagedown": "pgdn", "enter": "enter", "space": "space"}  # fmt: skip
    return " ".join(names.get(key, key) for key in effective_keys(binding, keymap or {}))


class HelpScreen(ModalScreen[None]):
    """Every key binding, grouped."""

    BINDINGS = HELP_BINDINGS

    def __init__(self, keymap: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self.keymap = dict(keymap or {})

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold", no_wrap=True)
        table.add_column(style="dim", no_wrap=True)  # the action's name, for [keymap]
        table.add_column()
        for index, (section, bindings) in enumerate(HELP_SECTIONS):
            if index:
                table.add_row("", "", "")
            table.add_row(Text(section, style="bold underline"), "", "")
            for binding in bindings:
                table.add_row(
                    Text(key_label(binding, self.keymap)),
                    Text(binding.id or ""),
                    Text(binding.tooltip or binding.description),
                )
        with Vertical(id="help-box"):
            yield Static(Text("Keys", style="bold"), id="help-title")
            with VerticalScroll(id="help-scroll"):
                yield Static(table)
            yield Static(
                Text(
                    "ctrl+p lists every action · [keymap] in the config rebinds by the middle "
                    "column's name · esc closes",
                    style="dim",
                    overflow="ellipsis",
                    no_wrap=True,
                ),
                id="help-hint",
            )

    def action_close(self) -> None:
        self.dismiss(None)
