"""The key bar: Textual's Footer, rebuilt once per burst of binding changes and only when
what it shows changed.

Textual's Footer recomposes itself (every key a new widget, then a layout pass: 20-30 ms
at 160×48 here) after each `refresh_bindings`. The dashboard's start-up alone asks four
times (focus, the screen stack, the first highlighted task, the engine), and a moving
cursor asks whenever the keys that apply to the selected task change. This one rebuilds
after the refresh as Textual's does, once for all the requests made before it, and not
at all when the keys, their labels and their states are what it already shows.
"""

from __future__ import annotations

from textual.screen import Screen
from textual.widgets import Footer


class KeyFooter(Footer):
    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._rebuild_queued = False
        self._recomposing = False
        self._shown: tuple | None = None

    @property
    def is_current(self) -> bool:
        """No rebuild waits or runs, and the keys shown are the ones that apply now."""
        if self._rebuild_queued or self._recomposing:
            return False
        shown = {(key.action, key.has_class("-disabled")) for key in self.query("FooterKey")}
        applying = {
            (binding.action, not enabled)
            for _node, binding, enabled, _tooltip in self.screen.active_bindings.values()
            if binding.show
        }
        return shown == applying

    def bindings_changed(self, screen: Screen) -> None:
        self._bindings_ready = True  # Footer.compose shows nothing until this is set
        if not screen.app.app_focus:
            return
        if self.is_attached and screen is self.screen and not self._rebuild_queued:
            self._rebuild_queued = True
            self.call_after_refresh(self._rebuild)

    async def _rebuild(self) -> None:
        self._rebuild_queued = False
        # What applies can change while the keys are rebuilt (compose reads it again):
        # go round until what is shown is what applies.
        while self.is_attached:
            shown = self._keys_shown()
            if shown == self._shown:
                return
            self._shown = shown
            self._recomposing = True
            try:
                await self.recompose()
            finally:
                self._recomposing = False

    def _keys_shown(self) -> tuple:
        """What `compose` would show: each key, its label, its action and whether it is on."""
        app = self.app
        return tuple(
            (binding.key, app.get_key_display(binding), binding.description, binding.action,
             binding.group, enabled, tooltip)
            for _node, binding, enabled, tooltip in self.screen.active_bindings.values()
            if binding.show
        )  # fmt: skip
