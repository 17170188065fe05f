"""Answers that are deliberately broken: a dropped connection, a body that isn't JSON."""

from __future__ import annotations

import logging

from starlette.responses import Response
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
