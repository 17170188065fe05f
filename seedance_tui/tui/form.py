"""The submission panel: provider, the fields that provider has, the prompt, the price.

The form starts from the config's defaults (`jobs.defaults_for`: the config's
`provider`, then its `[providers.NAME.defaults]` over the provider's own) and builds its
job the way `submit` and a batch do (`jobs.build_spec` from the fields, `jobs.prepare`
to check and price it once). Every change checks the job again; the field the
JobValidationError names is marked and its reason shown under it. A valid job is a
PreparedJob: the dashboard confirms it with its quote and submits it as it is.

A field the job cannot have is not offered (`jobs.takes`, the rule the CLI's check
applies too): seedance15pro's aspect row says the image sets it. The compare switch
sends the job to both providers (`jobs.compare_with`), the price line showing the total
and each provider's part. The prompt editor brings back earlier prompts (`up` in an
empty prompt; `prompt_history.py`), and the hints name the keys bound now (`[keymap]`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from rich.cells import cell_len
from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Button, Checkbox, Input, Label, TextArea

from .. import jobs, providers
from ..config import Settings
from ..models import (
    CreditQuote,
    JobSpec,
    JobValidationError,
    Mode,
    PreparedJob,
    Provider,
    js_length,
)
from ..providers.base import MAX_PROMPT
from .format import fitting
from .keys import APP_BINDINGS
from .prompt_history import PromptHistory
from .screens import key_label

FIELDS_WITH_ERRORS = ("provider", "mode", "resolution", "duration", "aspect_ratio",
                      "image_urls", "prompt", "fixed_lens")  # fmt: skip


class Choice(Widget, can_focus=True):
    """A one-line segmented choice: ←/→ (or a click) picks one.

    Every option shows when the row is wide enough; when it is not, a window of options
    around the chosen one, with ‹ or › where options are left out (a click on one picks
    the next option that way) — the chosen value is never cut off. With a `note` the
    row is disabled and shows the note instead of options (a field the job cannot have:
    seedance15pro's aspect ratio once images are given).
    """

    DEFAULT_CSS = """
    Choice { height: 1; width: 1fr; }
    Choice > .choice--label { color: $text-muted; }
    Choice > .choice--selected { background: $primary; color: $text; text-style: bold; }
    Choice > .choice--more { color: $text-muted; text-style: bold; }
    Choice > .choice--note { color: $text-muted; text-style: italic; }
    Choice:focus > .choice--selected { background: $accent; }
    Choice:focus > .choice--label { color: $text; text-style: bold; }
    Choice:disabled { opacity: 100%; }
    """
    COMPONENT_CLASSES = {"choice--label", "choice--selected", "choice--more", "choice--note"}
    BINDINGS = [
        ("left,h", "move(-1)", "Previous"),
        ("right,l,space", "move(1)", "Next"),
    ]
    LABEL_WIDTH = 9

    value: reactive[str] = reactive("", init=False)

    class Changed(Message):
        def __init__(self, choice: Choice, value: str) -> None:
            super().__init__()
            self.choice = choice
            self.value = value

        @property
        def control(self) -> Choice:
            return self.choice

    def __init__(self, label: str, options: list[tuple[str, str]], *, id: str) -> None:
        super().__init__(id=id)
        self.label = label
        self.options = list(options)
        self.note: str | None = None
        self.set_reactive(Choice.value, options[0][0])

    def set_options(self, options: list[tuple[str, str]], value: str | None = None) -> None:
        self.options = list(options)
        values = [v for v, _ in options]
        self.value = value if value in values else values[0]
        self.refresh()

    def set_note(self, note: str | None) -> None:
        """Show `note` instead of the options, the row disabled (None: the options)."""
        if note == self.note:
            return
        self.note = note
        self.disabled = note is not None
        self.refresh()

    @property
    def selected_label(self) -> str:
        return next((label for value, label in self.options if value == self.value), "")

    def pieces(self, width: int) -> list[tuple[str, str | None, str]]:
        """What the row paints after its label, fitted to `width` cells: (text, the value
        a click there picks, its kind: "option", "selected", "more" or "gap")."""
        index = next((i for i, (v, _) in enumerate(self.options) if v == self.value), 0)
        items = [
            (f"[{label}]" if i == index else f" {label} ", value,
             "selected" if i == index else "option")
            for i, (value, label) in enumerate(self.options)
        ]  # fmt: skip
        room = width - self.LABEL_WIDTH

        def shown_width(first: int, last: int) -> int:
            cells = sum(cell_len(text) for text, _, _ in items[first : last + 1]) + last - first
            return cells + (2 if first > 0 else 0) + (2 if last < len(items) - 1 else 0)

        first = last = index
        if shown_width(0, len(items) - 1) <= room:
            first, last = 0, len(items) - 1
        else:
            grown = True
            while grown:  # one more option on the right, then on the left, while they fit
                grown = False
                if last + 1 < len(items) and shown_width(first, last + 1) <= room:
                    last, grown = last + 1, True
                if first > 0 and shown_width(first - 1, last) <= room:
                    first, grown = first - 1, True
        pieces: list[tuple[str, str | None, str]] = []
        if first > 0:
            pieces += [("‹", items[first - 1][1], "more"), (" ", None, "gap")]
        for i in range(first, last + 1):
            if i > first:
                pieces.append((" ", None, "gap"))
            pieces.append(items[i])
        if last < len(items) - 1:
            pieces += [(" ", None, "gap"), ("›", items[last + 1][1], "more")]
        return pieces

    def render(self) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        label_style = self.get_component_rich_style("choice--label")
        text.append(self.label.ljust(self.LABEL_WIDTH)[: self.LABEL_WIDTH], label_style)
        if self.note is not None:
            text.append(self.note, self.get_component_rich_style("choice--note"))
            return text
        styles = {
            "selected": self.get_component_rich_style("choice--selected"),
            "more": self.get_component_rich_style("choice--more"),
        }
        for piece, _, kind in self.pieces(self.size.width):
            text.append(piece, styles.get(kind, ""))
        return text

    def action_move(self, step: int) -> None:
        values = [v for v, _ in self.options]
        index = values.index(self.value) if self.value in values else 0
        self.value = values[(index + step) % len(values)]

    def on_click(self, event: events.Click) -> None:
        if self.note is not None:
            return
        x = self.LABEL_WIDTH
        for piece, value, _ in self.pieces(self.size.width):
            width = cell_len(piece)
            if value is not None and x <= event.x < x + width:
                self.value = value
                return
            x += width

    def watch_value(self, value: str) -> None:
        self.post_message(self.Changed(self, value))


class PlainMark:
    """For a toggle button (a checkbox, a radio button): its state drawn as the plain
    text of its `mark`, which reads in any terminal, without colour."""

    @property
    def mark(self) -> str:
        raise NotImplementedError

    def render(self) -> Content:
        button = Content.styled(self.mark, self.get_visual_style("toggle--button"))  # type: ignore[attr-defined]
        label = self.label.pad(1, 1).stylize_before(self.get_visual_style("toggle--label"))  # type: ignore[attr-defined]
        return Content.assemble(button, label)

    def get_content_width(self, container: Size, viewport: Size) -> int:
        plain = self.label.plain  # type: ignore[attr-defined]
        return len(self.mark) + (cell_len(plain) + 2 if plain else 0)


class Toggle(PlainMark, Checkbox):
    """A compact checkbox that reads on and off in any terminal, without colour:
    `[x] audio` / `[ ] audio`."""

    DEFAULT_CSS = """
    Toggle { background: transparent; }
    Toggle > .toggle--button { background: transparent; color: $text-muted; }
    Toggle.-on > .toggle--button { background: transparent; color: $text-success;
                                   text-style: bold; }
    """

    @property
    def mark(self) -> str:
        return "[x]" if self.value else "[ ]"


class PromptArea(TextArea):
    """The prompt editor; in an empty prompt `up` (or ctrl+r) brings back the earlier
    prompts, newest first, and `down` goes forward again, to the empty prompt. A prompt
    brought back is browsed until it is edited; then up and down move the cursor again."""

    BINDINGS = [Binding("ctrl+r", "older_prompt", "Earlier prompt", show=False)]

    def __init__(self, prompts: PromptHistory, **kwargs) -> None:
        super().__init__(**kwargs)
        self.prompts = prompts

    def _browsing(self) -> bool:
        """Showing an entry of the history, unedited."""
        return self.prompts.browsing and self.text == self.prompts.shown

    def _show_entry(self, text: str) -> None:
        self.load_text(text)  # posts Changed: the form checks the job again
        self.move_cursor(self.document.end)

    def action_older_prompt(self) -> None:
        if not self._browsing():
            if self.text.strip():
                self.app.bell()  # a prompt is being written: it is not replaced
                return
            self.prompts.start(self.text)
        entry = self.prompts.older()
        if entry is None:
            self.app.bell()  # no earlier prompt
            return
        self._show_entry(entry)

    def action_cursor_up(self, select: bool = False) -> None:
        if not select and (self._browsing() or not self.text):
            self.action_older_prompt()
            return
        super().action_cursor_up(select)

    def action_cursor_down(self, select: bool = False) -> None:
        if not select and self._browsing():
            entry = self.prompts.newer()
            if entry is not None:
                self._show_entry(entry)
            return
        super().action_cursor_down(select)


class FieldError(Label):
    """The reason a field is invalid, shown under it; hidden while the field is fine."""

    message: str | None = None  # what it shows (None: hidden, as the form mounts it)

    def show(self, message: str | None) -> None:
        if message == self.message:
            return  # every keystroke revalidates: only a change repaints and lays out
        self.message = message
        self.update(Text(f"↳ {message}") if message else "")
        self.display = bool(message)


class FittedLine(Widget):
    """One line showing the longest of its texts that fits its width (the first one
    given that fits; the last one, cut, when none does): a line that drops its details
    on a narrow screen instead of being cut mid-word."""

    DEFAULT_CSS = "FittedLine { height: 1; width: 1fr; }"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.texts: list[Text] = [Text()]

    def show(self, *texts: Text) -> None:
        texts_list = list(texts) or [Text()]
        if [(t.plain, t.spans) for t in texts_list] == [(t.plain, t.spans) for t in self.texts]:
            return
        self.texts = texts_list
        self.refresh()

    @property
    def shown(self) -> Text:
        """The text the line shows at its width."""
        return fitting(self.texts, self.size.width)

    def render(self) -> Text:
        text = self.shown.copy()
        text.no_wrap, text.overflow = True, "ellipsis"
        return text


# What the aspect row says when the job cannot have one (`jobs.takes`): seedance15pro
# takes the aspect ratio from the image and ignores the field (its API docs).
ASPECT_FROM_IMAGE = "set by the image"


class JobForm(Vertical):
    """The form; posts `SubmitRequested` when the user asks to submit."""

    submitting: reactive[bool] = reactive(False)

    class SubmitRequested(Message):
        """The user asked to submit (button or key); the dashboard checks and confirms.
        With the compare switch on, that is a compare (`compare_on`)."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        prompts: Callable[[], Sequence[str]] | None = None,
        id: str | None = None,
    ) -> None:
        """`settings`: whose provider and defaults a new job starts from (None: the
        providers' own, nanophoto first); `prompts`: the earlier prompts, newest first,
        for the prompt editor's up/down (None: no history)."""
        super().__init__(id=id)
        self.settings = settings
        self.provider = jobs.provider_of(None, settings)
        self.error: JobValidationError | None = None
        self.quote: CreditQuote | None = None
        # With the compare switch on: each provider's price (None: not priced) and why a
        # counterpart cannot be made (None: it can).
        self.compare_jobs: list[PreparedJob] | None = None
        self.compare_error: JobValidationError | None = None
        self.prompt_history = PromptHistory(prompts)
        self._prompt_touched = False

    def compose(self) -> ComposeResult:
        yield Choice("Provider", [(p.value, p.value) for p in Provider], id="provider")
        yield Choice("Mode", [("text", "text"), ("image", "image")], id="mode")
        yield FieldError(id="err-mode")
        yield Choice("Quality", [("x", "x")], id="resolution")
        yield FieldError(id="err-resolution")
        yield Choice("Length", [("x", "x")], id="duration")
        yield FieldError(id="err-duration")
        yield Choice("Aspect", [("x", "x")], id="aspect_ratio")
        yield FieldError(id="err-aspect_ratio")
        with Horizontal(id="switches"):
            yield Toggle("audio", id="audio", compact=True)
            yield Toggle("fixed lens", id="fixed_lens", compact=True)
        yield FieldError(id="err-fixed_lens")
        yield Toggle("compare on both providers", id="compare", compact=True)
        yield FittedLine(id="compare-note")
        yield FieldError(id="err-compare")
        with Horizontal(id="images-row"):
            yield Label("Images", classes="field-label")
            yield Input(placeholder="URLs, space-separated", id="image_urls", compact=True)
        yield FieldError(id="err-image_urls")
        yield PromptArea(self.prompt_history, id="prompt", compact=True, soft_wrap=True)
        yield FieldError(id="err-prompt")
        yield FieldError(id="err-provider")
        yield FittedLine(id="prompt-meta")
        yield Button("Submit", id="submit", compact=True, variant="primary")

    def on_mount(self) -> None:
        self.query_one("#prompt", TextArea).cursor_blink = self.app.cursor_blink_enabled
        self.query_one("#image_urls", Input).cursor_blink = self.app.cursor_blink_enabled
        self.query_one(
            "#image_urls", Input
        ).tooltip = "Public http(s) image URLs, separated by spaces: image-to-video"
        self._apply_provider(self.provider, jobs.defaults_for(self.provider, self.settings))
        for error in self.query(FieldError):
            error.display = False
        self.show_key_hints()
        self.revalidate()

    # -- key hints ---------------------------------------------------------------------

    def key_hint(self, action: str) -> str:
        """The key `action` is bound to now, as the user presses it ("ctrl+s"), after
        the config's `[keymap]`; "" when no key is bound to it."""
        binding = next((b for b in APP_BINDINGS if b.id == action), None)
        if binding is None:
            return ""
        keymap = getattr(self.app, "keymap_overrides", None) or {}
        keys = key_label(binding, keymap).split()
        return keys[0] if keys else ""

    def show_key_hints(self) -> None:
        """The prompt's placeholder and the button name the keys bound now."""
        submit = self.key_hint("submit")
        hints = [f"{submit} submits"] if submit else []
        hints.append("↑ earlier prompts")
        self.query_one(
            "#prompt", TextArea
        ).placeholder = f"Describe the video…  ({' · '.join(hints)})"
        self._label_button()

    def _label_button(self) -> None:
        button = self.query_one("#submit", Button)
        if self.submitting:
            button.label = "Submitting…"
            return
        key = self.key_hint("submit")
        name = "Send to both" if self.compare_on else "Submit"
        button.label = f"{name}  {key}" if key else name

    # -- provider-dependent fields -----------------------------------------------------

    def _apply_provider(self, provider: Provider, values: dict) -> None:
        """Show the fields `provider` has, with `values` (defaults or a spec's) selected.
        Sets the fields without a Changed message each: the caller checks the job once."""
        with self.prevent(Choice.Changed, Checkbox.Changed):
            self.provider = provider
            adapter = providers.get(provider)
            choices = adapter.choices()
            self.query_one("#provider", Choice).set_options(
                [(p.value, p.value) for p in Provider], provider.value
            )
            nano = provider is Provider.NANOPHOTO
            resolution = self.query_one("#resolution", Choice)
            resolution.display = nano
            if nano:
                resolution.set_options([(r, r) for r in choices["resolution"]],
                                       values.get("resolution"))  # fmt: skip
            self.query_one("#mode", Choice).display = nano
            self.query_one("#duration", Choice).set_options(
                [(d, f"{d}s") for d in choices["duration"]], values.get("duration")
            )
            self.query_one("#aspect_ratio", Choice).set_options(
                [(a, a) for a in choices["aspect_ratio"]], values.get("aspect_ratio")
            )
            # One word for one thing: the confirm dialog and the CLI say audio too
            # (seedance15pro's API calls it sound).
            self.query_one("#audio", Checkbox).value = bool(values.get("audio"))
            fixed = self.query_one("#fixed_lens", Checkbox)
            fixed.display = nano
            fixed.value = bool(values.get("fixed_lens"))
            if "mode" in values:
                self.query_one("#mode", Choice).value = (
                    "image" if values["mode"] == Mode.IMAGE_TO_VIDEO.value else "text"
                )

    def _image_urls(self) -> tuple[str, ...]:
        return tuple(self.query_one("#image_urls", Input).value.split())

    def _show_aspect_rule(self) -> None:
        """The aspect row is offered only when the job can have an aspect ratio (the
        rule `jobs.build_spec` and the provider's check apply: `jobs.takes`)."""
        takes = jobs.takes(self.provider, "aspect_ratio", images=bool(self._image_urls()))
        aspect = self.query_one("#aspect_ratio", Choice)
        aspect.set_note(None if takes else ASPECT_FROM_IMAGE)
        aspect.tooltip = None if takes else (
            f"{self.provider.value} takes the aspect ratio from the image "
            "and ignores this field when image URLs are given"
        )  # fmt: skip

    # -- the spec ----------------------------------------------------------------------

    @property
    def compare_on(self) -> bool:
        """The compare switch: submitting sends the job to both providers."""
        return self.query_one("#compare", Checkbox).value

    def fields(self) -> jobs.JobFields:
        """The job as the form describes it, in `submit`'s names: what the provider has
        (seedance15pro: no mode choice, resolution or fixed lens; no aspect ratio once
        images are given, which it ignores and wants unset: `jobs.takes`)."""
        nano = self.provider is Provider.NANOPHOTO
        urls = self._image_urls()
        takes_aspect = jobs.takes(self.provider, "aspect_ratio", images=bool(urls))
        return jobs.JobFields(
            provider=self.provider,
            prompt=self.query_one("#prompt", TextArea).text,
            images=urls,
            mode=self.query_one("#mode", Choice).value if nano else None,
            aspect=self.query_one("#aspect_ratio", Choice).value if takes_aspect else None,
            resolution=self.query_one("#resolution", Choice).value if nano else None,
            duration=self.query_one("#duration", Choice).value,
            audio=self.query_one("#audio", Checkbox).value,
            fixed_lens=self.query_one("#fixed_lens", Checkbox).value if nano else None,
        )

    def state(self) -> tuple[jobs.JobFields, bool]:
        """Everything the user set: equal states, the same form."""
        return self.fields(), self.compare_on

    def spec(self) -> JobSpec:
        """The job as the form describes it (not yet checked)."""
        return jobs.build_spec(self.fields(), self.settings)

    def load_spec(self, spec: JobSpec) -> None:
        """Fill the form with a job (re-run)."""
        self._apply_provider(spec.provider, spec.params())
        with self.prevent(Input.Changed, TextArea.Changed):
            self.query_one("#image_urls", Input).value = " ".join(spec.image_urls)
            self.query_one("#prompt", TextArea).text = spec.prompt
        self._prompt_touched = True
        self.revalidate()

    def reset(self) -> None:
        """A new job: an empty prompt, no images, compare off, every field at the
        config's defaults (as the form starts)."""
        provider = jobs.provider_of(None, self.settings)
        self._apply_provider(provider, jobs.defaults_for(provider, self.settings))
        with self.prevent(Input.Changed, TextArea.Changed, Checkbox.Changed):
            self.query_one("#image_urls", Input).value = ""
            self.query_one("#prompt", TextArea).load_text("")
            self.query_one("#compare", Checkbox).value = False
        self._prompt_touched = False
        self.prompt_history.stop()
        self._label_button()
        self.revalidate()

    def revalidate(self, *, show_empty_prompt: bool = False) -> PreparedJob | None:
        """Check and price the job; mark the invalid field. Returns the job, checked and
        priced once (None while a field is wrong)."""
        self._show_aspect_rule()
        spec = self.spec()
        adapter = providers.get(spec.provider)
        self.error, valid = None, None
        try:
            valid = jobs.prepare(spec)
        except JobValidationError as exc:
            self.error = exc
        # The price shows while the prompt is still empty (it does not depend on it).
        priced = dataclasses.replace(spec, prompt="x")
        try:
            self.quote = adapter.quote(priced)
        except JobValidationError:
            self.quote = None
        self.compare_jobs, self.compare_error = None, None
        if self.compare_on and self.quote is not None:
            try:
                pair = jobs.compare_with(jobs.prepare(priced), self.settings)
            except JobValidationError as exc:
                self.compare_error = exc
            else:
                self.compare_jobs = pair
        empty_prompt = not spec.prompt.strip()
        for name in FIELDS_WITH_ERRORS:
            message = None
            if self.error is not None and self.error.field == name:
                quiet = (
                    name == "prompt"
                    and empty_prompt
                    and not (show_empty_prompt or self._prompt_touched)
                )
                message = None if quiet else self.error.message
            self.query_one(f"#err-{name}", FieldError).show(message)
            for widget in self.query(f"#{name}"):
                widget.set_class(message is not None, "-invalid")
        compare_message = None
        if self.compare_error is not None:
            other = next(p for p in Provider if p is not self.provider)
            compare_message = (
                f"not on {other.value}: {self.compare_error.field} {self.compare_error.message}"
            )
        self.query_one("#err-compare", FieldError).show(compare_message)
        self._show_compare_note()
        self._show_meta(spec)
        return valid

    def _show_meta(self, spec: JobSpec) -> None:
        """The prompt's length and the price, the longest wording that fits the line."""
        length = js_length(spec.prompt)
        count = Text(f"{length}/{MAX_PROMPT}", "bold red" if length > MAX_PROMPT else "")

        def line(*parts: tuple[str, str]) -> Text:
            text = count.copy()
            for part, style in parts:
                text.append(part, style)
            return text

        meta = self.query_one("#prompt-meta", FittedLine)
        if self.quote is None:
            meta.show(line(("  no estimate until the fields are valid", "dim")),
                      line(("  no estimate yet", "dim")))  # fmt: skip
        elif self.compare_on and self.compare_jobs is not None:
            total = sum(job.quote.credits for job in self.compare_jobs)
            meta.show(
                line((f"  ≈ {total} credits", "bold"), ("  for both providers", "dim")),
                line((f"  ≈ {total} credits", "bold"), (" for both", "dim")),
                line((f"  ≈ {total} credits", "bold")),
            )
        elif self.compare_on:
            meta.show(line(("  no estimate for both providers", "dim")),
                      line(("  no estimate", "dim")))  # fmt: skip
        else:
            credits = f"  ≈ {self.quote.credits} credits"
            meta.show(
                line((credits, "bold"), (f"  ({self.quote.basis})", "dim")),
                line((credits, "bold")),
            )

    def _show_compare_note(self) -> None:
        """With the compare switch on: where the job goes, and each provider's price
        (with its fields, mapped to that provider's nearest, where the line has room)."""
        note = self.query_one("#compare-note", FittedLine)
        note.display = self.compare_on and self.compare_jobs is not None
        if self.compare_jobs is None:
            return

        def each(part) -> Text:
            text = Text("→ ", "dim")
            for i, job in enumerate(self.compare_jobs or []):
                if i:
                    text.append(" · ", "dim")
                text.append(job.provider.value, "bold")
                text.append(part(job))
            return text

        note.show(
            each(lambda job: f" {job.spec.summary()} ≈ {job.quote.credits}"),
            each(lambda job: f" ≈ {job.quote.credits}"),
            each(lambda job: f" {job.quote.credits}"),
        )

    def watch_submitting(self, submitting: bool) -> None:
        self.query_one("#submit", Button).disabled = submitting
        self._label_button()

    # -- events ------------------------------------------------------------------------

    @on(Choice.Changed)
    @on(Checkbox.Changed)
    @on(Input.Changed)
    def _field_changed(self, event: Message) -> None:
        event.stop()
        new_provider = (
            isinstance(event, Choice.Changed)
            and event.choice.id == "provider"
            and event.value != self.provider.value
        )
        if new_provider:
            provider = Provider(event.value)  # type: ignore[attr-defined]
            self._apply_provider(provider, jobs.defaults_for(provider, self.settings))
        if isinstance(event, Checkbox.Changed) and event.checkbox.id == "compare":
            self._label_button()
        self.revalidate()

    @on(TextArea.Changed, "#prompt")
    def _prompt_changed(self, event: TextArea.Changed) -> None:
        event.stop()
        self._prompt_touched = True
        self.revalidate()

    @on(Button.Pressed, "#submit")
    def _submit_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.post_message(self.SubmitRequested())

    def focus_field(self, name: str) -> None:
        widgets = self.query(f"#{name}")
        if widgets:
            widgets.first().focus()
