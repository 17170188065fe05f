"""Answers that are deliberately broken: a dropped connection, a body that isn't JSON."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send


class SimulatedConnectionReset(Exception):
    """Raised after a partial answer so that the server drops the connection."""


class ResetResponse(Response):
    """Sends the headers (with a Content-Length) and part of the body, then aborts.

    The client sees a connection closed before the promised body arrived: a
    transport/protocol error, never a clean response.
    """

    def __init__(
        self,
        partial: bytes,
        claimed_length: int,
        status_code: int = 200,
        media_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(b"", status_code=status_code, media_type=media_type, headers=headers)
        self.partial = partial
        self.claimed_length = claimed_length

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        headers.append((b"content-length", str(self.claimed_length).encode()))
        await send({"type": "http.response.start", "status": self.status_code, "headers": headers})
        await send({"type": "http.response.body", "body": self.partial, "more_body": True})
        # The server closes the transport when the app raises after the answer started.
        raise SimulatedConnectionReset("simulated connection reset")


def reset_json_response() -> ResetResponse:
    """A JSON answer cut short after a few bytes."""
    return ResetResponse(b'{"status":"proc', claimed_length=96)


GARBAGE_BODY = (
    "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>"
    "<body><h1>Bad gateway</h1><p>The upstream answered with something unexpected."
    "</p></body></html>\n"
)


def garbage_response() -> Response:
    """A 200 whose body is not JSON (an HTML error page from a proxy, say)."""
    return Response(GARBAGE_BODY, status_code=200, media_type="text/html")


# Escape sequences a terminal would obey: a title change, a screen clear, a C1 CSI.
ESCAPES = "\x1b]0;pwned\x07\x1b[2J\x9b31m"
BAD_VIDEO_URLS = ("file:///etc/passwd", "javascript:alert(1)", "--help")


def absurd_response(answer: Response, variant: int) -> Response:
    """The same answer (its task id untouched) with one kind of nonsense in its other
    fields: a credit count of 10**30 or 1e308 or a word, a negative or NaN render time,
    a status that is a number, a bad video URL, escape sequences in text."""
    if not 200 <= answer.status_code < 300:
        return answer
    try:
        data = json.loads(bytes(answer.body))
    except ValueError:
        return answer
    if not isinstance(data, dict):
        return answer
    envelope = isinstance(data.get("data"), dict)
    fields: dict[str, Any] = data["data"] if envelope else data
    credits = "consumed_credits" if envelope else "creditsUsed"
    choice = variant % 8
    if choice == 0:
        fields[credits] = 10**30
    elif choice == 1:
        fields[credits] = 1e308
    elif choice == 2:
        fields[credits] = "lots"
    elif choice == 3:
        fields["generationTime"] = -5
    elif choice == 4:
        fields["generationTime"] = float("nan")
    elif choice == 5:
        fields["status"] = 17
    elif choice == 6:
        done = fields.get("status") in ("completed", "SUCCESS")
        url = BAD_VIDEO_URLS[variant % len(BAD_VIDEO_URLS)]
        if done and envelope:
            fields["response"] = [url]
        elif done:
            fields["videoUrl"] = url
        else:
            fields["note"] = url
    else:
        fields["note"] = ESCAPES + "[bold]markup[/]"
        if envelope:
            data["message"] = "ok " + ESCAPES
    return Response(
        json.dumps(data, allow_nan=True),
        status_code=answer.status_code,
        media_type="application/json",
    )


def drip_response(
    answer: Response, seconds: float, sleep: Callable[[float], Awaitable[None]]
) -> Response:
    """The answer's body one byte at a time, spread over `seconds`: every read gets a
    byte in time, and the whole answer comes only at the end."""
    body = bytes(answer.body)

    async def chunks() -> AsyncIterator[bytes]:
        pause = seconds / max(1, len(body))
        for i in range(len(body)):
            await sleep(pause)
            yield body[i : i + 1]

    headers = {"content-length": str(len(body))}
    return StreamingResponse(
        chunks(), status_code=answer.status_code, media_type="application/json", headers=headers
    )


HUGE_BYTES = 50_000_000


def huge_response() -> Response:
    """A 200 declaring a 50 MB JSON body, streamed as fast as the client reads it."""

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"pad": "'
        piece = b"x" * 65536
        for _ in range(HUGE_BYTES // len(piece)):
            yield piece
            await asyncio.sleep(0)

    return StreamingResponse(
        chunks(),
        status_code=200,
        media_type="application/json",
        headers={"content-length": str(HUGE_BYTES)},
    )


class _DropSimulatedResets(logging.Filter):
    """Keep uvicorn from logging a traceback for every reset we cause on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, SimulatedConnectionReset)


def quiet_simulated_resets() -> None:
    """Install the filter on uvicorn's error logger (once)."""
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _DropSimulatedResets) for f in logger.filters):
        logger.addFilter(_DropSimulatedResets())
