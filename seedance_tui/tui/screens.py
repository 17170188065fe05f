"""Modal screens: confirm a submission, and the help screen with every binding."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from ..caps import CapExceeded
from ..models import CreditQuote, JobSpec, PreparedJob
from ..text import one_line
from .keys import CONFIRM_BINDINGS, HELP_BINDINGS, HELP_SECTIONS, effective_keys

# The explicit key that lets a job past a spending cap, once (enter does not).
OVERRIDE_BINDING = Binding("o", "override", "Submit over the cap", id="override")


def cap_text(over: CapExceeded) -> Text:
    """What the cap is, what is spent, held and at risk, what this would cost."""
    usage = over.usage
    text = Text()
    text.append("Over the cap ", "bold red")
    text.append(f"{over.provider.value} {over.period} cap {over.cap} credits\n", "bold")
    text.append("          ")
    text.append(f"spent {usage.spent} · held by pending {usage.held}")
    if usage.at_risk:
        text.append(f" · at risk in orphans {usage.at_risk}", "magenta")
    text.append(f" · left {over.left}\n")
    text.append("          ")
    text.append(f"this would cost ≈ {over.cost}: nothing is sent unless you press o\n", "red")
    return text


class ConfirmSubmit(ModalScreen[bool]):
    """Shows what will be sent and what it costs; Enter/y submits, Esc cancels. Over a
    spending cap (`over`) it says so, and only the override key (o) submits, once."""

    BINDINGS = [*CONFIRM_BINDINGS, OVERRIDE_BINDING]
    # Focus the submit button once the dialog is shown. Textual's AUTO_FOCUS, not a query
    # in on_mount: a dialog closed before it was composed (the app quitting right after
    # ctrl+s) mounts no children, and that query would raise.
    AUTO_FOCUS = "#confirm-yes"

    def __init__(self, spec: JobSpec, quote: CreditQuote, over: CapExceeded | None = None) -> None:
        super().__init__()
        self.spec = spec
        self.quote = quote
        self.over = over
        if over is not None:
            # Over a cap, enter presses Cancel: only the override key (or a click on the
            # override button) submits.
            self.AUTO_FOCUS = "#confirm-no"

    def heading(self) -> str:
        return "Submit this job?" if self.over is None else "Submit this job over the cap?"

    def body(self) -> Text:
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
        return body

    def compose(self) -> ComposeResult:
        body = self.body()
        if self.over is not None:
            body.append("\n\n")
            body.append(cap_text(self.over))
        with Vertical(id="confirm-box"):
            yield Static(Text(self.heading(), style="bold"), id="confirm-title")
            yield Static(body, id="confirm-body")
            with Horizontal(id="confirm-buttons"):
                if self.over is None:
                    yield Button(
                        "Submit (enter)", id="confirm-yes", variant="primary", compact=True
                    )
                else:
                    yield Button(
                        "Submit over the cap (o)", id="confirm-yes", variant="error", compact=True
                    )
                yield Button("Cancel (esc)", id="confirm-no", compact=True)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "confirm-yes")

    def action_confirm(self) -> None:
        if self.over is not None:
            self.app.bell()  # over a cap only the override key submits
            return
        self.dismiss(True)

    def action_override(self) -> None:
        if self.over is not None:
            self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(False)


class ConfirmCompare(ConfirmSubmit):
    """The same prompt on both providers, side by side with each price and the total."""

    def __init__(self, jobs: Sequence[PreparedJob], over: CapExceeded | None = None) -> None:
        super().__init__(jobs[0].spec, jobs[0].quote, over)
        self.jobs = list(jobs)

    def heading(self) -> str:
        return "Compare on both providers?" if self.over is None else "Compare over the cap?"

    def table(self) -> Table:
        """The two jobs side by side: what each provider is sent, and its price."""
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold", no_wrap=True, width=8)
        for _ in self.jobs:
            table.add_column(overflow="fold")
        table.add_row("", *(Text(j.provider.value, "bold underline") for j in self.jobs))
        table.add_row("Job", *(Text(f"{j.spec.mode.value} {j.spec.summary()}") for j in self.jobs))
        table.add_row(
            "Cost", *(Text(f"≈ {j.quote.credits} credits", "bold yellow") for j in self.jobs)
        )
        return table

    def body(self) -> Text:
        body = Text()
        body.append("Prompt    ", "bold")
        body.append(one_line(self.spec.prompt, 120) + "\n")
        for url in self.spec.image_urls:
            body.append("Image     ", "bold")
            body.append(one_line(url, 200) + "\n")
        body.append("Total     ", "bold")
        body.append(f"≈ {sum(j.quote.credits for j in self.jobs)} credits", "bold yellow")
        body.append("  (estimates; the servers' charges are the truth)", "dim")
        return body

    def compose(self) -> ComposeResult:
        body = self.body()
        if self.over is not None:
            body.append("\n\n")
            body.append(cap_text(self.over))
        with Vertical(id="confirm-box"):
            yield Static(Text(self.heading(), style="bold"), id="confirm-title")
            yield Static(self.table(), id="confirm-compare")
            yield Static(body, id="confirm-body")
            with Horizontal(id="confirm-buttons"):
                if self.over is None:
                    yield Button(
                        "Send both (enter)", id="confirm-yes", variant="primary", compact=True
                    )
                else:
                    yield Button(
                        "Send both over the cap (o)",
                        id="confirm-yes",
                        variant="error",
                        compact=True,
                    )
                yield Button("Cancel (esc)", id="confirm-no", compact=True)


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
