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
  * a 429 (the server refused it), after Retry-After;
  * a 5xx whose body is the provider's own error object (its handler ran and
    reported failure; the seedance15pro docs say "retry with exponential backoff").
A read timeout, a connection broken after the request was sent, an unreadable 2xx or
a bare 5xx (a proxy's page) leave the outcome unknown: `OutcomeUnknown` is raised and
the engine marks the task `orphaned` so the user sees it, rather than risk a double
charge.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import time
from collections.abc import Awaitable, Callable
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
    if host in ("localhost",) or host.endswith(".localhost"):
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
                if not exc.code:
                    raise OutcomeUnknown(
                        f"the job was sent and the server failed without saying why ({exc})",
                        provider=spec.provider,
                        http_status=exc.http_status,
                    ) from exc
                error = exc
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
