"""API keys from the dashboard: the first start's notice, and a dialog to paste a key.

Without any key nothing can be sent, so the first start (no key for any provider, an
empty history, not the demo) says so at the top of the task list: which providers have
no key, the key that opens the dialog, the shell command (`seedance-tui key set
nanophoto`) and `--demo` to try it first. ctrl+s on a job whose provider has no key opens
the dialog instead of a confirm with a price; `K` opens it at any time.

The dialog stores the key exactly as `seedance-tui key set PROVIDER` does
(`keys.store_key`: the OS keyring when a usable one exists, else keys.json created 0600
before the secret is written), in a thread (a keyring may take its time). The field
shows bullets only; the key is cleared from the field as soon as it is read, never put
in a message, a toast, a worker's name or a log; what is shown of a stored key is its
fingerprint (`keys.fingerprint`, what the history records), never a character of it.
Once stored, the settings look keys up again and the engine re-reads its pending tasks:
a task that waited for that key is checked, and the next job is sent with it, without a
restart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, RadioButton, RadioSet, Static
from textual.worker import Worker, WorkerState

from ..errors import ConfigError
from ..hosts import HOSTS, key_set_command
from ..keys import keyring_backend, keyring_name, store_key
from ..models import Provider
from ..paths import keys_path
from ..text import one_line
from .form import PlainMark

if TYPE_CHECKING:
    from ..config import Settings
    from .dashboard import DashboardScreen

SOURCE_WORDS = {
    "flag": "from --key",
    "env": "from the environment",
    "keyring": "in the OS keyring",
    "file": "in keys.json",
}


def has_key(settings: Settings, provider: Provider) -> bool:
    """Is a key for `provider` found (a keys file others can read counts as none)?"""
    try:
        return settings.key(provider) is not None
    except ConfigError:
        return False


def missing_keys(settings: Settings) -> list[Provider]:
    """The providers with no key, in the providers' order."""
    return [provider for provider in Provider if not has_key(settings, provider)]


def key_problem(settings: Settings) -> str | None:
    """Why the keys cannot be read at all (a keys file others can read), if so."""
    try:
        for provider in Provider:
            settings.key(provider)
    except ConfigError as exc:
        return str(exc)
    return None


def key_state(settings: Settings, provider: Provider) -> str:
    """Where the provider's key comes from, with its fingerprint (never the key)."""
    try:
        section = settings.providers[provider]
        source = section.key_source
        fingerprint = settings.key_fingerprint(provider)
    except ConfigError:
        return "keys file unreadable"
    if source is None or fingerprint is None:
        return "no key"
    return f"key {fingerprint[:6]}… {SOURCE_WORDS.get(source, source)}"


def stored_where(where: str) -> str:
    """`store_key`'s answer as words."""
    return "in the OS keyring" if where == "keyring" else f"in {where} (mode 0600)"


@dataclass(frozen=True, slots=True)
class StoredKey:
    """The dialog's answer: which provider's key was stored, and where (never the key)."""

    provider: Provider
    where: str  # "keyring" or the keys file's path


class NoKeyNotice(Static):
    """The first start's notice at the top of the task list (hidden otherwise)."""

    def show_missing(self, missing: list[Provider], key: str, problem: str | None) -> None:
        text = Text()
        if problem:
            text.append("The API keys cannot be read: ", "bold red")
            text.append(one_line(problem, 300) + "\n")
        else:
            text.append("No API key yet", "bold yellow")
            text.append(f" for {' or '.join(p.value for p in missing)}: nothing can be sent.\n")
        text.append(f" {key} ", "reverse bold")
        text.append(" paste a key here, or in a shell: ")
        text.append(key_set_command(missing[0] if missing else Provider.NANOPHOTO), "bold")
        text.append("\nTry it first with the built-in simulator: ")
        text.append("seedance-tui --demo", "bold")
        self.border_title = "Start here"
        self.update(text)
        self.display = True


class ProviderOption(PlainMark, RadioButton):
    """A radio button that reads chosen or not in any terminal, without colour:
    `(•) nanophoto` / `( ) seedance15pro`."""

    DEFAULT_CSS = """
    ProviderOption { background: transparent; }
    ProviderOption > .toggle--button { background: transparent; color: $text-muted; }
    ProviderOption.-on > .toggle--button { background: transparent; color: $text-success;
                                           text-style: bold; }
    """

    @property
    def mark(self) -> str:
        return "(•)" if self.value else "( )"


