"""What every command shares: the global options, output streams, exit codes, the
user's usage errors, parameter types, and finding a task by what the user typed.

Light on purpose: `seedance-tui --help` imports this module and click and nothing else
of the program (not even the domain models, nor asyncio, dataclasses or pathlib), so
that it answers at once (`benchmarks/startup.py`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Coroutine
from functools import wraps
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from pathlib import Path

    from ..config import Settings
    from ..models import Provider, Task
    from ..store import Store

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
# The reader of the output went away (`| head`): 128 + SIGPIPE, as any Unix tool ends.
EXIT_PIPE_CLOSED = 141
EXIT_INTERRUPTED = 130  # 128 + SIGINT
# The largest number SQLite stores (a LIMIT beyond it overflows).
MAX_COUNT = 2**63 - 1


class UsageError(Exception):
    """Bad input from the user: exit 2 with the message."""


def out(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def err(text: str) -> None:
    sys.stderr.write(text + "\n")


# -- the global options ----------------------------------------------------------------


class Options:
    """The root group's options, handed to every command (`pass_options`)."""

    def __init__(
        self,
        db: str | None = None,
        keys: dict[Provider, str] | None = None,
        demo: bool = False,
    ) -> None:
        self.db = db
        self.keys = dict(keys or {})
        self.demo = demo
        self._settings: Settings | None = None

    def settings(self) -> Settings:
        """The settings in force (loaded once; ConfigError when they cannot be used)."""
        if self._settings is None:
            from ..config import load_settings

            self._settings = load_settings(db=self.db, keys=self.keys or None)
        return self._settings


pass_options = click.make_pass_decorator(Options, ensure=True)

T = TypeVar("T")


def run_async(function: Callable[..., Coroutine[Any, Any, T]]) -> Callable[..., T]:
    """A click callback that runs a coroutine function to its end."""

    @wraps(function)
    def run(*args: Any, **kwargs: Any) -> T:
        import asyncio

        return asyncio.run(function(*args, **kwargs))

    return run


# -- parameter types -------------------------------------------------------------------


class Count(click.ParamType):
    """A whole number from 0 to the largest SQLite stores (0 usually means "all")."""

    name = "N"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            number = value
        else:
            try:
                number = int(value)
            except ValueError:
                self.fail(f"{value!r} is not a whole number", param, ctx)
        if number < 0:
            self.fail("must be 0 or more", param, ctx)
        if number > MAX_COUNT:
            self.fail(f"must be at most {MAX_COUNT} (0 means all)", param, ctx)
        return number


PORT = click.IntRange(1, 65535)
COUNT = Count()


def json_option(function: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True, help="print JSON")(function)


def provider_names() -> list[str]:
    from ..models import Provider

    return [p.value for p in Provider]


def provider_option(help: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option("--provider", type=click.Choice(provider_names()), help=help)


def status_option(function: Callable[..., Any]) -> Callable[..., Any]:
    from ..models import TaskStatus

    return click.option(
        "--status", "statuses", type=click.Choice([s.value for s in TaskStatus]),
        multiple=True, help="only tasks with this status (repeatable)",
    )(function)  # fmt: skip


# -- shared checks ---------------------------------------------------------------------


def parse_since(text: str | None) -> float | None:
    """`--since`: a date (YYYY-MM-DD, midnight UTC) or an ISO time, as a timestamp."""
    if not text:
        return None
    import datetime as dt

    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--since: {text!r} is not a date (YYYY-MM-DD) or ISO time") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.timestamp()


def check_search(text: str | None) -> str | None:
    """`--search`: refused when it holds no word to search for (it would match all)."""
    from ..store import nothing_to_search
    from ..text import inert

    if nothing_to_search(text):
        raise UsageError(
            f"--search '{inert(text, newlines=False)}': nothing to search for (a search matches words: letters "
            "and digits; punctuation and emoji are skipped)"
        )
    return text


def find_task(store: Store, ref: str) -> Task:
    """The task `ref` names (our id, its last 8 characters, or the provider's task id)."""
    task = store.find(ref)
    if task is None:
        raise UsageError(f"no task matches {ref!r} (use an id from `seedance-tui list`)")
    return task


def png_output(text: str | None) -> Path | None:
    """`-o FILE.png`: a PNG file in a folder that exists."""
    if text is None:
        return None
    from pathlib import Path

    path = Path(text).expanduser()
    if path.suffix.lower() != ".png":
        raise UsageError(f"{text}: the output is a PNG file, name it *.png")
    if not path.parent.is_dir():
        raise UsageError(f"{text}: no such folder {str(path.parent)!r}")
    return path


def existing_file(text: str) -> Path:
    from pathlib import Path

    path = Path(text).expanduser()
    if not path.is_file():
        raise UsageError(f"no file {path}")
    return path
