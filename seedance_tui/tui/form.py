"""The submission panel: provider, the fields that provider has, the prompt, the price.

The form starts from the config's defaults (`jobs.defaults_for`: the config's
`provider`, then its `[providers.NAME.defaults]` over the provider's own) and builds its
job the way `submit` and a batch do (`jobs.build_spec` from the fields, `jobs.prepare`
to check and price it once). Every change checks the job again; the field the
JobValidationError names is marked and its reason shown under it. A valid job is a
PreparedJob: the dashboard confirms it with its quote and submits it as it is.
"""

from __future__ import annotations

import dataclasses

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Button, Checkbox, Input, Label, Static, TextArea

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
from .unchanged import show_text

FIELDS_WITH_ERRORS = ("provider", "mode", "resolution", "duration", "aspect_ratio",
                      "image_urls", "prompt", "fixed_lens")  # fmt: skip


class Choice(Widget, can_focus=True):
    """A one-line segmented choice: every option visible, ←/→ (or a click) picks one."""

    DEFAULT_CSS = """
    Choice { height: 1; width: 1fr; }
    Choice > .choice--label { color: $text-muted; }
    Choice > .choice--selected { background: $primary; color: $text; text-style: bold; }
    Choice:focus > .choice--selected { background: $accent; }
    Choice:focus > .choice--label { color: $text; text-style: bold; }
    Choice:disabled { opacity: 60%; }
    """
    COMPONENT_CLASSES = {"choice--label", "choice--selected"}
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
        self.set_reactive(Choice.value, options[0][0])

    def set_options(self, options: list[tuple[str, str]], value: str | None = None) -> None:
        self.options = list(options)
        values = [v for v, _ in options]
        self.value = value if value in values else values[0]
        self.refresh()

    def _spans(self) -> list[tuple[int, int, str]]:
        spans, x = [], self.LABEL_WIDTH
        for value, label in self.options:
            width = len(label) + 2
            spans.append((x, x + width, value))
            x += width + 1
        return spans

    def render(self) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        label_style = self.get_component_rich_style("choice--label")
        text.append(self.label.ljust(self.LABEL_WIDTH)[: self.LABEL_WIDTH], label_style)
        selected_style = self.get_component_rich_style("choice--selected")
        for i, (value, label) in enumerate(self.options):
            if i:
                text.append(" ")
            if value == self.value:
                text.append(f"[{label}]", selected_style)
            else:
                text.append(f" {label} ")
        return text

    def action_move(self, step: int) -> None:
        values = [v for v, _ in self.options]
        index = values.index(self.value) if self.value in values else 0
        self.value = values[(index + step) % len(values)]

    def on_click(self, event: events.Click) -> None:
        for start, end, value in self._spans():
            if start <= event.x < end:
                self.value = value
                return

    def watch_value(self, value: str) -> None:
        self.post_message(self.Changed(self, value))


class Toggle(Checkbox):
    """A compact checkbox whose mark is a tick or nothing, so it reads without colour."""

    @property
    def BUTTON_INNER(self) -> str:  # noqa: N802 - overrides the class constant
        return "✓" if self.value else " "


class FieldError(Label):
    """The reason a field is invalid, shown under it; hidden while the field is fine."""

    message: str | None = None  # what it shows (None: hidden, as the form mounts it)

    def show(self, message: str | None) -> None:
        if message == self.message:
            return  # every keystroke revalidates: only a change repaints and lays out
        self.message = message
        self.update(Text(f"↳ {message}") if message else "")
        self.display = bool(message)


