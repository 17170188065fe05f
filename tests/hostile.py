"""A hostile HTTP server on 127.0.0.1 for tests: it answers what the test scripts, byte
for byte, on a raw socket — absurd numbers, wrong types, escape sequences, a body that
drips one byte at a time, bodies of tens of megabytes, a connection closed without an
answer, or no answer at all.

    with HostileServer() as server:
        server.route("/generate", json_answer({"taskId": "t1", "creditsUsed": 10**30}))
        server.route("/check-status", drip(b'{"status": "processing"}', every=0.2))
        ... base URL: server.base_url

A route matches the end of the request's path; the first matching route answers (a
route given `times=N` answers N requests, then the next matching one takes over). An
unmatched request gets a 404. Every request is kept in `server.requests`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

Writer = asyncio.StreamWriter


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")


Answer = Callable[[Request, Writer, "HostileServer"], Awaitable[bool]]
"""Writes an answer; returns True to keep the connection open for the next request."""


def _head(status: int, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} X"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def raw(data: bytes, *, close: bool = True) -> Answer:
    """Exactly these bytes (status line and headers included), then close."""

    async def answer(request: Request, writer: Writer, server: HostileServer) -> bool:
        writer.write(data)
        await writer.drain()
        return not close

    return answer


def body_answer(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> Answer:
    """A well-formed answer with this body and a correct Content-Length."""
    all_headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
    all_headers.update(headers or {})
    return raw(_head(status, all_headers) + body, close=False)


def json_answer(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Answer:
    """A well-formed JSON answer (NaN and Infinity allowed: JavaScript servers send them)."""
    return body_answer(json.dumps(value, allow_nan=True).encode(), status, headers)


def drip(body: bytes, *, every: float, status: int = 200, length: int | None = None) -> Answer:
    """Headers at once (Content-Length: `length`, default the body's), then one byte of
    the body every `every` seconds: never a read timeout, never a complete answer soon."""

    async def answer(request: Request, writer: Writer, server: HostileServer) -> bool:
        head = {"Content-Type": "application/json", "Content-Length": str(length or len(body))}
        writer.write(_head(status, head))
        await writer.drain()
        for byte in body:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(every):
                    await server.closed.wait()
            if server.closed.is_set():
                return False
            writer.write(bytes([byte]))
            await writer.drain()
        await server.closed.wait()  # then hold the connection until the server stops
        return False

    return answer


def huge(size: int, *, status: int = 200, declare: bool = True, chunk: int = 1 << 16) -> Answer:
    """A JSON body of `size` bytes (a task id and padding), sent as fast as the client
    reads it; with `declare=False` no Content-Length (chunked), so only counting stops it."""

    async def answer(request: Request, writer: Writer, server: HostileServer) -> bool:
        head = {"Content-Type": "application/json"}
        if declare:
            head["Content-Length"] = str(size)
        else:
            head["Transfer-Encoding"] = "chunked"
        writer.write(_head(status, head))
        prefix, suffix = b'{"taskId": "t-huge", "pad": "', b'"}'
        pieces = [prefix]
        left = size - len(prefix) - len(suffix)
        try:
            while pieces or left > 0:
                part = pieces.pop() if pieces else b"x" * min(chunk, left)
                if not pieces and part is not prefix:
                    left -= len(part)
                writer.write(part if declare else b"%x\r\n%s\r\n" % (len(part), part))
                await writer.drain()
            writer.write(suffix if declare else b"%x\r\n%s\r\n0\r\n\r\n" % (len(suffix), suffix))
            await writer.drain()
        except ConnectionError:
            return False  # the client stopped reading: what a size cap does
        return False

    return answer


def close_without_answer() -> Answer:
    """Read the request, then close the connection without a byte of answer."""

    async def answer(request: Request, writer: Writer, server: HostileServer) -> bool:
        return False

    return answer


def hang() -> Answer:
    """Read the request and never answer (until the server stops)."""

    async def answer(request: Request, writer: Writer, server: HostileServer) -> bool:
        await server.closed.wait()
        return False

    return answer


@dataclass
class _Route:
    suffix: str
    answer: Answer | None
    make: Callable[[Request], Answer] | None = None
    times: int | None = None
    used: int = 0


@dataclass
class HostileServer:
    """The server, in a thread of its own with its own event loop."""

    requests: list[Request] = field(default_factory=list)
    port: int | None = None

    def __post_init__(self) -> None:
        self._routes: list[_Route] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.Task[None], Writer] = {}
        self.closed: asyncio.Event

    @property
    def base_url(self) -> str:
        assert self.port is not None, "the hostile server is not running"
        return f"http://127.0.0.1:{self.port}"

    def route(
        self,
        suffix: str,
        answer: Answer | None = None,
        *,
        make: Callable[[Request], Answer] | None = None,
        times: int | None = None,
    ) -> None:
        """Answer requests whose path ends with `suffix` with `answer`, or with what
        `make(request)` returns (e.g. to echo the task id asked about)."""
        assert (answer is None) != (make is None), "give answer or make"
        with self._lock:
            self._routes.append(_Route(suffix, answer, make, times))

    def clear(self) -> None:
        with self._lock:
            self._routes.clear()

    def count(self, suffix: str) -> int:
        with self._lock:
            return sum(1 for r in self.requests if r.path.split("?")[0].endswith(suffix))

    def _pick(self, request: Request) -> Answer:
        path = request.path.split("?")[0]
        with self._lock:
            self.requests.append(request)
            for route in self._routes:
                if path.endswith(route.suffix) and (
                    route.times is None or route.used < route.times
                ):
                    route.used += 1
                    break
            else:
                return json_answer({"error": "no such route"}, 404)
        if route.make is not None:
            return route.make(request)
        assert route.answer is not None
        return route.answer

    async def _serve(self, reader: asyncio.StreamReader, writer: Writer) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections[task] = writer
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, path, _version = (lines[0].split(" ") + ["", ""])[:3]
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0") or 0)
                body = await reader.readexactly(length) if length else b""
                request = Request(method, path, headers, body)
                keep = await self._pick(request)(request, writer, self)
                if not keep:
                    return
        except (OSError, asyncio.IncompleteReadError):
            return
        finally:
            self._connections.pop(task, None)
            with contextlib.suppress(Exception):
                writer.close()

    def start(self) -> str:
        ready = threading.Event()
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port or 0))
        self.port = sock.getsockname()[1]

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            self.closed = asyncio.Event()

            async def boot() -> None:
                self._server = await asyncio.start_server(self._serve, sock=sock)
                ready.set()

            loop.run_until_complete(boot())
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name="hostile-server", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the hostile server did not start")
        return self.base_url

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return

        async def shut() -> None:
            self.closed.set()
            if self._server is not None:
                self._server.close()
            for writer in list(self._connections.values()):
                writer.transport.abort()  # a handler blocked on a read sees the end
            await asyncio.gather(*self._connections, return_exceptions=True)
            loop.stop()

        asyncio.run_coroutine_threadsafe(shut(), loop)
        thread.join(10)
        self._loop = self._thread = None

    def __enter__(self) -> HostileServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def refused_url() -> str:
    """A loopback URL nobody listens on: every connection is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"
