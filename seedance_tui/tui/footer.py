"""The key bar: Textual's Footer, rebuilt once per burst of binding changes and only when
what it shows changed; empty under a dialog.

Textual's Footer recomposes itself (every key a new widget, then a layout pass: 20-30 ms
at 160×48 here) after each `refresh_bindings`. The dashboard's start-up alone asks four
times (focus, the screen stack, the first highlighted task, the engine), and a moving
cursor asks whenever the keys that apply to the selected task change. Footer queues a
`recompose` after the refresh for each request; here the first of them rebuilds, once
for all the requests made before it, and not at all when the keys, their labels and
their states are what it already shows; the others find nothing to do.

A screen's footer stays painted under a dialog (a modal screen drawn over it), whose
own keys are the ones that apply: it then shows none.

The keys fit the width: when they do not (80 columns, a task with every action on), the
greyed ones go first, then those of DROP_ORDER; help (which lists every key), quit and
esc always stay.
"""

from __future__ import annotations

from rich.cells import cell_len
from textual import events
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer

# Which keys leave a footer too narrow for them, first to last (the help screen lists
# them all); the others stay.
DROP_ORDER = ("gallery", "new_job", "rerun", "cycle_status", "search", "download",
              "poll_now", "open_video", "copy_url", "submit")  # fmt: skip


class KeyFooter(Footer):
    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._requests = 0  # rebuilds Footer has queued and that have not run yet
        self._recomposing = False
        self._shown: tuple | None = None

    @property
    def is_current(self) -> bool:
        """No rebuild waits or runs, and the keys shown are the ones that apply now."""
        if self._requests or self._recomposing:
            return False
        shown = {(key.action, key.has_class("-disabled")) for key in self.query("FooterKey")}
        applying = {(binding.action, not enabled) for binding, enabled, _tip in self._applying()}
        return shown == applying

    def _covered(self) -> bool:
        """Another screen (a dialog) is drawn over this footer's screen."""
        return self.screen is not self.app.screen

    def _applying(self) -> list:
        """The shown bindings that apply to this footer's screen and fit its width:
        (binding, enabled, tip), one per action."""
        if self._covered():
            return []
        shown: dict[str, tuple] = {}
        for _node, binding, enabled, tooltip in self.screen.active_bindings.values():
            if binding.show and binding.action not in shown:
                shown[binding.action] = (binding, enabled, tooltip)
        return self._fitted(list(shown.values()))

    def _fitted(self, keys: list[tuple]) -> list[tuple]:
        app = self.app
        width = self.size.width or app.size.width

        def cells(item: tuple) -> int:  # "key label " as the compact footer draws it
            binding = item[0]
            return cell_len(app.get_key_display(binding)) + cell_len(binding.description) + 2

        used = sum(map(cells, keys))
        droppable = [item for item in reversed(keys) if not item[1]]  # greyed, last first
        droppable += sorted((item for item in keys if item[1] and item[0].action in DROP_ORDER),
                            key=lambda item: DROP_ORDER.index(item[0].action))  # fmt: skip
        dropped: set[str] = set()
        for item in droppable:
            if used <= width:
                break
            if item[0].action not in dropped:
                dropped.add(item[0].action)
                used -= cells(item)
        return [item for item in keys if item[0].action not in dropped]

    def on_resize(self, event: events.Resize) -> None:
        # Another width may fit other keys.
        if self._shown is not None and self._keys_shown() != self._shown:
            self._requests += 1
            self.call_later(self.recompose)

    def bindings_changed(self, screen: Screen) -> None:
        # Footer queues a recompose when these hold (and marks its bindings ready).
        if screen.app.app_focus and self.is_attached and screen is self.screen:
            self._requests += 1
        super().bindings_changed(screen)

    def compose(self) -> ComposeResult:
        if self._covered():
            return
        widgets = list(super().compose())  # nothing until the bindings are ready
        if not widgets:
            return
        fitting = {binding.action for binding, _enabled, _tip in self._applying()}
        kept = [w for w in widgets if getattr(w, "action", None) in fitting]  # FooterKeys
        self.styles.grid_size_columns = max(1, len(kept))
        yield from kept

    async def recompose(self) -> None:
        """Footer's queued rebuild: go round until what is shown is what applies (it can
        change while the keys are rebuilt: compose reads it again)."""
        self._requests = max(0, self._requests - 1)
        if self._recomposing:
            return  # the rebuild under way goes round again if need be
        while self.is_attached:
            shown = self._keys_shown()
            if shown == self._shown:
                return
            self._shown = shown
            self._recomposing = True
            try:
                await super().recompose()
            finally:
                self._recomposing = False

    def _keys_shown(self) -> tuple:
        """What `compose` would show: each key, its label, its action and whether it is on."""
        app = self.app
        return tuple(
            (binding.key, app.get_key_display(binding), binding.description, binding.action,
             binding.group, enabled, tooltip)
            for binding, enabled, tooltip in self._applying()
        )  # fmt: skip
