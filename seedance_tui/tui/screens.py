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
from ..models import CreditQuote, JobSpec, PreparedJob, Task, TaskStatus
from ..text import one_line, plural, span
from .keys import CONFIRM_BINDINGS, HELP_BINDINGS, HELP_SECTIONS, effective_keys

# The explicit key that lets a job past a spending cap, once (enter does not).
OVERRIDE_BINDING = Binding("o", "override", "Submit over the cap", id="override")


def cap_text(over: CapExceeded) -> Text:
    """What the cap is, what is spent, held and at risk, what this would cost."""
    usage = over.usage
    text = Text()
    text.append("Over cap  ", "bold red")
    text.append(f"{over.provider.value} {over.period} cap {over.cap} credits\n", "bold")
    text.append("          ")
    text.append(f"spent {usage.spent} · held by pending {usage.held}")
    if usage.at_risk:
        text.append(f" · at risk in orphans {usage.at_risk}", "magenta")
    text.append(f" · left {over.left}\n")
    text.append("          ")
    text.append(f"this would cost ≈ {over.cost}: nothing is sent unless you press o\n", "red")
    return text


# The confirm dialogs' label column ("Provider  ", "Duplicate "): what follows a label on
# its line wraps under the value, never back under the labels.
LABEL_CELLS = 10


def hanging(text: Text) -> Table:
    """`text`'s lines as label and value: the first LABEL_CELLS cells of each line are its
    label (blank on a continuation line), the rest its value, wrapped in its own column."""
    grid = Table.grid()
    grid.add_column(width=LABEL_CELLS, no_wrap=True)
    grid.add_column(ratio=1, overflow="fold")
    for line in text.split("\n"):
        grid.add_row(line[:LABEL_CELLS], line[LABEL_CELLS:])
    return grid


# How far back the confirm dialog looks for the same job (same provider, prompt and
# fields) already sent: a minute-old duplicate is a double ctrl+s or a stray re-run, a
# day-old one is a deliberate second take.
DUPLICATE_WINDOW = 3600.0
# The outcomes that make a job sent again a second spend: it rendered, is rendering or
# waits to be, or may have been charged (an orphan). A failed render was refunded, and a
# rejected or cancelled one charged nothing: sending those again is a retry.
DUPLICATE_STATUSES = frozenset(
    {
        TaskStatus.QUEUED,
        TaskStatus.SUBMITTING,
        TaskStatus.PROCESSING,
        TaskStatus.COMPLETED,
        TaskStatus.ORPHANED,
    }
)


def duplicate_text(recent: Sequence[Task], now: float, credits: int) -> Text:
    """The same job was sent recently: when, as which task, how it ended; and what the
    keys do now (enter cancels, only the button sends it again)."""
    task = recent[0]
    text = Text()
    text.append("Duplicate ", "bold yellow")
    text.append(
        f"the same job ran {span(now - task.created_at)} ago: task {task.short_id}, "
        f"{task.status.value}"
    )
    if len(recent) > 1:
        text.append(
            f" (and {plural(len(recent) - 1, 'time')} more in the last {span(DUPLICATE_WINDOW)})"
        )
    text.append("\n          ")
    text.append(
        f"enter cancels · to send it again (≈ {credits} credits more), tab to its button, "
        "then enter",
        "yellow",
    )
    return text


