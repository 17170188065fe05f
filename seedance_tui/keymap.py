"""The dashboard's default keys as plain data, and the checks a `[keymap]` passes when
the settings are loaded (no Textual here: a headless command loads settings too).

`LAYERS` holds, per binding table of the dashboard (`tui/keys.py`, whose tables a test
holds equal to these), each action's keys as Textual writes them. A context is the
stack of layers whose bindings answer at once, the first one winning a key: the task
list's keys over the app's, a dialog's over the app's.

A `[keymap]` entry is refused (with a message; the defaults stay for its action) when it
binds a key that another action answers to in the same context — one of the two would
never run — or when it leaves a way out without a key that works: `quit` from the task
list, `focus_list` (out of the prompt editor), `close` (help, gallery), `cancel` (the
confirm dialog).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping

LAYERS: dict[str, dict[str, str]] = {
    "app": {
        "help": "question_mark", "submit": "ctrl+s", "new_job": "n", "search": "slash",
        "cycle_status": "f", "cycle_provider": "v", "cycle_sort": "s", "copy_url": "c",
        "open_video": "o", "download": "d", "rerun": "r", "poll_now": "p",
        "toggle_queue": "b", "gallery": "g", "focus_list": "escape", "quit": "q",
        "compare": "ctrl+b", "set_key": "K",
    },
    "task_list": {
        "cursor_up": "up,k", "cursor_down": "down,j", "page_up": "pageup",
        "page_down": "pagedown", "first": "home", "last": "end,G",
    },
    "gallery": {
        "open_task": "enter", "close": "escape,g", "search": "slash", "cycle_status": "f",
        "cycle_provider": "v", "cycle_sort": "s", "cursor_left": "left,h",
        "cursor_right": "right,l", "cursor_up": "up,k", "cursor_down": "down,j",
        "page_up": "pageup", "page_down": "pagedown", "first": "home", "last": "end,G",
    },
    "confirm": {"confirm": "enter,y", "cancel": "escape,n"},
    "help": {"close": "escape,question_mark,q"},
}  # fmt: skip
# Where each binding answers, the first layer winning a key both have.
CONTEXTS: dict[str, tuple[str, ...]] = {
    "the task list": ("task_list", "app"),
    "the gallery": ("gallery", "app"),
    "the confirm dialog": ("confirm", "app"),
    "the help screen": ("help", "app"),
}
# The ways out: each with the contexts its key must work in, and what it does.
WAYS_OUT: dict[str, tuple[tuple[str, ...], str]] = {
    "quit": (("the task list",), "quit"),
    "focus_list": (("the task list",), "leave the prompt editor (a key that types nothing)"),
    "close": (("the gallery", "the help screen"), "close it"),
    "cancel": (("the confirm dialog",), "cancel it"),
}
ACTIONS: frozenset[str] = frozenset(name for layer in LAYERS.values() for name in layer)
# Textual's names for characters its key names spell out (`textual.keys`).
_REPLACED = {
    "solidus": "slash", "reverse_solidus": "backslash", "commercial_at": "at",
    "hyphen_minus": "minus", "plus_sign": "plus", "low_line": "underscore",
}  # fmt: skip


# Keys that type nothing (so the prompt editor does not take them).
_NAMED = frozenset(
    [
        "escape",
        "enter",
        "tab",
        "up",
        "down",
        "left",
        "right",
        "home",
        "end",
        "pageup",
        "pagedown",
        "delete",
        "backspace",
        "insert",
    ]
)


def normalize(key: str) -> str:
    """A key as Textual names it: "/" is "slash", "?" "question_mark"."""
    key = key.strip()
    if len(key) == 1 and not key.isalnum():
        try:
            name = unicodedata.name(key).lower().replace("-", "_").replace(" ", "_")
        except ValueError:
            return key
        return _REPLACED.get(name, name)
    return key


def keys_of(text: str) -> list[str]:
    """The keys of a binding's text ("ctrl+f,/" → ["ctrl+f", "slash"])."""
    return [normalize(key) for key in text.split(",") if key.strip()]


def _bound(context: str, keymap: Mapping[str, str]) -> dict[str, list[str]]:
    """In a context, each key → the actions it reaches, the winning one first."""
    reached: dict[str, list[str]] = {}
    for layer in CONTEXTS[context]:
        for action, default in LAYERS[layer].items():
            for key in keys_of(keymap.get(action, default)):
                actions = reached.setdefault(key, [])
                if action not in actions:
                    actions.append(action)
    return reached


def _printable(key: str) -> bool:
    """Does the key type a character in a text field (so a text field takes it)?"""
    if "+" in key:
        return key.startswith("shift+") and len(key) == 7
    return key not in _NAMED and not (key.startswith("f") and key[1:].isdigit())


def problems_of(keymap: Mapping[str, str]) -> dict[str, str]:
    """The entries of `keymap` (action → keys) that are refused, each with why. Unknown
    action names are not judged here (the dashboard names them)."""
    known = {action: keys for action, keys in keymap.items() if action in ACTIONS}
    refused: dict[str, str] = {}
    for context in CONTEXTS:
        defaults = _bound(context, {})
        for key, actions in _bound(context, known).items():
            if len(actions) < 2:
                continue
            for action in actions:
                if action not in known or action in refused:
                    continue
                # Only a clash the defaults do not have (the gallery's escape closes it
                # over the app's escape, by design).
                new = [a for a in actions if a != action and not
                       (action in defaults.get(key, ()) and a in defaults.get(key, ()))]  # fmt: skip
                if new:
                    refused[action] = f"{key} is {', '.join(new)}'s key too in {context}"
    for action, (contexts, what) in WAYS_OUT.items():
        if action not in known or action in refused:
            continue
        for context in contexts:
            reached = _bound(context, known)
            working = [key for key in keys_of(known[action]) if reached.get(key, [""])[0] == action]
            if action == "focus_list":
                working = [key for key in working if not _printable(key)]  # typed, else
            if not working:
                refused[action] = f"no key would {what} in {context}"
                break
    return refused


def checked(keymap: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """The entries applied and the messages of those refused ("keymap.quit = "j"
    refused: …; the default q stays")."""
    refused = problems_of(keymap)
    kept = {action: keys for action, keys in keymap.items() if action not in refused}
    messages = []
    for action, why in refused.items():
        default = next(
            (layer[action] for layer in LAYERS.values() if action in layer), ""
        )  # fmt: skip
        messages.append(
            f'keymap.{action} = "{keymap[action]}" refused: {why}; the default {default} stays'
        )
    return kept, messages


__all__ = ["ACTIONS", "CONTEXTS", "LAYERS", "WAYS_OUT", "checked", "keys_of", "normalize"]
