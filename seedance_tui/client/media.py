"""The media client: result videos, fetched without any key.

No Authorization header is ever set on it (the links are public), and each hop of a
redirect must be https or loopback. A body is handed on chunk by chunk (the library
writes it to disk), never gathered in memory, whether or not the server declared its
size. A download is bounded by progress, not by a total time (a large file on a slow
line legitimately takes long): fewer than `stall_bytes` in `stall_seconds` is a stall,
a retryable failure that a later download resumes. `max_bytes` bounds its size.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from .api import USER_AGENT, is_loopback
from .tls import shared_tls_context

MEDIA_TIMEOUT = httpx.Timeout(connect=10.0, read=60.0, write=10.0, pool=10.0)
STALL_SECONDS = 30.0
STALL_BYTES = 16 * 1024
MAX_MEDIA_BYTES = 4 << 30  # 4 GiB: a few seconds of video is tens of megabytes


class MediaError(Exception):
    """A media download failed; `retryable` says whether resuming may help."""

    def __init__(self, message: str, *, retryable: bool = True, http_status: int | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.http_status = http_status


def check_media_url(url: str) -> None:
    """Media links must be https, or plain http only to a loopback host."""
    parts = urlsplit(url)
    if parts.scheme == "https" or (parts.scheme == "http" and is_loopback(parts.hostname or "")):
        return
    raise MediaError(
        f"refusing to download from {parts.scheme}://{parts.hostname}: plain http is allowed "
        "only to a loopback host",
        retryable=False,
    )


@dataclass(frozen=True, slots=True)
class MediaStream:
    """One answer to a media GET: where its body starts in the file, and the file's size."""

    start: int  # offset in the file of the body's first byte (0 for a whole-file answer)
    total: int | None  # the whole file's size, when the server said it
    chunks: AsyncIterator[bytes]
    # The body's end is marked on the wire (a declared length, or chunked encoding's last
    # chunk, which httpx checks): a body that ends is then the whole body.
    framed: bool = True


def _content_range(value: str | None) -> tuple[int, int, int | None] | None:
    """`bytes START-END/TOTAL` → (start, end, total); None when absent or unreadable."""
    if not value:
        return None
    unit, _, spec = value.strip().partition(" ")
    if unit.lower() != "bytes":
        return None
    span, _, total = spec.partition("/")
    first, dash, last = span.partition("-")
    try:
        if not dash:
            return None
        return int(first), int(last), (None if total.strip() == "*" else int(total))
    except ValueError:
        return None


class MediaClient:
    """Downloads result videos; never sends an API key."""

    def __init__(
        self,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: httpx.Timeout = MEDIA_TIMEOUT,
        stall_seconds: float = STALL_SECONDS,
        stall_bytes: int = STALL_BYTES,
        max_bytes: int = MAX_MEDIA_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        async def check_hop(request: httpx.Request) -> None:
            check_media_url(str(request.url))

        self.stall_seconds = stall_seconds
        self.stall_bytes = stall_bytes
        self.max_bytes = max_bytes
        self._clock = clock
        self._http = httpx.AsyncClient(
            timeout=timeout,
            transport=transport,
            verify=shared_tls_context(),  # one context for every client (tls.py)
            headers={"User-Agent": USER_AGENT},
            follow_redirects=True,
            event_hooks={"request": [check_hop]},
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> MediaClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @contextlib.asynccontextmanager
    async def open(self, url: str, offset: int = 0) -> AsyncIterator[MediaStream]:
        """GET `url` from byte `offset` (a Range request when offset > 0).

        A 206 must start exactly at `offset`; a 200 is the whole file (start 0: the caller
        starts over). A 416 whose `bytes */TOTAL` equals `offset` means the file is already
        complete: an empty stream at `offset`. Network failures become retryable
        MediaErrors, also while the body is read, and so does a stall.
        """
        check_media_url(url)
        headers = {"Accept-Encoding": "identity"}
        if offset > 0:
            headers["Range"] = f"bytes={offset}-"
        try:
            async with self._http.stream("GET", url, headers=headers) as response:
                status = response.status_code
                if status == 416 and offset > 0:
                    found = response.headers.get("content-range", "")
                    total = found.rpartition("/")[2]
                    if total.isdigit() and int(total) == offset:
                        yield MediaStream(offset, offset, _no_chunks())
                        return
                    yield MediaStream(0, None, _no_chunks())  # cannot resume: start over
                    return
                if status == 206:
                    span = _content_range(response.headers.get("content-range"))
                    if span is None or span[0] != offset:
                        raise MediaError(
                            f"the server answered a resume with the wrong range "
                            f"({response.headers.get('content-range')!r})",
                            http_status=status,
                        )
                    start, total = span[0], span[2]
                elif status == 200:
                    length = response.headers.get("content-length")
                    start, total = 0, int(length) if length and length.isdigit() else None
                else:
                    raise MediaError(
                        f"the media server answered HTTP {status}"
                        + (" (the link has probably expired)" if status in (403, 404, 410) else ""),
                        retryable=status >= 500 or status in (408, 429),
                        http_status=status,
                    )
                if total is not None and total > self.max_bytes:
                    raise MediaError(
                        f"the file is {total:,} bytes, more than the {self.max_bytes:,} accepted",
                        retryable=False,
                        http_status=status,
                    )
                chunked = "chunked" in response.headers.get("transfer-encoding", "").lower()
                yield MediaStream(
                    start,
                    total,
                    self._guarded(response.aiter_raw(), start),  # as it arrives: progress is seen
                    framed=total is not None or chunked,
                )
        except httpx.HTTPError as exc:
            raise MediaError(f"the download broke off ({type(exc).__name__})") from None

    async def _guarded(self, chunks: AsyncIterator[bytes], start: int) -> AsyncIterator[bytes]:
        """The body's chunks, failing as a stall when fewer than `stall_bytes` arrive in
        `stall_seconds` (counted from the last time that many had arrived), and when the
        file grows past `max_bytes`."""
        iterator = chunks.__aiter__()
        window_start, window_bytes, size = self._clock(), 0, start
        while True:
            left = window_start + self.stall_seconds - self._clock()
            try:
                async with asyncio.timeout(max(left, 0.0)):
                    chunk = await iterator.__anext__()
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise MediaError(
                    f"the download stalled: {window_bytes:,} bytes in the last "
                    f"{self.stall_seconds:g} s (the next download resumes it)"
                ) from None
            except httpx.HTTPError as exc:
                raise MediaError(f"the download broke off ({type(exc).__name__})") from None
            size += len(chunk)
            if size > self.max_bytes:
                raise MediaError(
                    f"the file grew past the {self.max_bytes:,} bytes accepted", retryable=False
                )
            window_bytes += len(chunk)
            if window_bytes >= self.stall_bytes:
                window_start, window_bytes = self._clock(), 0
            yield chunk


async def _no_chunks() -> AsyncIterator[bytes]:
    return
    yield b""  # pragma: no cover - makes this an async generator