class JobForm(Vertical):
    """The form; posts `SubmitRequested` when the user asks to submit."""

    submitting: reactive[bool] = reactive(False)

    class SubmitRequested(Message):
        """The user asked to submit (button or key); the dashboard checks and confirms."""

    def __init__(self, settings: Settings | None = None, *, id: str | None = None) -> None:
        """`settings`: whose provider and defaults a new job starts from (None: the
        providers' own, nanophoto first)."""
        super().__init__(id=id)
        self.settings = settings
        self.provider = jobs.provider_of(None, settings)
        self.error: JobValidationError | None = None
        self.quote: CreditQuote | None = None
        self._prompt_touched = False
        self._loading = False

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
        with Horizontal(id="images-row"):
            yield Label("Images", classes="field-label")
            yield Input(placeholder="public image URLs, space-separated", id="image_urls",
                        compact=True)  # fmt: skip
        yield FieldError(id="err-image_urls")
        yield TextArea(id="prompt", compact=True, soft_wrap=True,
                       placeholder="Describe the video…  (ctrl+s submits)")  # fmt: skip
        yield Static(id="prompt-meta")
        yield FieldError(id="err-prompt")
        yield FieldError(id="err-provider")
        yield Button("Submit  ctrl+s", id="submit", compact=True, variant="primary")

    def on_mount(self) -> None:
        self.query_one("#prompt", TextArea).cursor_blink = self.app.cursor_blink_enabled
        self.query_one("#image_urls", Input).cursor_blink = self.app.cursor_blink_enabled
        self._apply_provider(self.provider, jobs.defaults_for(self.provider, self.settings))
        for error in self.query(FieldError):
            error.display = False
        self.revalidate()

    # -- provider-dependent fields -----------------------------------------------------

    def _apply_provider(self, provider: Provider, values: dict) -> None:
        """Show the fields `provider` has, with `values` (defaults or a spec's) selected."""
        self._loading = True
        try:
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
            self.query_one("#audio", Checkbox).label = "audio" if nano else "sound"
            self.query_one("#audio", Checkbox).value = bool(values.get("audio"))
            fixed = self.query_one("#fixed_lens", Checkbox)
            fixed.display = nano
            fixed.value = bool(values.get("fixed_lens"))
            if "mode" in values:
                self.query_one("#mode", Choice).value = (
                    "image" if values["mode"] == Mode.IMAGE_TO_VIDEO.value else "text"
                )
        finally:
            self._loading = False

    # -- the spec ----------------------------------------------------------------------

    def fields(self) -> jobs.JobFields:
        """The job as the form describes it, in `submit`'s names: what the provider has
        (seedance15pro: no mode choice, resolution or fixed lens; no aspect ratio once
        images are given, which it ignores and wants unset)."""
        nano = self.provider is Provider.NANOPHOTO
        urls = tuple(self.query_one("#image_urls", Input).value.split())
        images_given = not nano and bool(urls)
        return jobs.JobFields(
            provider=self.provider,
            prompt=self.query_one("#prompt", TextArea).text,
            images=urls,
            mode=self.query_one("#mode", Choice).value if nano else None,
            aspect=None if images_given else self.query_one("#aspect_ratio", Choice).value,
            resolution=self.query_one("#resolution", Choice).value if nano else None,
            duration=self.query_one("#duration", Choice).value,
            audio=self.query_one("#audio", Checkbox).value,
            fixed_lens=self.query_one("#fixed_lens", Checkbox).value if nano else None,
        )

    def spec(self) -> JobSpec:
        """The job as the form describes it (not yet checked)."""
        return jobs.build_spec(self.fields(), self.settings)

    def load_spec(self, spec: JobSpec) -> None:
        """Fill the form with a job (re-run)."""
        values = spec.params()
        self._apply_provider(spec.provider, values)
        self._loading = True
        try:
            self.query_one("#image_urls", Input).value = " ".join(spec.image_urls)
            self.query_one("#prompt", TextArea).text = spec.prompt
        finally:
            self._loading = False
        self._prompt_touched = True
        self.revalidate()

    def revalidate(self, *, show_empty_prompt: bool = False) -> PreparedJob | None:
        """Check and price the job; mark the invalid field. Returns the job, checked and
        priced once (None while a field is wrong)."""
        spec = self.spec()
        adapter = providers.get(spec.provider)
        self.error, valid = None, None
        try:
            valid = jobs.prepare(spec)
        except JobValidationError as exc:
            self.error = exc
        # The price shows while the prompt is still empty (it does not depend on it).
        try:
            self.quote = adapter.quote(dataclasses.replace(spec, prompt="x"))
        except JobValidationError:
            self.quote = None
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
        self._show_meta(spec)
        return valid

    def _show_meta(self, spec: JobSpec) -> None:
        length = js_length(spec.prompt)
        meta = Text(no_wrap=True, overflow="ellipsis")
        meta.append(f"{length}/{MAX_PROMPT}", "bold red" if length > MAX_PROMPT else "")
        meta.append("  ")
        if self.quote is not None:
            meta.append(f"≈ {self.quote.credits} credits", "bold")
            meta.append(f"  ({self.quote.basis})", "dim")
        else:
            meta.append("no estimate until the fields are valid", "dim")
        show_text(self.query_one("#prompt-meta", Static), meta)

    def watch_submitting(self, submitting: bool) -> None:
        button = self.query_one("#submit", Button)
        button.disabled = submitting
        button.label = "Submitting…" if submitting else "Submit  ctrl+s"

    # -- events ------------------------------------------------------------------------

    @on(Choice.Changed, "#provider")
    def _provider_changed(self, event: Choice.Changed) -> None:
        event.stop()
        if self._loading or event.value == self.provider.value:
            return
        provider = Provider(event.value)
        self._apply_provider(provider, jobs.defaults_for(provider, self.settings))
        self.revalidate()

    @on(Choice.Changed)
    @on(Checkbox.Changed)
    @on(Input.Changed)
    def _field_changed(self, event: Message) -> None:
        event.stop()
        if not self._loading:
            self.revalidate()

    @on(TextArea.Changed, "#prompt")
    def _prompt_changed(self, event: TextArea.Changed) -> None:
        event.stop()
        if not self._loading:
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
