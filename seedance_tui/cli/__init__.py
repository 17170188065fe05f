"""Entry point `seedance-tui`: the dashboard by default, plus headless commands (click).

    seedance-tui [--db PATH] [--key PROVIDER=KEY]... [--demo] [COMMAND ...]

One module per family of commands (`submit`, `tasks`: status/list/credits/settle/watch,
`library`: download/open/frame/sheet, `keys`, `settings`: config, `history`:
export/import/history, `queue`, `serving`: serve/simulator), display helpers in
`display`, what they share in `common`. A command's module is imported only when that
command runs (`COMMANDS` holds the names and one-line helps the root's `--help` lists),
so `--help` and the history-only commands answer at once.

Exit codes, in one place (`exit_code_for`): 0 ok, 1 the job or request failed, 2 bad
usage or input, or a job over a spending cap (nothing sent); 141 when the reader of the
output went away (`| head`), 130 when interrupted.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Sequence
from typing import Any

import click

from .. import __version__
from .common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PIPE_CLOSED,
    EXIT_USAGE,
    Options,
    UsageError,
    err,
)

# name → (module in this package, attribute, the one line the root's --help shows)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "submit": ("submit", "submit", "submit a job, or queue a batch file (--batch)"),
    "status": ("tasks", "status", "show one task (asks the provider if it is still pending)"),
    "list": ("tasks", "list_tasks", "list tasks, newest first"),
    "credits": ("tasks", "credits", "credits spent per provider (as the servers reported them)"),
    "settle": ("tasks", "settle", "say what an orphaned task was charged (for the caps)"),
    "watch": ("tasks", "watch", "poll every pending task until none is left"),
    "download": ("library", "download", "save finished videos in the local library"),
    "open": ("library", "open_task", "open a task's saved file (or its link)"),
    "frame": ("library", "frame", "write a render's poster frame as PNG"),
    "sheet": ("library", "sheet", "a PNG contact sheet of renders' frames, with captions"),
    "key": ("keys", "key", "store, list or delete API keys (OS keyring, else a 0600 file)"),
    "config": ("settings", "config", "the TOML config file: where it is, what is in force"),
    "export": ("history", "export", "write the history as CSV, JSON or JSON Lines (no secrets)"),
    "import": ("history", "import_file", "add the tasks of an export file to the history"),
    "history": ("history", "history", "the history file: path, stats, backup"),
    "queue": ("queue", "queue", "the batch queue: status, pause, resume (persisted)"),
    "serve": ("serving", "serve", "the dashboard in a browser tab (on 127.0.0.1 only)"),
    "simulator": ("serving", "simulator", "serve the fake provider APIs on loopback"),
}
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class _PipeClosed(Exception):
    """The reader of the output went away while a command wrote to it."""


def exit_code_for(exc: BaseException, options: Options | None) -> int | None:
    """Say what went wrong (on stderr, one line) and return the exit code; None for an
    exception that is a bug (left to surface with its traceback)."""
    from ..caps import CapExceeded
    from ..errors import ConfigError, MissingKeyError
    from ..models import JobValidationError
    from ..store import StoreError, StoreFullError

    if isinstance(exc, JobValidationError):
        err(f"error: {exc.field}: {exc.message}")
        return EXIT_USAGE
    if isinstance(exc, UsageError | MissingKeyError | ConfigError | CapExceeded):
        err(f"error: {exc}")
        return EXIT_USAGE
    if isinstance(exc, StoreFullError):
        err(f"error: {exc}")
        return EXIT_FAILED
    if isinstance(exc, StoreError):
        err(f"error: {exc}")
        return EXIT_USAGE
    from ..providers import ApiError  # the HTTP stack: only once nothing else matched

    if isinstance(exc, ApiError):
        err(f"error: {exc}" + (f" — {exc.hint}" if exc.hint else ""))
        return EXIT_FAILED
    return None


def _silence_streams() -> None:
    """Nothing left to tell anyone: point the standard streams at /dev/null so that the
    interpreter's last flush has nowhere to fail ("Exception ignored …")."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        # A stream that is not a file descriptor (a test's capture) is left as it is.
        with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
            os.dup2(devnull, stream.fileno())
    os.close(devnull)


def _answer(ctx: click.Context, text: str) -> None:
    """Print --help's or --version's text and end 0, also when the reader is gone."""
    try:
        click.echo(text, color=ctx.color)
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_streams()
    ctx.exit()


