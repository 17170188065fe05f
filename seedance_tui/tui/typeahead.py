"""Keys typed ahead: each one lands where the keys before it have put the focus.

Textual hands a key to the focused widget's queue; the key then bubbles up widget by
widget to the app, where the bindings run. Keys that arrive faster than that round trip
(a fast typist, tmux `send-keys`, a paste without bracketed paste, keys typed while the
dashboard is busy) are all handed to the widget that had the focus when they arrived.
So `n` (new job) followed at once by a prompt sent the prompt's letters to the task
list, where they are shortcuts: `r` re-ran the newest task, `d` saved a video, and the
`ctrl+s`, `enter` typed after them submitted that re-run. And an `enter` typed right
after `ctrl+s` went into the prompt as a new line instead of confirming the dialog.

`KeyOrder` lets one key (or paste) at a time go: the next one waits until the last has
been dispatched all the way up, together with whatever it asked the app to do next (a
focus change, a dialog). A `KeyRoundTrip` message is sent behind each key to the widget
that got it; it bubbles the same way, so when it reaches the app the key has been
handled. A key whose widget went away on the way (a dialog closing) never brings its
message back: the app's once-a-second tick then lets the next key go.

Keys read before the dashboard was ready (typed while it started, or sent by a script
before the first frame) are kept, in order, and let go once it is: the first of them
after the task list took the focus (that focus change is queued ahead of them), each
after the last, as any typed keys. So `n` and a prompt typed while the dashboard starts
write that prompt; none of them is lost, none lands on a widget that is not there yet.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from textual import events
from textual.message import Message

if TYPE_CHECKING:
    from textual.app import App
    from textual.dom import DOMNode

# A key whose round trip takes longer than this while its widget is still there (an
# action that waits on something) no longer holds the keys after it.
ROUND_TRIP_LIMIT = 5.0


class KeyRoundTrip(Message, bubble=True):
    """Follows a key from the widget it was given to up to the app."""

    def __init__(self, serial: int) -> None:
        super().__init__()
        self.serial = serial


def is_typed(event: events.Event) -> bool:
    """A key or paste as it arrives from the terminal (not one a widget passed on)."""
    return isinstance(event, events.Key | events.Paste) and not event.is_forwarded


class KeyOrder:
    """The app's typed input, one event at a time (see the module's docstring)."""

    def __init__(self, app: App, dispatch: Callable[[events.Event], Awaitable[None]]) -> None:
        self.app = app
        self._dispatch = dispatch  # Textual's own handling of the event (App.on_event)
        self.ready_at: float | None = None  # Message.time of the ready message
        self._early: deque[events.Event] = deque()  # read before ready was announced
        self._held: deque[events.Event] = deque()
        self._released: events.Event | None = None  # a held event re-posted to the app
        self._busy = False
        self._serial = 0
        self._waiting: tuple[int, DOMNode, float] | None = None  # serial, target, since

    def ready(self, at: float) -> None:
        """The dashboard takes keys from now on: those kept before go first, in order."""
        self.ready_at = at
        if self._early:
            self._held.extend(self._early)
            self._early.clear()
            self._release_later()

    def _release_later(self) -> None:
        """Let the held keys go behind what is queued on the app now (the list's focus
        change at start-up), not before it."""
        if not self._busy:
            self._busy = True
            self.app.call_later(self._next)

    async def on_event(self, event: events.Event) -> None:
        """Take a typed event: dispatch it now, or hold it until the ones before it
        took effect (and, before ready, until the dashboard is ready)."""
        if event is self._released:
            self._released = None
        elif self.ready_at is None:
            self._early.append(event)
            return
        elif self._busy:
            self._held.append(event)
            return
        elif event.time < self.ready_at:
            # Read before ready, handled only now: it waits for the start-up's focus
            # change, queued behind it.
            self._held.append(event)
            self._release_later()
            return
        else:
            self._busy = True
        target = self.app.focused or self.app.screen
        await self._dispatch(event)
        self._serial += 1
        if target.post_message(KeyRoundTrip(self._serial)):
            self._waiting = (self._serial, target, time.monotonic())
        else:
            self._next()

    def round_trip_done(self, message: KeyRoundTrip) -> None:
        if self._waiting is not None and self._waiting[0] == message.serial:
            self._next()

    def check_stuck(self) -> None:
        """A key whose widget went away (or that takes too long) lets the next one go."""
        if self._waiting is None:
            return
        _, target, since = self._waiting
        if not target.is_attached or time.monotonic() - since > ROUND_TRIP_LIMIT:
            self._next()

    def _next(self) -> None:
        self._waiting = None
        if self._held:
            # Through the app's queue, behind what the last key asked for (a focus change
            # is a callback queued there).
            self._released = self._held.popleft()
            self.app.post_message(self._released)
        else:
            self._busy = False

    @property
    def pending(self) -> int:
        """Typed events not handled yet: the one on its way and those waiting behind it."""
        return len(self._early) + len(self._held) + (1 if self._busy else 0)
