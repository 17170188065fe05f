"""The dashboard app: settings, the session, keys and theme; the screen does the rest.

`SeedanceApp` holds the session (`seedance_tui/session.py`: the history, then the engine
right after the first frame) and opens on `DashboardScreen` (`dashboard.py`), which owns
the layout, the dashboard's keys and the handlers that change its widgets. The app keeps
what is the whole program's: typed keys in order and the ready signal (`typeahead.py`),
the `[keymap]` and theme from the config (a theme picked later in the command palette is
saved), the command palette's commands, the keys that also apply in the gallery (help,
submit, compare, quit), what reaches the terminal itself (a desktop notification when a task ends,
a screenshot into a folder that exists), and the end: the session closed, the ready file
withdrawn.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual import events, on
from textual.app import App, SystemCommand
from textual.screen import Screen
from textual.widgets import Input, TextArea

from ..config import ConfigError, Settings, save_setting
from ..models import Task
from ..session import Session
from ..store import Store, StoreDamagedError, is_transient
from ..text import one_line
from .dashboard import DashboardScreen
from .frame_view import FrameSource
from .keys import APP_BINDINGS, COMMANDS, effective_keys, is_printable, split_keymap
from .messages import DashboardReady
from .screens import HelpScreen
from .styles import css_paths
from .typeahead import KeyOrder, KeyRoundTrip, is_typed

if TYPE_CHECKING:
    from ..engine import Engine

# Keys of the whole app: the dashboard's screen binds them too (first, in this order,
# as the footer shows them); here they also apply in the gallery.
APP_WIDE_ACTIONS = ("help", "submit", "compare", "quit")
# Set to a path, the dashboard writes its pid there once it takes keys, and removes the
# file when it quits (README, "Working with other tools": driving it from a script).
READY_FILE_VAR = "SEEDANCE_TUI_READY_FILE"


class SeedanceApp(App[int]):
    TITLE = "seedance-tui"
    CSS_PATH = css_paths()
    BINDINGS = [binding for binding in APP_BINDINGS if binding.action in APP_WIDE_ACTIONS]
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
        poll: bool = True,
        store: Store | None = None,
        engine: Engine | None = None,
        session: Session | None = None,
    ) -> None:
        """`clock` drives ages, spinners and the engine; `poll=False` leaves the engine's
        loop stopped (snapshots, benchmarks). `session` (else one made of `store` and
        `engine`, each built when not given) owns the history and the engine."""
        super().__init__()
        self.settings = settings
        self.clock = clock
        self.poll = poll
        self.session = session or Session(settings, store=store, engine=engine, clock=clock)
        # Opening the history here refuses a damaged or foreign file before anything is
        # drawn; the engine comes after the first frame (DashboardScreen.start_engine).
        self.store = self.session.store
        self.engine: Engine | None = None
        self.keymap_overrides, self.unknown_keymap_actions = split_keymap(settings.keymap)
        # Actions whose keys type characters: a text field takes those keys, so the footer
        # hides them there (rebinding `search` to ctrl+f keeps it usable while typing).
        self.letter_actions = {
            binding.action
            for binding in APP_BINDINGS
            if any(is_printable(key) for key in effective_keys(binding, self.keymap_overrides))
        }
        self._ending_on_damage = False  # see _handle_exception
        # Poster frames for the detail pane and the gallery (made in workers, cached).
        self.frame_source = FrameSource(settings, clock=clock)
        self.key_order = KeyOrder(self, super().on_event)  # see typeahead.py
        if settings.demo:
            self.sub_title = "demo: built-in simulator, no key needed"

    @property
    def dashboard(self) -> DashboardScreen:
        """The dashboard's screen (also while a dialog or the gallery is on top)."""
        screen = self.screen_stack[0]
        assert isinstance(screen, DashboardScreen)
        return screen

    def get_default_screen(self) -> DashboardScreen:
        """The dashboard: the first screen, the bottom of the stack."""
        return DashboardScreen()

    async def on_mount(self) -> None:
        self._apply_keymap()
        self._apply_theme()
        # Textual does not wait for the default screen to be mounted: wait here, so the
        # app counts as running (the first frame, Pilot, a ready callback) only with the
        # dashboard whole.
        await self.dashboard.mounted.wait()

    @property
    def cursor_blink_enabled(self) -> bool:
        """Off under test (deterministic screenshots) and when asked for."""
        return not (self.is_headless or os.environ.get("SEEDANCE_TUI_NO_BLINK"))

    # -- typed keys and the ready signal -----------------------------------------------

    def announce_ready(self) -> None:
        """From here on keys are taken (the dashboard gave the list the focus just before:
        that focus change is queued ahead of every key read from now on); keys read
        before are let go now, in order, behind that focus change (typeahead.py). Said
        with a message (for Pilot's message_hook), and in the file
        $SEEDANCE_TUI_READY_FILE names (for a script in a terminal)."""
        ready = DashboardReady()
        self.key_order.ready(ready.time)
        self.post_message(ready)
        path = os.environ.get(READY_FILE_VAR)
        if path:
            try:
                partial_path = Path(path + ".partial")
                partial_path.write_text(f"{os.getpid()}\n")
                os.replace(partial_path, path)
            except OSError as exc:
                self.notify(
                    f"Could not write {READY_FILE_VAR} ({one_line(str(exc), 200)})",
                    severity="warning",
                    markup=False,
                )

    def _withdraw_ready_file(self) -> None:
        """The ready file goes with the dashboard (if it still names this process)."""
        path = os.environ.get(READY_FILE_VAR)
        if not path or not self.is_ready:
            return
        try:
            if Path(path).read_text() == f"{os.getpid()}\n":
                Path(path).unlink()
        except OSError:
            pass  # gone already, or not ours to remove

    @property
    def is_ready(self) -> bool:
        """The dashboard takes keys (DashboardReady was sent)."""
        return self.key_order.ready_at is not None

    async def on_event(self, event: events.Event) -> None:
        """Typed keys and pastes one at a time, in order, each after the last took effect;
        those read before the dashboard was ready wait for it (typeahead.py)."""
        if not is_typed(event):
            await super().on_event(event)
            return
        await self.key_order.on_event(event)

    @on(KeyRoundTrip)
    def _key_round_trip(self, message: KeyRoundTrip) -> None:
        message.stop()
        self.key_order.round_trip_done(message)

    def typing_hides(self, action: str) -> bool:
        """Does a text field with the focus take this action's key as a character?"""
        return isinstance(self.focused, Input | TextArea) and action in self.letter_actions

    # -- config: keymap and theme ------------------------------------------------------

    def _apply_keymap(self) -> None:
        if self.keymap_overrides:
            self.set_keymap(self.keymap_overrides)
        for problem in self.settings.keymap_problems:  # refused at load (keymap.py)
            self.notify(problem, title="Keymap", severity="warning", markup=False, timeout=10)
        if self.unknown_keymap_actions:
            self.notify(
                "Unknown action(s) in [keymap], ignored: "
                + ", ".join(self.unknown_keymap_actions)
                + " (the help screen, ?, lists the action names)",
                title="Keymap",
                severity="warning",
                markup=False,
                timeout=10,
            )

    def _apply_theme(self) -> None:
        """The configured theme, then watch for a new choice (the command palette's)."""
        name = self.settings.theme
        if name:
            if name in self.available_themes:
                self.theme = name
            else:
                self.notify(
                    f"Unknown theme {name!r} in the config, using {self.theme}",
                    title="Theme",
                    severity="warning",
                    markup=False,
                )
        self.theme_changed_signal.subscribe(self, self._theme_changed)

    def _theme_changed(self, theme) -> None:
        """Remember the theme in the config file (the next start uses it)."""
        if theme.name == self.settings.theme:
            return
        try:
            save_setting("theme", theme.name)
        except (ConfigError, OSError) as exc:
            self.notify(
                f"Theme not saved: {one_line(str(exc), 200)}",
                severity="warning",
                markup=False,
            )
            return
        self.settings.theme = theme.name

    # -- the keys of the whole app ----------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Which of the app's keys apply (the dashboard's screen answers for its own)."""
        if self.typing_hides(action):
            return False  # the key types a character here
        if action in ("submit", "compare"):
            return self.dashboard.submit_flow.can_submit()
        return True

    def tell_ended(self, task: Task) -> None:
        """The desktop notification and notify_command of a task that ended (notify.py),
        after the dashboard's toast and bell. Textual 8.2.8 has no public call that writes
        an escape sequence; App.bell and copy_to_clipboard write through the driver as
        this does (none headless or in a browser)."""
        from ..notify import tell

        driver = None if self.is_headless or self.is_web else self._driver
        tell(task, self.settings, write=driver.write if driver else None,
             report=lambda text: self.notify(text, severity="warning", markup=False))  # fmt: skip

    def deliver_screenshot(
        self, filename: str | None = None, path: str | None = None, time_format: str | None = None
    ) -> str | None:
        """Textual's, into a folder that exists (Textual's own fails when ~/Downloads
        does not); in a browser the file is handed to the browser, as Textual does."""
        if not self.is_web:
            from ..paths import screenshots_dir

            folder = Path(path).expanduser() if path else screenshots_dir()
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                self.notify(f"Screenshot not saved: {exc}", severity="error", markup=False)
                return None
            path = str(folder)
        return super().deliver_screenshot(filename, path, time_format)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.keymap_overrides))

    def action_submit(self) -> None:
        """The dashboard's form, from the gallery too (the dialog opens on top of it)."""
        self.dashboard.action_submit()

    def action_compare(self) -> None:
        """The form's job on both providers, from the gallery too."""
        self.dashboard.action_compare()

    async def action_quit(self) -> None:
        self.exit(0)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for command in COMMANDS:
            yield SystemCommand(
                command.title, command.help, partial(self._run_command, command.action)
            )

    async def _run_command(self, action: str) -> None:
        """A command of the palette: the dashboard's action (the app's for its own)."""
        if action in APP_WIDE_ACTIONS:
            await self.run_action(action)
        else:
            await self.run_action(action, self.dashboard)

    # -- the end -----------------------------------------------------------------------

    def _handle_exception(self, error: Exception) -> None:
        """A damaged page of a large history (not read page by page when opened) shows up
        when it is read: end with what is wrong (exit 2, as the commands do), not a
        traceback. Anything else is Textual's to report.

        Textual (8.2.8) has no public hook for an exception raised in a handler or while
        painting, so this private method is overridden; the request for one upstream:
        https://github.com/Textualize/textual/issues/2818 ("Hook to exception
        handling")."""
        if self._ending_on_damage:
            return  # widgets stopped half-way by that exit (e.g. still mounting)
        if isinstance(error, StoreDamagedError):
            self._ending_on_damage = True
            self.exit(return_code=2, message=Text(f"error: {error}"))
            return
        if is_transient(error):
            # A full disk under the history: the action is not done, the dashboard stays
            # (the engine waits for space and says so).
            self.notify(one_line(str(error), 300), severity="error", markup=False, timeout=10)
            return
        super()._handle_exception(error)

    async def on_unmount(self) -> None:
        await self.frame_source.aclose()
        self._withdraw_ready_file()
        await self.session.stop_sending()  # a queued job being sent finishes, no new one
        await self.session.aclose()
