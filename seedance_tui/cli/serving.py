"""`serve` (the dashboard in a browser tab) and `simulator` (the fake provider APIs)."""

from __future__ import annotations

import contextlib
import os
import sys

import click

from .common import EXIT_OK, PORT, Options, UsageError, err, pass_options


def serve_command(options: Options) -> str:
    """The shell command each browser session runs: this dashboard with the same options."""
    import shlex

    from ..store.dsn import is_url

    parts = [sys.executable, "-m", "seedance_tui"]
    if options.db and is_url(options.db):
        os.environ["SEEDANCE_TUI_DB"] = options.db  # inherited: no password on a command line
    elif options.db:
        parts += ["--db", os.path.abspath(os.path.expanduser(options.db))]
    if options.demo:
        parts.append("--demo")
    return shlex.join(parts)


@click.command(short_help="the dashboard in a browser tab (textual-serve, on 127.0.0.1 only)")
@click.option("--port", type=PORT, default=8000, show_default=True)
@pass_options
def serve(options: Options, port: int) -> int:
    """The dashboard in a browser tab, through textual-serve. Each browser tab runs its own
    dashboard process. Loopback only: reach it from elsewhere through an SSH tunnel
    (ssh -L 8000:127.0.0.1:8000 HOST). Put --demo or --db PATH before `serve`."""
    import logging
    import socket

    from textual_serve.server import Server

    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            raise UsageError(
                f"port {port} on 127.0.0.1 is taken; choose another with --port"
            ) from None
    logging.getLogger("textual_serve").setLevel(logging.WARNING)
    err(f"dashboard on http://127.0.0.1:{port} (loopback only); Ctrl+C stops it")
    server = Server(serve_command(options), host="127.0.0.1", port=port, title="seedance-tui")
    with contextlib.suppress(KeyboardInterrupt):
        server.serve()
    return EXIT_OK


@click.command(short_help="serve the fake provider APIs on loopback")
@click.option("--port", type=PORT, default=8765, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="a loopback address")
@click.option("--generation-time", type=float, nargs=2, metavar="MIN MAX", default=(20.0, 60.0),
              show_default=True, help="seconds a render takes")  # fmt: skip
@click.option("--failure-rate", type=float, default=0.1, show_default=True,
              help="share of renders that fail")  # fmt: skip
@click.option("--fault-rate", type=float, default=0.0, show_default=True,
              help="share of answers that are faults")  # fmt: skip
@click.option("--seed", type=int)
def simulator(
    port: int,
    host: str,
    generation_time: tuple[float, float],
    failure_rate: float,
    fault_rate: float,
    seed: int | None,
) -> int:
    """Serve the fake provider APIs (both of them, as an ASGI app) on loopback; point
    NANOPHOTO_BASE_URL and SEEDANCE15PRO_BASE_URL at it."""
    from ..simulator import SimConfig, serve

    try:
        config = SimConfig(generation_time=tuple(generation_time), failure_rate=failure_rate,
                           fault_rate=fault_rate, seed=seed)  # fmt: skip
        err(f"simulator on http://{host}:{port} — point NANOPHOTO_BASE_URL and "
            f"SEEDANCE15PRO_BASE_URL at it; Ctrl+C stops it")  # fmt: skip
        serve(host, port, config)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    except KeyboardInterrupt:
        pass
    return EXIT_OK
