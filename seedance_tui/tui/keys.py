"""Every key binding of the dashboard, in one place.

The help screen, the footer and the command palette all read these tables. Every binding
has an `id` equal to its action name: the config file's `[keymap]` rebinds by that name
(`search = "ctrl+f"`), through Textual's keymap.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from textual.binding import Binding
from textual.keys import key_to_character


@dataclass(frozen=True, slots=True)
class Command:
    """An app action offered in the command palette."""

    title: str
    help: str
    action: str  # an App action name, e.g. "submit"


def identified(bindings: list[Binding]) -> list[Binding]:
    """The bindings with `id` set to their action name (what a keymap names)."""
    return [replace(binding, id=binding.action) for binding in bindings]


APP_BINDINGS: list[Binding] = identified(
    [
        Binding("question_mark", "help", "Help", tooltip="Show every key binding"),
        Binding(
            "ctrl+s",
            "submit",
            "Submit",
            # Not a priority binding: the key then reaches the app after the keys typed
            # before it, so a fast typist's last characters are in the job.
            tooltip="Check the job, show its cost and ask to confirm",
        ),
        Binding(
            "ctrl+b",
            "compare",
            "Compare",
            show=False,
            tooltip="The job on both providers, prices side by side",
        ),
        Binding("n", "new_job", "New", tooltip="Write a new job: to the prompt editor"),
        Binding("slash", "search", "Search", tooltip="Search the prompts of the whole history"),
        Binding(
            "f",
            "cycle_status",
            "Filter",
            tooltip="Filter by status: all, pending, completed, failed",
        ),
        Binding(
            "v",
            "cycle_provider",
            "Provider filter",
            show=False,
            tooltip="Filter by provider: all, nanophoto, seedance15pro",
        ),
        Binding("s", "cycle_sort", "Sort", show=False, tooltip="Sort by newest, oldest or credits"),
        Binding(
            "c",
            "copy_url",
            "Copy",
            tooltip="Copy the video URL to the clipboard (OSC 52, works over SSH)",
        ),
        Binding(
            "o",
            "open_video",
            "Open",
            tooltip="Open the video with the system opener (over SSH: copy its URL)",
        ),
        Binding(
            "d",
            "download",
            "Save",
            tooltip="Download the selected video into the library (its link expires)",
        ),
        Binding("r", "rerun", "Re-run", tooltip="Fill the form with the selected task's job"),
        Binding(
            "p",
            "poll_now",
            "Poll",
            tooltip="Check the selected task now, if the rate budget allows",
        ),
        Binding(
            "b",
            "toggle_queue",
            "Queue",
            show=False,
            tooltip="Pause or resume the batch queue (jobs queued by `submit --batch`)",
        ),
        Binding("g", "gallery", "Gallery", tooltip="A grid of the history's frames"),
        Binding(
            "K",
            "set_key",
            "API key",
            show=False,
            tooltip="Paste a provider's API key (stored as `seedance-tui key set` stores it)",
        ),
        Binding("escape", "focus_list", "Task list", tooltip="Back to the task list"),
        Binding(
            "q",
            "quit",
            "Quit",
            tooltip="Quit (pending tasks keep rendering; the next start polls them)",
        ),
    ]
)

TASK_LIST_BINDINGS: list[Binding] = identified(
    [
        Binding("up,k", "cursor_up", "Up", show=False),
        Binding("down,j", "cursor_down", "Down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home", "first", "First", show=False),
        Binding("end,G", "last", "Last", show=False),
    ]
)

GALLERY_BINDINGS: list[Binding] = identified(
    [
        Binding("enter", "open_task", "Open", tooltip="Back to the list, on this task"),
        Binding("escape,g", "close", "Back", tooltip="Back to the list, where it was"),
        Binding("slash", "search", "Search", tooltip="Search the prompts (the list's search)"),
        Binding("f", "cycle_status", "Filter", tooltip="Filter by status (the list's filter)"),
        Binding(
            "v",
            "cycle_provider",
            "Provider filter",
            show=False,
            tooltip="Filter by provider (the list's filter)",
        ),  # fmt: skip
        Binding("s", "cycle_sort", "Sort", show=False, tooltip="Sort (the list's sort)"),
        Binding("left,h", "cursor_left", "Left", show=False),
        Binding("right,l", "cursor_right", "Right", show=False),
        Binding("up,k", "cursor_up", "Up", show=False),
        Binding("down,j", "cursor_down", "Down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home", "first", "First", show=False),
        Binding("end,G", "last", "Last", show=False),
    ]
)

CONFIRM_BINDINGS: list[Binding] = identified(
    [
        Binding("enter,y", "confirm", "Submit"),
        Binding("escape,n", "cancel", "Cancel"),
    ]
)

HELP_BINDINGS: list[Binding] = identified(
    [
        Binding("escape,question_mark,q", "close", "Close"),
    ]
)

# The confirm dialog when the same job was sent recently: enter cancels (the focus is on
# Cancel) and no letter submits; tab to the submit button, then enter, sends it again.
DUPLICATE_HELP: list[Binding] = [
    Binding("tab,enter", "submit_again", "Send a recent job again (tab to its button, enter)"),
]

COMMANDS: list[Command] = [
    Command("Submit job", "Check the form, show the cost and ask to confirm", "submit"),
    Command(
        "Compare on both providers",
        "The form's job on nanophoto and seedance15pro, fields mapped, prices side by side",
        "compare",
    ),
    Command("New job", "Move to the prompt editor", "new_job"),
    Command("Search prompts", "Search the history's prompts", "search"),
    Command("Filter by status", "Cycle all / pending / completed / failed", "cycle_status"),
    Command("Filter by provider", "Cycle all / nanophoto / seedance15pro", "cycle_provider"),
    Command("Sort", "Cycle newest / oldest / credits", "cycle_sort"),
    Command("Clear filters", "Show every task, newest first", "clear_filters"),
    Command("Copy video URL", "Copy the selected task's video URL (OSC 52)", "copy_url"),
    Command("Open video", "Open the selected task's video with the system opener", "open_video"),
    Command("Save video", "Download the selected task's video into the library", "download"),
    Command(
        "Pause or resume the queue", "Stop or restart submitting queued batch jobs", "toggle_queue"
    ),
    Command("Re-run task", "Fill the form with the selected task's job", "rerun"),
    Command("Poll now", "Check the selected task now, if the rate budget allows", "poll_now"),
    Command("Gallery", "A grid of the history's frames", "gallery"),
    Command(
        "Set an API key",
        "Paste a provider's key: stored in the OS keyring or a 0600 file, used at once",
        "set_key",
    ),
    Command("Key bindings", "Show every key binding", "help"),
]

# Shown in the help screen: (section, bindings).
HELP_SECTIONS: list[tuple[str, list[Binding]]] = [
    ("Dashboard", APP_BINDINGS),
    ("Task list", TASK_LIST_BINDINGS),
    ("Gallery", GALLERY_BINDINGS),
    ("Confirm dialog", CONFIRM_BINDINGS + DUPLICATE_HELP),
    (
        "Everywhere",
        [
            Binding("tab", "focus_next", "Next field"),
            Binding("shift+tab", "focus_previous", "Previous field"),
            Binding("ctrl+p", "command_palette", "Command palette"),
        ],
    ),
]

# Every name a `[keymap]` may rebind.
KEYMAP_ACTIONS: frozenset[str] = frozenset(
    binding.id
    for bindings in (
        APP_BINDINGS,
        TASK_LIST_BINDINGS,
        GALLERY_BINDINGS,
        CONFIRM_BINDINGS,
        HELP_BINDINGS,
    )
    for binding in bindings
    if binding.id
)


def split_keymap(keymap: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """The overrides that name a known action, and the unknown names (sorted)."""
    known = {name: keys for name, keys in keymap.items() if name in KEYMAP_ACTIONS}
    unknown = sorted(name for name in keymap if name not in KEYMAP_ACTIONS)
    return known, unknown


def effective_keys(binding: Binding, keymap: Mapping[str, str]) -> list[str]:
    """The keys a binding answers to once the keymap is applied."""
    keys = keymap.get(binding.id or "", binding.key)
    return [key.strip() for key in keys.split(",") if key.strip()]


def is_printable(key: str) -> bool:
    """Does the key type a character in a text field ("x", "slash"; not "ctrl+f")?"""
    if len(key) == 1 or key == "slash":  # Textual has no character for "slash"
        return True
    character = key_to_character(key)
    return character is not None and character.isprintable()
