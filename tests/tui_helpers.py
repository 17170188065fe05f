"""What the dashboard's test files share: a fixed clock and waiting helpers.

Tests wait for a state, never for a duration: `wait_until` polls a condition (between
two looks the app runs) and fails, naming the condition, when its deadline passes.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from textual import events
from textual.app import App

from seedance_tui.config import Settings, load_settings
from seedance_tui.demo import seed_history
from seedance_tui.store import Store
from seedance_tui.tui.footer import KeyFooter
from seedance_tui.tui.task_list import TaskList

FIXED_NOW = 1_800_000_000.0  # 2027-01-15 08:00 UTC
# The seeded histories' video links: a loopback port nothing listens on, so a frame the
# dashboard tries to read from a link fails the same way on every machine (a demo
# running on its own port would otherwise serve it).
CLOSED_MEDIA = "http://127.0.0.1:1"
# Keys for settings whose jobs reach the confirm dialog: without a key for its provider,
# ctrl+s opens the key dialog instead. Not secrets; nothing is sent with them unless a
# test points the providers at the simulator.
KEYED_ENV = {"NANOPHOTO_API_KEY": "sk-test-nano-0000", "SEEDANCE15PRO_API_KEY": "sk-test-seed-0000"}


def seeded_settings_in(folder: Path, env: Mapping[str, str]) -> Settings:
    """Settings over a history of the 48 deterministic demo tasks (refunded 113, 14 days
    of spending) in `folder`; `env` gives the keys (KEYED_ENV, or {} for none)."""
    db = folder / "seeded.db"
    store = Store.open(db)
    seed_history(store, FIXED_NOW, media_base=CLOSED_MEDIA)
    store.close()
    return load_settings(db=db, env=dict(env))


# Long enough for a busy 2-core machine; only a broken condition ever waits this long.
DEADLINE = 30.0


@dataclass(frozen=True)
class Note:
    """A notification as the app posted it."""

    message: str
    title: str
    severity: str


def noted(app: App) -> App:
    """The app, keeping every notification it posts: a toast leaves the screen (and
    `app._notifications`) 5 s after it is raised, and on a loaded machine that can be
    before a test first looks."""
    seen: list[Note] = []
    notify = app.notify

    def keep(message, *args, **kwargs):
        seen.append(
            Note(
                str(message),
                str(kwargs.get("title", "")),
                str(kwargs.get("severity", "information")),
            )
        )
        return notify(message, *args, **kwargs)

    app.notify = keep  # type: ignore[method-assign]
    app.seen_notifications = seen  # type: ignore[attr-defined]
    return app


def notes(app: App) -> list[Note]:
    """Every notification a `noted` app posted."""
    return list(app.seen_notifications)  # type: ignore[attr-defined]


def fixed_clock() -> float:
    return FIXED_NOW


def _describe(predicate: Callable[[], object]) -> str:
    try:
        return inspect.getsource(predicate).strip()
    except (OSError, TypeError):
        return repr(predicate)


async def wait_until(
    pilot, predicate: Callable[[], object], what: str | None = None, timeout: float = DEADLINE
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout:g} s: {what or _describe(predicate)}")
        await pilot.pause(0.05)  # the interval between two looks, not a wait for a state


async def footer_keys(pilot) -> dict[str, str]:
    """Action → the key the footer shows for it, once the footer shows what applies now."""
    footer = pilot.app.query_one(KeyFooter)
    await wait_until(pilot, lambda: footer.is_current, "the footer shows the current keys")
    return {key.action: key.key_display for key in pilot.app.query("FooterKey")}


def type_at_once(app: App, *keys: str) -> None:
    """Queue key presses as a fast typist, a paste or `tmux send-keys` does: all before
    the first is handled (Pilot's `press` waits for each key to be handled)."""
    named = {" ": "space", "\n": "enter"}
    for key in keys:
        character = key if len(key) == 1 else None
        app.post_message(events.Key(named.get(key, key), character))


def row_text(tasks: TaskList, index: int) -> str:
    """The painted text of a row (line 0 is the header)."""
    return tasks.render_line(index - round(tasks.scroll_y) + 1).text
