"""Every key binding of the dashboard, in one place.

The help screen, the footer and the command palette all read these tables, so a later
keymap file only has to rewrite them.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding


@dataclass(frozen=True, slots=True)
class Command:
    """An app action offered in the command palette."""

    title: str
    help: str
    action: str  # an App action name, e.g. "submit"


APP_BINDINGS: list[Binding] = [
    Binding("question_mark", "help", "Help", tooltip="Show every key binding"),
    Binding(
        "ctrl+s",
        "submit",
        "Submit",
        # Not a priority binding: the key then reaches the app after the keys typed
        # before it, so a fast typist's last characters are in the job.
        tooltip="Check the job, show its cost and ask to confirm",
    ),
    Binding("n", "new_job", "New", tooltip="Write a new job: to the prompt editor"),
    Binding("slash", "search", "Search", tooltip="Search the prompts of the whole history"),
    Binding(
        "f", "cycle_status", "Filter", tooltip="Filter by status: all, pending, completed, failed"
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
    Binding("r", "rerun", "Re-run", tooltip="Fill the form with the selected task's job"),
    Binding(
        "p", "poll_now", "Poll", tooltip="Check the selected task now, if the rate budget allows"
    ),
    Binding("escape", "focus_list", "Task list", tooltip="Back to the task list"),
    Binding(
        "q",
        "quit",
        "Quit",
        tooltip="Quit (pending tasks keep rendering; the next start polls them)",
    ),
]

TASK_LIST_BINDINGS: list[Binding] = [
    Binding("up,k", "cursor_up", "Up", show=False),
    Binding("down,j", "cursor_down", "Down", show=False),
    Binding("pageup", "page_up", "Page up", show=False),
    Binding("pagedown", "page_down", "Page down", show=False),
    Binding("home,g", "first", "First", show=False),
    Binding("end,G", "last", "Last", show=False),
]

CONFIRM_BINDINGS: list[Binding] = [
    Binding("enter,y", "confirm", "Submit"),
    Binding("escape,n", "cancel", "Cancel"),
]

HELP_BINDINGS: list[Binding] = [
    Binding("escape,question_mark,q", "close", "Close"),
]

COMMANDS: list[Command] = [
    Command("Submit job", "Check the form, show the cost and ask to confirm", "submit"),
    Command("New job", "Move to the prompt editor", "new_job"),
    Command("Search prompts", "Search the history's prompts", "search"),
    Command("Filter by status", "Cycle all / pending / completed / failed", "cycle_status"),
    Command("Filter by provider", "Cycle all / nanophoto / seedance15pro", "cycle_provider"),
    Command("Sort", "Cycle newest / oldest / credits", "cycle_sort"),
    Command("Clear filters", "Show every task, newest first", "clear_filters"),
    Command("Copy video URL", "Copy the selected task's video URL (OSC 52)", "copy_url"),
    Command("Open video", "Open the selected task's video with the system opener", "open_video"),
    Command("Re-run task", "Fill the form with the selected task's job", "rerun"),
    Command("Poll now", "Check the selected task now, if the rate budget allows", "poll_now"),
    Command("Key bindings", "Show every key binding", "help"),
]

# Shown in the help screen: (section, bindings).
HELP_SECTIONS: list[tuple[str, list[Binding]]] = [
    ("Dashboard", APP_BINDINGS),
    ("Task list", TASK_LIST_BINDINGS),
    ("Confirm dialog", CONFIRM_BINDINGS),
    (
        "Everywhere",
        [
            Binding("tab", "focus_next", "Next field"),
            Binding("shift+tab", "focus_previous", "Previous field"),
            Binding("ctrl+p", "command_palette", "Command palette"),
        ],
    ),
]