class ConfirmSubmit(ModalScreen[bool]):
    """Shows what will be sent and what it costs; Enter/y submits, Esc cancels. Over a
    spending cap (`over`) it says so, and only the override key (o) submits, once. When
    the same job was sent recently (`duplicate`, newest first) it says so with the task
    and its outcome; the focus starts on Cancel and no letter submits: only the submit
    button does (tab to it, enter), so a stray re-run and ctrl+s, enter sends nothing."""

    BINDINGS = [*CONFIRM_BINDINGS, OVERRIDE_BINDING]
    # Focus the submit button once the dialog is shown. Textual's AUTO_FOCUS, not a query
    # in on_mount: a dialog closed before it was composed (the app quitting right after
    # ctrl+s) mounts no children, and that query would raise.
    AUTO_FOCUS = "#confirm-yes"

    def __init__(
        self,
        spec: JobSpec,
        quote: CreditQuote,
        over: CapExceeded | None = None,
        *,
        duplicate: Sequence[Task] = (),
        now: float = 0.0,
    ) -> None:
        super().__init__()
        self.spec = spec
        self.quote = quote
        self.over = over
        self.duplicate = list(duplicate)
        self.now = now
        if over is not None or self.duplicate:
            # Over a cap, or a job sent recently, enter presses Cancel: only the override
            # key (over a cap, no duplicate) or the submit button submits.
            self.AUTO_FOCUS = "#confirm-no"

    def heading(self) -> str:
        again = " again" if self.duplicate else ""
        if self.over is None:
            return f"Submit this job{again}?"
        return f"Submit this job{again} over the cap?"

    def warnings(self) -> Text:
        """What stands in the way, under the job: a recent duplicate, a spending cap."""
        text = Text()
        if self.duplicate:
            text.append("\n\n")
            text.append(duplicate_text(self.duplicate, self.now, self.cost()))
        if self.over is not None:
            text.append("\n\n")
            text.append(cap_text(self.over))
        return text

    def cost(self) -> int:
        return self.quote.credits

    def submit_label(self) -> tuple[str, str]:
        """The submit button's label and variant."""
        if self.over is not None:
            key = "" if self.duplicate else " (o)"
            return f"Submit over the cap{key}", "error"
        if self.duplicate:
            return "Submit again", "warning"
        return "Submit (enter)", "primary"

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
        body.append(self.warnings())
        label, variant = self.submit_label()
        with Vertical(id="confirm-box"):
            yield Static(Text(self.heading(), style="bold"), id="confirm-title")
            yield Static(hanging(body), id="confirm-body")
            with Horizontal(id="confirm-buttons"):
                yield Button(label, id="confirm-yes", variant=variant, compact=True)  # type: ignore[arg-type]
                yield Button("Cancel (esc)", id="confirm-no", compact=True)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "confirm-yes")

    def action_confirm(self) -> None:
        if self.over is not None or self.duplicate:
            # Over a cap only the override key submits; a recent duplicate only the
            # submit button (enter on Cancel, where the focus starts, cancels).
            self.app.bell()
            return
        self.dismiss(True)

    def action_override(self) -> None:
        if self.over is not None and not self.duplicate:
            self.dismiss(True)
        elif self.over is not None:
            self.app.bell()  # sent recently too: the button, deliberately

    def action_cancel(self) -> None:
        self.dismiss(False)


class ConfirmCompare(ConfirmSubmit):
    """The same prompt on both providers, side by side with each price and the total."""

    def __init__(
        self,
        jobs: Sequence[PreparedJob],
        over: CapExceeded | None = None,
        *,
        duplicate: Sequence[Task] = (),
        now: float = 0.0,
    ) -> None:
        super().__init__(jobs[0].spec, jobs[0].quote, over, duplicate=duplicate, now=now)
        self.jobs = list(jobs)

    def heading(self) -> str:
        again = " again" if self.duplicate else ""
        if self.over is None:
            return f"Compare on both providers{again}?"
        return f"Compare{again} over the cap?"

    def cost(self) -> int:
        return sum(job.quote.credits for job in self.jobs)

    def submit_label(self) -> tuple[str, str]:
        if self.over is not None:
            key = "" if self.duplicate else " (o)"
            return f"Send both over the cap{key}", "error"
        if self.duplicate:
            return "Send both again", "warning"
        return "Send both (enter)", "primary"

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
        body.append(self.warnings())
        label, variant = self.submit_label()
        with Vertical(id="confirm-box"):
            yield Static(Text(self.heading(), style="bold"), id="confirm-title")
            yield Static(self.table(), id="confirm-compare")
            yield Static(hanging(body), id="confirm-body")
            with Horizontal(id="confirm-buttons"):
                yield Button(label, id="confirm-yes", variant=variant, compact=True)  # type: ignore[arg-type]
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
        close = key_label(HELP_BINDINGS[0], self.keymap).split(" ")[0]
        title = Text()
        title.append("Keys", "bold")
        title.append(f"  {close} closes this", "dim")
        hint = Text()
        hint.append(close, "bold")
        hint.append(" closes", "dim")
        hint.append(
            " · ↑↓ pgup pgdn scroll · ctrl+p lists every action · [keymap] in the config "
            "rebinds a key by the middle column's name",
            "dim",
        )
        with Vertical(id="help-box"):
            yield Static(title, id="help-title")
            with VerticalScroll(id="help-scroll"):
                yield Static(table)
            # Wrapped, never cut: at 80 columns it takes two lines, the way out first.
            yield Static(hint, id="help-hint")

    def action_close(self) -> None:
        self.dismiss(None)