def _show_help(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        _answer(ctx, ctx.get_help())


def _quiet_help(command: click.Command, ctx: click.Context) -> None:
    """`command`'s --help (and its subcommands') ends 0 even when its reader is gone."""
    option = command.get_help_option(ctx)
    if option is not None:
        option.callback = _show_help
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _quiet_help(sub, ctx)


class LazyGroup(click.Group):
    """The root group: commands listed from `COMMANDS`, each module imported only when
    its command runs (or its own --help is asked for)."""

    def get_help_option(self, ctx: click.Context) -> click.Option | None:
        option = super().get_help_option(ctx)
        if option is not None:
            option.callback = _show_help
        return option

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = COMMANDS.get(cmd_name)
        if found is None:
            return None
        import importlib

        module = importlib.import_module(f"{__name__}.{found[0]}")
        command: click.Command = getattr(module, found[1])
        _quiet_help(command, ctx)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, text) for name, (_, _, text) in COMMANDS.items()])

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; map what it raises to an exit code (`exit_code_for`)."""
        try:
            result = super().invoke(ctx)
            sys.stdout.flush()  # a reader that went away shows here, not at the exit
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except BrokenPipeError:
            raise _PipeClosed from None
        except KeyboardInterrupt:
            err("interrupted")
            ctx.exit(EXIT_INTERRUPTED)
        except Exception as exc:
            code = exit_code_for(exc, ctx.find_object(Options))
            if code is None:
                raise
            ctx.exit(code)
        if isinstance(result, int) and result:
            ctx.exit(result)
        return result

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> int:
        """Click's main, with our report of usage errors ("error: …", exit 2), of a
        closed pipe (141) and of Ctrl+C (130). Exits (standalone) or returns the code."""
        try:
            result = super().main(
                args, prog_name or "seedance-tui", complete_var, standalone_mode=False, **extra
            )
            code = result if isinstance(result, int) else EXIT_OK
        except click.ClickException as exc:
            if isinstance(exc, click.UsageError) and exc.ctx is not None:
                err(exc.ctx.get_usage())
                err(f"Try '{exc.ctx.command_path} --help' for help.\n")
            err(f"error: {exc.format_message()}")
            code = exc.exit_code
        except click.Abort:
            err("interrupted")
            code = EXIT_INTERRUPTED
        except _PipeClosed:
            _silence_streams()
            code = EXIT_PIPE_CLOSED
        if standalone_mode:
            sys.exit(code)
        return code


def _version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        _answer(ctx, f"seedance-tui {__version__}")


def _keys(_ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict:
    """`--key PROVIDER=KEY` (repeatable) → {Provider: key}; the key is never echoed."""
    from ..models import Provider

    keys = {}
    for text in values:
        provider, sep, key = text.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter("expected PROVIDER=KEY", param=param)
        try:
            keys[Provider(provider.strip())] = key.strip()
        except ValueError:
            names = ", ".join(p.value for p in Provider)
            raise click.BadParameter(f"unknown provider (one of {names})", param=param) from None
    return keys


@click.group(
    cls=LazyGroup,
    invoke_without_command=True,
    context_settings=CONTEXT,
    epilog="Exit codes: 0 ok, 1 the job or request failed, 2 bad usage or input, or over a "
    "spending cap (nothing sent).",
)
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_version,
              help="print the version and exit")  # fmt: skip
@click.option("--db", metavar="PATH", help="the history file (env SEEDANCE_TUI_DB)")
@click.option("--key", "keys", multiple=True, metavar="PROVIDER=KEY", callback=_keys,
              help="an API key for this run, ahead of env, keyring and keys file (repeatable); "
              "other users may see it in the process list: prefer `key set` or the env")  # fmt: skip
@click.option("--demo", is_flag=True, help="open the dashboard against the built-in simulator "
              "with a demo history (no key, no network)")  # fmt: skip
@click.pass_context
def cli(ctx: click.Context, db: str | None, keys: dict, demo: bool) -> int | None:
    """A terminal dashboard for Seedance 1.5 Pro video generation. With no command, opens
    the dashboard."""
    ctx.obj = Options(db=db, keys=keys, demo=demo)
    if ctx.invoked_subcommand is not None:
        return None
    from ..tui import run_app

    return run_app(ctx.obj.settings(), demo=demo)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line `argv` (default: the process's) and return its exit code."""
    return cli.main(list(sys.argv[1:] if argv is None else argv), standalone_mode=False)


def run() -> None:
    sys.exit(main())


__all__ = ["COMMANDS", "cli", "exit_code_for", "main", "run"]