class KeyDialog(ModalScreen["StoredKey | None"]):
    """Paste a provider's API key; enter stores it as `key set` would, esc cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", show=False)]
    AUTO_FOCUS = "#key-input"

    def __init__(
        self, settings: Settings, provider: Provider | None = None, reason: str | None = None
    ) -> None:
        super().__init__()
        self.settings = settings
        missing = missing_keys(settings)
        self.provider = provider or (missing[0] if missing else settings.default_provider)
        self.reason = reason
        self.storing = False

    def compose(self) -> ComposeResult:
        with Vertical(id="key-box"):
            yield Static(Text("Paste an API key", style="bold"), id="key-title")
            if self.reason:
                yield Static(Text(self.reason, style="yellow"), id="key-reason")
            with RadioSet(id="key-provider", compact=True):
                for provider in Provider:
                    label = Text(f"{provider.value} · {key_state(self.settings, provider)}")
                    yield ProviderOption(
                        label, value=provider is self.provider, id=f"key-{provider.value}",
                        compact=True,
                    )  # fmt: skip
            yield Input(
                placeholder="the key (shown as bullets)",
                password=True,
                id="key-input",
                compact=True,
            )
            yield Static(id="key-error")
            yield Static(self.where_text(), id="key-where")
            with Horizontal(id="key-buttons"):
                yield Button("Store (enter)", id="key-store", variant="primary", compact=True)
                yield Button("Cancel (esc)", id="key-cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#key-error", Static).display = False
        cursor_blink = getattr(self.app, "cursor_blink_enabled", True)
        self.query_one("#key-input", Input).cursor_blink = cursor_blink

    def where_text(self) -> Text:
        """Where the key will go, as `key set` would put it, and what takes precedence."""
        provider = self.provider
        text = Text(style="dim")
        backend = keyring_backend()
        where = (
            f"the OS keyring ({keyring_name(backend)})"
            if backend is not None
            else f"{keys_path()} (mode 0600)"
        )
        text.append(f"Stored as `{key_set_command(provider)}` stores it: in {where}. ")
        text.append("Never shown, never logged; used at once, no restart.")
        env_key = HOSTS[provider].env_key
        if self.settings.providers[provider].lookup.env.get(env_key):
            text.append(f"\n{env_key} is set in the environment and is used before it.", "yellow")
        return text

    @on(RadioSet.Changed, "#key-provider")
    def _provider_changed(self, event: RadioSet.Changed) -> None:
        event.stop()
        self.provider = list(Provider)[event.index]
        self.query_one("#key-where", Static).update(self.where_text())
        self.query_one("#key-input", Input).focus()

    @on(Input.Submitted, "#key-input")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.store()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "key-store":
            self.store()
        else:
            self.dismiss(None)

    def show_error(self, message: str) -> None:
        error = self.query_one("#key-error", Static)
        error.update(Text(one_line(message, 300), style="bold red"))
        error.display = True

    def store(self) -> None:
        """Store the field's key in a thread; the field is emptied at once."""
        if self.storing:
            return
        field = self.query_one("#key-input", Input)
        secret = field.value.strip()
        field.value = ""
        if not secret:
            self.show_error("Paste the key first (nothing was stored).")
            field.focus()
            return
        provider = self.provider
        self.storing = True

        def work() -> str:
            return store_key(provider, secret)

        # The description names what is done, never the key (a worker's repr shows it).
        self.run_worker(work, name="store-key", group="key", thread=True,
                        description=f"storing the {provider.value} key",
                        exit_on_error=False)  # fmt: skip

    @on(Worker.StateChanged)
    def _stored(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "key":
            return
        event.stop()
        if event.state is WorkerState.SUCCESS:
            self.dismiss(StoredKey(self.provider, str(event.worker.result)))
        elif event.state in (WorkerState.ERROR, WorkerState.CANCELLED):
            self.storing = False
            error = event.worker.error
            if isinstance(error, ConfigError | OSError):
                self.show_error(f"Not stored: {error}")
            else:
                self.show_error(f"Not stored: {type(error).__name__}")
            self.query_one("#key-input", Input).focus()

    def action_cancel(self) -> None:
        self.dismiss(None)


class KeyFlow:
    """The dashboard's side of keys: the first start's notice, opening the dialog, and
    what changes once a key is stored (the settings, the engine, the budget line)."""

    def __init__(self, screen: DashboardScreen, notice: NoKeyNotice) -> None:
        self.screen = screen
        self.notice = notice
        self.open_now = False  # the dialog is open

    def key_label(self) -> str:
        """The (possibly rebound) key of the dialog, as the footer writes it."""
        return self.screen.credits_flow.key_for("set_key") or "K"

    def refresh_notice(self) -> None:
        """The notice shows on a first start: no key at all, an empty history, no demo;
        and while the keys cannot be read."""
        settings = self.screen.settings
        problem = key_problem(settings)
        missing = missing_keys(settings)
        first_start = (
            not settings.demo and len(missing) == len(Provider) and self.screen.store.count() == 0
        )
        if problem or first_start:
            self.notice.show_missing(missing, self.key_label(), problem)
        else:
            self.notice.display = False

    def open(
        self,
        provider: Provider | None = None,
        reason: str | None = None,
        then: Callable[[], None] | None = None,
    ) -> None:
        """The dialog; `then` runs once a key was stored (a submission that waited)."""
        screen = self.screen
        if self.open_now:
            return
        if screen.settings.demo:
            screen.notify(
                "The demo needs no key: its simulator takes any. Quit and start "
                "`seedance-tui` to use your own.",
                title="Demo",
                markup=False,
            )
            return
        self.open_now = True
        dialog = KeyDialog(screen.settings, provider, reason)
        screen.app.push_screen(dialog, lambda stored: self._closed(stored, then))

    def _closed(self, stored: StoredKey | None, then: Callable[[], None] | None) -> None:
        self.open_now = False
        if stored is None:
            return
        self.stored(stored)
        if then is not None:
            then()

    def stored(self, stored: StoredKey) -> None:
        """A key was stored: used from now on (a pending task that waited for it too)."""
        screen = self.screen
        settings = screen.settings
        settings.keys_changed()
        engine = screen.engine
        if engine is not None:
            engine.resync()  # tasks held for want of this key are tracked again
            engine.wake()
        provider = stored.provider
        fingerprint = settings.key_fingerprint(provider) if has_key(settings, provider) else None
        env_key = HOSTS[provider].env_key
        shadowed = has_key(settings, provider) and settings.providers[provider].key_source == "env"
        message = f"{provider.value} key stored {stored_where(stored.where)}"
        if shadowed:
            message += f"; {env_key} in the environment is used before it"
        elif fingerprint:
            message += f": key {fingerprint[:6]}… is used from now on"
        screen.notify(message, title="Key stored", markup=False)
        self.refresh_notice()
        screen.credits_flow.show_budget()
        screen.refresh_bindings()
