"""Serving the simulator on loopback: in a background thread (tests) or blocking (CLI)."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType

import uvicorn
from starlette.applications import Starlette

from .app import create_app
from .config import SimConfig
from .state import SimState

STARTUP_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0


def check_loopback(host: str) -> None:
    """Refuse any host that is not loopback: this project never listens beyond it."""
    if host == "localhost":
        return
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is None or not address.is_loopback:
        raise ValueError(
            f"the simulator only listens on loopback (127.0.0.1, ::1, localhost), not {host!r}"
        )


def _bind(host: str, port: int) -> socket.socket:
    """A listening-ready socket on host:port (port 0: a free one); OSError if taken."""
    host = "127.0.0.1" if host == "localhost" else host
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _uvicorn_config(app: Starlette) -> uvicorn.Config:
    # The socket is bound beforehand (see _bind), so uvicorn's host/port are unused.
    return uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        log_config=None,  # leave the process's logging setup alone
        lifespan="off",
        timeout_graceful_shutdown=1,
    )


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class SimulatorServer:
    """The simulator on 127.0.0.1 in a background thread.

    >>> with SimulatorServer(SimConfig(generation_time=(0.1, 0.2))) as sim:
    ...     httpx.get(sim.base_url + "/_sim/ledger")
    """

    def __init__(
        self,
        config: SimConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        app: Starlette | None = None,
    ) -> None:
        check_loopback(host)
        self.host = host
        self.requested_port = port
        self.app = app if app is not None else create_app(config)
        self.port: int | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def state(self) -> SimState:
        return self.app.state.sim

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError("the simulator is not running")
        return _url(self.host, self.port)

    def start(self) -> str:
        """Start serving; return the base URL once connections are accepted."""
        if self._thread is not None:
            return self.base_url
        self.state.shutting_down = False
        sock = _bind(self.host, self.requested_port)
        self.port = sock.getsockname()[1]
        server = uvicorn.Server(_uvicorn_config(self.app))
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="seedance-simulator", daemon=True
        )
        self._server, self._thread = server, thread
        thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the simulator did not start")
            time.sleep(0.005)
        return self.base_url

    def stop(self) -> None:
        """Stop serving (cutting pending slow/timeout answers short) and join the thread."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self.state.wake_all()
        server.should_exit = True
        thread.join(STOP_TIMEOUT)
        if thread.is_alive():
            server.force_exit = True
            thread.join(STOP_TIMEOUT)
        self._server = self._thread = None
        self.port = None

    def __enter__(self) -> SimulatorServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def serve(
    host: str = "127.0.0.1",
    port: int = 8765,
    config: SimConfig | None = None,
    *,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve both fake APIs until interrupted (blocking): `seedance-tui simulator`.

    `on_ready` is called with the base URL once the server accepts connections.
    Raises ValueError for a host that is not loopback, or when host:port cannot be
    listened on (e.g. the port is taken).
    """
    check_loopback(host)
    try:
        sock = _bind(host, port)
    except OSError as exc:
        raise ValueError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    server = uvicorn.Server(_uvicorn_config(create_app(config)))
    if on_ready is not None:
        _announce_when_started(server, _url(host, sock.getsockname()[1]), on_ready)
    server.run(sockets=[sock])


def _announce_when_started(
    server: uvicorn.Server, url: str, on_ready: Callable[[str], None]
) -> None:
    """Call `on_ready(url)` from a watcher thread as soon as uvicorn is listening."""

    def watch() -> None:
        while not server.started:
            if server.should_exit:
                return
            time.sleep(0.01)
        on_ready(url)

    threading.Thread(target=watch, name="seedance-simulator-ready", daemon=True).start()
