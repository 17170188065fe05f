"""`serve` (the dashboard in a browser tab) and `simulator` (the fake provider APIs)."""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from pathlib import Path

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
@click.option("--port", type=PORT, default=8000, show_default=True,
              help="the port on 127.0.0.1 to serve the page on")  # fmt: skip
@pass_options
def serve(options: Options, port: int) -> int:
    """The dashboard in a browser tab, through textual-serve. Each browser tab runs its own
    dashboard process. Loopback only: reach it from elsewhere through an SSH tunnel
    (ssh -L 8000:127.0.0.1:8000 HOST). Put --demo or --db PATH before `serve`."""
    import logging
    import socket

    _Server = _server_class()

    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            raise UsageError(
                f"port {port} on 127.0.0.1 is taken; choose another with --port"
            ) from None
    logging.getLogger("textual_serve").setLevel(logging.WARNING)
    err(f"dashboard on http://127.0.0.1:{port} (loopback only); Ctrl+C stops it")
    with tempfile.TemporaryDirectory(prefix="seedance-tui-serve-") as templates:
        page_template(Path(templates))
        server = _Server(serve_command(options), host="127.0.0.1", port=port,
                         title="seedance-tui", templates_path=templates)  # fmt: skip
        try:
            with contextlib.suppress(KeyboardInterrupt):
                server.serve()
        finally:
            stop_descendants(os.getpid())  # any that outlived their SIGTERM
    return EXIT_OK


def _server_class() -> type:
    from textual_serve.server import Server

    class StoppingServer(Server):
        """textual-serve's server, ending the tabs' dashboards when it is told to stop.

        Its own way out asks each dashboard to quit over its websocket and waits for it:
        a dashboard that does not answer (busy, stopped) keeps the server waiting and
        outlives it. Here each one is sent SIGTERM first."""

        def request_exit(self) -> None:
            signal_descendants(os.getpid())
            super().request_exit()

    return StoppingServer


# Where the dashboard's first screen arrives: the terminal takes the keyboard at once
# (textual-serve's page leaves it unfocused until clicked) and, until then, the page says
# what it waits for and what to press.
#
# The terminal opens once its font is loaded: xterm.js measures a cell when it opens and
# sizes its rows from that; a font arriving later (the page asked Google Fonts for it)
# draws taller glyphs in rows measured for the fallback font, and the app's first row
# is cut at the page's top. textual-serve ships the font in its static folder: it is
# served from there, so the page also sends no request off this machine.
PAGE_SCRIPT = """
<script>
  (function () {
    function focusTerminal() {
      var input = document.querySelector(".xterm-helper-textarea");
      if (input) { input.focus(); }
    }
    new MutationObserver(function () {
      if (document.body.classList.contains("-first-byte")) { focusTerminal(); }
    }).observe(document.body, { attributes: true, attributeFilter: ["class"] });
    window.addEventListener("focus", focusTerminal);
    document.addEventListener("keydown", focusTerminal, { once: true });
    var openTerminal = window.onload;  // textual.js's: opens the terminal, connects
    if (openTerminal && document.fonts) {
      window.onload = function (event) {
        var loaded = document.fonts.load('16px "Roboto Mono"');
        var waited = new Promise(function (done) { setTimeout(done, 3000); });
        Promise.race([loaded, waited]).catch(function () {}).then(function () {
          openTerminal(event);
        });
      };
    }
  })();
</script>
"""
PAGE_FONT = """
<style>
  @font-face {
    font-family: "Roboto Mono";
    src: url("{{ config.static.url }}fonts/RobotoMono-VariableFont_wght.ttf") format("truetype");
    font-weight: 100 700;
    font-style: normal;
  }
</style>
"""
GOOGLE_FONTS = re.compile(
    r'\s*<link\s+rel="stylesheet"\s+href="https://fonts\.googleapis\.com[^>]*/>'
)
PAGE_HINT = (
    '<div class="seedance-hint" style="font-size: 13px; opacity: 0.8; margin-top: 12px">'
    "starting the dashboard… it takes the keyboard as soon as it shows "
    "(if keys do nothing, click it once)</div>"
)


def page_template(folder: Path) -> Path:
    """textual-serve's page, as its installed version ships it, with its font served
    locally (PAGE_FONT in place of the Google Fonts link), PAGE_SCRIPT and PAGE_HINT
    added; written to `folder` (the server's templates folder)."""
    import textual_serve

    original = Path(textual_serve.__file__).parent / "templates" / "app_index.html"
    page = original.read_text(encoding="utf-8")
    marker = "<div>{{ application.name or 'Textual Application' }}</div>"
    if marker in page:
        page = page.replace(marker, f"<div>{marker}{PAGE_HINT}</div>", 1)
    page = GOOGLE_FONTS.sub("", page, count=1)
    page = page.replace("</head>", PAGE_FONT + "</head>", 1)
    page = page.replace("</body>", PAGE_SCRIPT + "</body>", 1)
    target = folder / "app_index.html"
    target.write_text(page, encoding="utf-8")
    return target


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (its children, theirs…), from `ps` (Linux and macOS)."""
    import subprocess

    try:
        listing = subprocess.run(
            ["ps", "-A", "-o", "pid=,ppid="], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    children: dict[int, list[int]] = {}
    for line in listing.splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[0].isdigit() and fields[1].isdigit():
            children.setdefault(int(fields[1]), []).append(int(fields[0]))
    found: list[int] = []
    todo = list(children.get(pid, []))
    while todo:
        child = todo.pop()
        found.append(child)
        todo.extend(children.get(child, []))
    return found


def signal_descendants(pid: int) -> list[int]:
    """SIGTERM every process below `pid` (and SIGCONT, so that a stopped one gets it)."""
    import signal

    pids = descendants(pid)
    for child in pids:
        for sig in (signal.SIGTERM, signal.SIGCONT):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(child, sig)
    return pids


def stop_descendants(pid: int, grace: float = 5.0) -> None:
    """SIGTERM every process below `pid`; SIGKILL those still there after `grace` s."""
    import signal
    import time

    pids = signal_descendants(pid)
    deadline = time.monotonic() + grace
    while pids and time.monotonic() < deadline:
        pids = [p for p in pids if _alive(p)]
        if pids:
            time.sleep(0.05)  # between two looks at the processes ending
    for child in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(child, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)  # reaps our own child once it ended
        if waited:
            return False
    except ChildProcessError:
        pass  # not our child: ask the system
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@click.command(short_help="serve the fake provider APIs on loopback")
@click.option("--port", type=PORT, default=8765, show_default=True,
              help="the port to listen on")  # fmt: skip
@click.option("--host", default="127.0.0.1", show_default=True, help="a loopback address")
@click.option("--generation-time", type=float, nargs=2, metavar="MIN MAX", default=(20.0, 60.0),
              show_default=True, help="seconds a render takes")  # fmt: skip
@click.option("--failure-rate", type=float, default=0.1, show_default=True,
              help="share of renders that fail")  # fmt: skip
@click.option("--fault-rate", type=float, default=0.0, show_default=True,
              help="share of answers that are faults")  # fmt: skip
@click.option("--seed", type=int, help="a seed for its random choices: the same run each time")
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
