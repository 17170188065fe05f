"""Telling a user who is not looking that a task ended: a desktop notification through
the terminal, and the user's `notify_command`.

The terminal's notification is an escape sequence the terminal turns into a desktop
notification, also over SSH: OSC 9 (iTerm2, kitty, Ghostty) or OSC 777 (WezTerm,
foot, Contour; urxvt with its notify extension). Inside tmux it is wrapped
in tmux's passthrough sequence (tmux 3.3+ forwards it with `set -g allow-passthrough
on`). `desktop_notifications = "auto"` sends it only where the terminal is known, from
the variables terminals set; "on" sends it to any terminal (OSC 777 when unknown), "off"
never. Nothing is written where no terminal is.

`notify_command` is split like a shell line (shlex) and run without a shell, with the
task's public JSON (as `--json` prints it) on standard input; the loop never waits for
it, and a command that cannot run or fails is reported. It runs without the providers'
key variables in its environment.

No Textual here: the CLI writes to its terminal, the dashboard hands its driver's
write (see `Notifier`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
from collections.abc import Callable, Mapping

from .config import NOTIFY_MODES, Settings
from .events import EngineEvent, TaskChanged
from .hosts import HOSTS
from .models import Task, TaskStatus
from .text import one_line, to_json

log = logging.getLogger(__name__)
# Commands still running that no Notifier waits for (`tell`'s): a reference each, so
# that none is collected while it runs.
_DETACHED: set[asyncio.Task[None]] = set()

# Seconds a notify_command may run before it is stopped (and reported).
COMMAND_DEADLINE = 60.0
BODY_LIMIT = 200  # characters of a notification's body

# Every control character (C0, DEL, C1) and the bidirectional controls: none may reach
# the terminal inside an escape sequence (an ESC or BEL would end it early).
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def terminal_protocol(env: Mapping[str, str]) -> str | None:
    """ "9" or "777": the notification escape the terminal is known to show, from the
    variables it sets (also inside tmux, which keeps them); None when unknown."""
    program = env.get("TERM_PROGRAM", "")
    term = env.get("TERM", "")
    if program == "iTerm.app" or env.get("LC_TERMINAL") == "iTerm2" or env.get("ITERM_SESSION_ID"):
        return "9"
    if program == "ghostty" or env.get("GHOSTTY_RESOURCES_DIR") or term == "xterm-ghostty":
        return "9"
    if env.get("KITTY_WINDOW_ID") or term == "xterm-kitty":
        return "9"
    if program == "WezTerm" or env.get("WEZTERM_PANE"):
        return "777"
    if term.startswith("foot") or program == "contour" or env.get("CONTOUR_PROFILE"):
        return "777"
    return None


def clean(text: str, limit: int) -> str:
    """`text` on one line, without a control character, at most `limit` characters."""
    flat = _CONTROLS.sub(" ", text.replace("\n", " ")).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def escape_for(title: str, body: str, protocol: str, *, tmux: bool) -> str:
    """The escape sequence that shows a notification (wrapped for tmux's passthrough)."""
    title, body = clean(title, 80), clean(body, BODY_LIMIT)
    if protocol == "9":
        sequence = f"\x1b]9;{title}: {body}\x1b\\"
    else:
        sequence = f"\x1b]777;notify;{title.replace(';', ',')};{body}\x1b\\"
    if tmux:
        # DCS tmux; <the sequence, each ESC doubled> ST
        sequence = "\x1bPtmux;" + sequence.replace("\x1b", "\x1b\x1b") + "\x1b\\"
    return sequence


def message_for(task: Task) -> tuple[str, str]:
    """A notification's title and body for a task that ended."""
    excerpt = one_line(task.prompt, 60)
    if task.status is TaskStatus.COMPLETED:
        return "Video ready", f"{task.short_id} completed: {excerpt}"
    reason = one_line(task.error or "", 80)
    return (
        f"Job {task.status.value}",
        f"{task.short_id} {task.status.value}" + (f": {reason}" if reason else f": {excerpt}"),
    )


def ended(event: EngineEvent) -> Task | None:
    """The task this event says ended in this process (it was pending before); else None."""
    if (
        isinstance(event, TaskChanged)
        and event.task.status.is_terminal
        and event.previous is not None
        and event.previous.is_pending
    ):
        return event.task
    return None


def command_env(env: Mapping[str, str]) -> dict[str, str]:
    """The environment a notify_command runs in: the process's, less the providers' keys."""
    secret = {host.env_key for host in HOSTS.values()}
    return {name: value for name, value in env.items() if name not in secret}


class Notifier:
    """Tells of each task that ended: the terminal's notification and `notify_command`.

    `write`: writes text to the user's terminal (None: no terminal); `report`: says that
    the command failed (a warning the face shows). `on_event` is an engine listener;
    `task_ended` is the call for a face that already knows a task ended."""

    def __init__(
        self,
        mode: str,
        command: tuple[str, ...] | None,
        *,
        write: Callable[[str], None] | None,
        report: Callable[[str], None],
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.env = dict(os.environ if env is None else env)
        protocol = terminal_protocol(self.env)
        if mode == "on":
            protocol = protocol or "777"
        elif mode == "off":
            protocol = None
        self.protocol = protocol if write is not None else None
        self.tmux = bool(self.env.get("TMUX"))
        self.command = command
        self.write = write
        self.report = report
        self._told: set[str] = set()  # tasks already told of (once each)
        self._running: set[asyncio.Task[None]] = set()

    def on_event(self, event: EngineEvent) -> None:
        task = ended(event)
        if task is not None:
            self.task_ended(task)

    def task_ended(self, task: Task) -> None:
        """Tell of `task` (once per task): returns at once; the command runs on its own."""
        if task.id in self._told:
            return
        self._told.add(task.id)
        if self.protocol is not None and self.write is not None:
            title, body = message_for(task)
            try:
                self.write(escape_for(title, body, self.protocol, tmux=self.tmux))
            except OSError as exc:  # the terminal went away: nothing to tell it
                log.debug("notification not written: %s", exc)
        if self.command:
            run = asyncio.get_running_loop().create_task(self._run(task))
            for running in (self._running, _DETACHED):
                running.add(run)
                run.add_done_callback(running.discard)

    async def _run(self, task: Task) -> None:
        assert self.command
        name = self.command[0]
        try:
            process = await asyncio.create_subprocess_exec(
                *self.command,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                env=command_env(self.env),
                start_new_session=True,  # a Ctrl+C meant for us is not sent to it
            )
        except OSError as exc:
            self.report(f"notify_command {name!r} could not run: {exc.strerror or exc}")
            return
        try:
            _, errors = await asyncio.wait_for(
                process.communicate(to_json(task.to_public()).encode()), COMMAND_DEADLINE
            )
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            self.report(
                f"notify_command {name!r} stopped: still running after {COMMAND_DEADLINE:g} s"
            )
            return
        except asyncio.CancelledError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            raise
        if process.returncode:
            said = one_line(errors.decode("utf-8", "replace").strip(), 160)
            self.report(
                f"notify_command {name!r} failed (exit {process.returncode})"
                + (f": {said}" if said else "")
            )

    async def aclose(self) -> None:
        """Wait for the commands still running (each within its deadline)."""
        if self._running:
            await asyncio.gather(*list(self._running), return_exceptions=True)


def tell(
    task: Task,
    settings: Settings,
    *,
    write: Callable[[str], None] | None,
    report: Callable[[str], None],
) -> None:
    """Tell of one task that ended, for a face that already reacts to the end (the
    dashboard): the terminal's notification through `write`, the settings' command on
    the running loop (not waited for; a failure goes to `report`)."""
    Notifier(
        settings.desktop_notifications, settings.notify_command, write=write, report=report
    ).task_ended(task)


__all__ = [
    "NOTIFY_MODES",
    "Notifier",
    "clean",
    "command_env",
    "ended",
    "escape_for",
    "message_for",
    "tell",
    "terminal_protocol",
]
