"""The only place that speaks HTTP to the providers.

One shared `httpx.AsyncClient`; connect/read timeouts; the key in the Authorization
header and nowhere else; a refusal to send a key over plain http to a host that is not
loopback.

Retries. A status request is idempotent but costs rate budget, so the client sends it
once and the scheduler decides when to try again. `generate` is not idempotent and
neither API takes an idempotency key or lists tasks, so a job the server accepted but
whose answer we lost can never be found again: resending it could charge twice. The
client therefore retries `generate` only when the server certainly did not create a
task:
  * the connection was never made (connect error or connect/pool timeout);
  * a 429 (the provider's rate limiter refused it before any work), after Retry-After.
A read timeout, a connection broken after the request was sent, an unreadable 2xx or
any 5xx leave the outcome unknown: `OutcomeUnknown` is raised and
the engine marks the task `orphaned` so the user sees it, rather than risk a double
charge.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from .models import JobSpec, Provider, TaskUpdate
from .providers import (
    ApiError,
    ProtocolError,
    RateLimitError,
    RequestSpec,
    ServerError,
    SubmitAnswer,
    TransportError,
    get,
)

DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=30.0, write=10.0, pool=10.0)
USER_AGENT = "seedance-tui/0.1"


class InsecureTransportError(ApiError):
    kind = "insecure"


class OutcomeUnknown(ApiError):
    """A `generate` was sent and no trustworthy answer came back: it may have been accepted."""

    kind = "unknown"


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """What the ledger stores of one HTTP request (never the key)."""

    provider: Provider
    endpoint: str
    http_status: int | None
    sent: bool  # False when no connection was made: the server cannot have counted it
    elapsed: float
    error: str | None = None


RequestHook = Callable[[RequestRecord], None]
Gate = Callable[[], Awaitable[None]]


def is_loopback(host: str) -> bool:
    # Only "localhost" itself and loopback addresses: a name under .localhost is not
    # guaranteed to resolve to loopback (plain DNS or /etc/hosts may send it anywhere).
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_transport_security(base_url: str) -> None:
    parts = urlsplit(base_url)
    if parts.scheme == "https":
        return
    if parts.scheme == "http" and is_loopback(parts.hostname or ""):
        return
    raise InsecureTransportError(
        f"refusing to send an API key to {parts.scheme}://{parts.hostname}: "
        "plain http is allowed only to a loopback host; use https"
    )


class Client:
    def __init__(
        self,
        base_urls: dict[Provider, str],
        keys: dict[Provider, str | None],
        *,
        on_request: RequestHook | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        max_attempts: int = 4,
        backoff_base: float = 1.0,
        backoff_cap: float = 30.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.base_urls = {p: u.rstrip("/") for p, u in base_urls.items()}
        self._keys = dict(keys)
        self.on_request = on_request
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._http = httpx.AsyncClient(
            timeout=timeout,
            transport=transport,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def has_key(self, provider: Provider) -> bool:
        return bool(self._keys.get(provider))

    # -- the provider calls ------------------------------------------------------------

    async def generate(self, spec: JobSpec, *, gate: Gate | None = None) -> SubmitAnswer:
        adapter = get(spec.provider)
        request = adapter.submit_request(spec)
        attempt = 0
        while True:
            attempt += 1
            if gate is not None:
                await gate()
            try:
                status, body, headers = await self._send(spec.provider, request)
                return adapter.parse_submit(status, body, headers)
            except TransportError as exc:
                if exc.sent:
                    raise OutcomeUnknown(
                        f"the job was sent but no answer came back ({exc.message})",
                        provider=spec.provider,
                    ) from exc
                error: ApiError = exc
            except ProtocolError as exc:
                raise OutcomeUnknown(
                    f"the job was sent but the answer was unreadable ({exc.message})",
                    provider=spec.provider,
                    http_status=exc.http_status,
                ) from exc
            except ServerError as exc:
                # Even the provider's own 5xx error object comes from the handler that
                # creates (and charges) tasks: it may have failed after doing so, and a
                # resend would then charge twice (the fault soak's fault_after_accept
                # variant showed exactly that). The seedance15pro docs' "retry with
                # backoff" is left to the user, who sees the orphan and its reason.
                raise OutcomeUnknown(
                    f"the job was sent and the server answered with an error ({exc})",
                    provider=spec.provider,
                    http_status=exc.http_status,
                ) from exc
            except RateLimitError as exc:
                error = exc
            if attempt >= self.max_attempts:
                raise error
            await self._sleep(self._delay(attempt, error))

    async def status(self, provider: Provider, task_id: str) -> TaskUpdate:
        """One status request; no retry (the scheduler decides when to try again)."""
        adapter = get(provider)
        status, body, headers = await self._send(provider, adapter.status_request(task_id))
        return adapter.parse_status(status, body, headers)

    # -- plumbing ----------------------------------------------------------------------

    def _delay(self, attempt: int, error: ApiError) -> float:
        if error.retry_after is not None:
            return min(error.retry_after, 120.0)
        ceiling = min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1))
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)  # "equal jitter"

    async def _send(
        self, provider: Provider, request: RequestSpec
    ) -> tuple[int, bytes, dict[str, str]]:
        base = self.base_urls[provider]
        check_transport_security(base)
        key = self._keys.get(provider)
        if not key:
            raise ApiError(f"no API key for {provider.value}", provider=provider, code="NO_KEY")
        started = time.monotonic()
        status: int | None = None
        sent = True
        error_text: str | None = None
        try:
            response = await self._http.request(
                request.method,
                base + request.path,
                json=request.json,
                params=request.params or None,
                headers={"Authorization": f"Bearer {key}"},
            )
            status = response.status_code
            return status, response.content, {k.lower(): v for k, v in response.headers.items()}
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            sent = False
            error_text = type(exc).__name__
            raise TransportError(
                f"cannot connect to {urlsplit(base).netloc} ({type(exc).__name__})",
                sent=False,
                provider=provider,
                retryable=True,
            ) from None
        except httpx.TimeoutException as exc:
            error_text = type(exc).__name__
            raise TransportError(
                f"no answer within the timeout ({type(exc).__name__})",
                sent=True,
                provider=provider,
                retryable=True,
            ) from None
        except httpx.HTTPError as exc:
            error_text = type(exc).__name__
            raise TransportError(
                f"the connection failed ({type(exc).__name__})",
                sent=True,
                provider=provider,
                retryable=True,
            ) from None
        finally:
            if self.on_request is not None:
                self.on_request(
                    RequestRecord(
                        provider,
                        request.endpoint,
                        status,
                        sent,
                        time.monotonic() - started,
                        error_text,
                    )
                )


# -- result media --------------------------------------------------------------------
#
# Result videos are fetched by a client of their own: no Authorization header is ever
# set on it (the links are public), and each hop of a redirect must be https or loopback.

MEDIA_TIMEOUT = httpx.Timeout(connect=10.0, read=60.0, write=10.0, pool=10.0)
MEDIA_CHUNK = 64 * 1024


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
    ) -> None:
        async def check_hop(request: httpx.Request) -> None:
            check_media_url(str(request.url))

        self._http = httpx.AsyncClient(
            timeout=timeout,
            transport=transport,
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
        MediaErrors, also while the body is read.
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
                yield MediaStream(start, total, _guarded(response.aiter_raw(MEDIA_CHUNK)))
        except httpx.HTTPError as exc:
            raise MediaError(f"the download broke off ({type(exc).__name__})") from None


async def _no_chunks() -> AsyncIterator[bytes]:
    return
    yield b""  # pragma: no cover - makes this an async generator


async def _guarded(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    try:
        async for chunk in chunks:
            yield chunk
    except httpx.HTTPError as exc:
        raise MediaError(f"the download broke off ({type(exc).__name__})") from None
