"""The API client: one request at a time, each bounded in time and size.

One shared `httpx.AsyncClient`; the key in the Authorization header and nowhere else; a
refusal to send a key over plain http to a host that is not loopback.

Bounds. httpx's timeouts are per read: a server that drips one byte a second never
trips them. Every request therefore also has a total deadline (`deadline`, from the
first byte sent to the last byte read), and an answer is read only up to
`max_answer_bytes` (an answer says little that needs more than a few kilobytes): more is
refused as `AnswerTooLarge`, without reading the rest.

What a failure means. The client sends each request once and says precisely what
happened; the ledger (`ledger.py`) decides whether to send again. For `generate`, which
is not idempotent (neither API takes an idempotency key or lists tasks):
  * `TransportError` with `sent=False`: the connection was never made, nothing left;
  * `RateLimitError` (429): the provider's rate limiter refused it before any work;
  * other refusals (401, 402, 400...): the provider said no, nothing was created;
  * `OutcomeUnknown`: the request left and no trustworthy answer came back (a read
    timeout, the deadline, a connection broken after sending, an unreadable or
    oversized 2xx, any 5xx): the job may have been created and charged.
"""

from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from ..models import JobSpec, PreparedJob, Provider, TaskUpdate
from ..providers import (
    ApiError,
    ProtocolError,
    RequestSpec,
    ServerError,
    SubmitAnswer,
    TransportError,
    get,
)
from .tls import shared_tls_context

DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=30.0, write=10.0, pool=10.0)
# The longest one API request may take, all of it; longer than the connect timeout, so
# that a connection never made always reads as "not sent".
DEFAULT_DEADLINE = 45.0
MAX_ANSWER_BYTES = 1 << 20  # 1 MiB
USER_AGENT = "seedance-tui/0.1"


class InsecureTransportError(ApiError):
    kind = "insecure"


class OutcomeUnknown(ApiError):
    """A `generate` was sent and no trustworthy answer came back: it may have been accepted."""

    kind = "unknown"


class AnswerTooLarge(ProtocolError):
    """The answer is larger than `max_answer_bytes`; it was not read."""

    kind = "too_large"


@dataclass(slots=True)
class Exchange:
    """What the ledger learns of one request as it goes."""

    started: bool = False  # the request was handed to the network (it may have left)
    http_status: int | None = None  # the answer's status, once its head arrived


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
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        deadline: float = DEFAULT_DEADLINE,
        max_answer_bytes: int = MAX_ANSWER_BYTES,
    ) -> None:
        self.base_urls = {p: u.rstrip("/") for p, u in base_urls.items()}
        self._keys = dict(keys)
        self.deadline = deadline
        self.max_answer_bytes = max_answer_bytes
        self._http = httpx.AsyncClient(
            timeout=timeout,
            transport=transport,
            verify=shared_tls_context(),  # one context for every client (tls.py)
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def host(self, provider: Provider) -> str:
        """Where this provider's requests go (host:port), for messages."""
        return urlsplit(self.base_urls.get(provider, "")).netloc or "the provider"

    # -- the provider calls ------------------------------------------------------------

    async def generate(
        self,
        job: PreparedJob | JobSpec,
        *,
        key: str | None = None,
        note: Exchange | None = None,
    ) -> SubmitAnswer:
        """Send one `generate` of a prepared job (a plain spec is prepared first). See the
        module's docstring for what each failure means."""
        provider = job.provider
        adapter = get(provider)
        request = adapter.submit_request(job)
        try:
            status, body, headers = await self._send(provider, request, key, note)
            return adapter.parse_submit(status, body, headers)
        except TransportError as exc:
            if exc.sent:
                raise OutcomeUnknown(
                    f"the job was sent but no answer came back ({exc.message})",
                    provider=provider,
                ) from exc
            raise
        except ProtocolError as exc:
            raise OutcomeUnknown(
                f"the job was sent but the answer was unreadable ({exc.message})",
                provider=provider,
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
                provider=provider,
                http_status=exc.http_status,
            ) from exc

    async def status(
        self,
        provider: Provider,
        task_id: str,
        *,
        key: str | None = None,
        note: Exchange | None = None,
    ) -> TaskUpdate:
        """One status request; no retry (the scheduler decides when to try again)."""
        adapter = get(provider)
        request = adapter.status_request(task_id)
        status, body, headers = await self._send(provider, request, key, note)
        return adapter.parse_status(status, body, headers)

    # -- plumbing ----------------------------------------------------------------------

    async def _send(
        self, provider: Provider, request: RequestSpec, key: str | None, note: Exchange | None
    ) -> tuple[int, bytes, dict[str, str]]:
        base = self.base_urls[provider]
        check_transport_security(base)
        key = key or self._keys.get(provider)
        if not key:
            raise ApiError(f"no API key for {provider.value}", provider=provider, code="NO_KEY")
        netloc = urlsplit(base).netloc
        try:
            async with asyncio.timeout(self.deadline):
                return await self._exchange(provider, base, request, key, note or Exchange())
        except TimeoutError:
            raise TransportError(
                f"no complete answer from {netloc} within {self.deadline:g} s",
                sent=True,
                provider=provider,
                retryable=True,
            ) from None
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise TransportError(
                f"cannot connect to {netloc} ({type(exc).__name__})",
                sent=False,
                provider=provider,
                retryable=True,
            ) from None
        except httpx.TimeoutException as exc:
            raise TransportError(
                f"no answer within the timeout ({type(exc).__name__})",
                sent=True,
                provider=provider,
                retryable=True,
            ) from None
        except httpx.HTTPError as exc:
            raise TransportError(
                f"the connection failed ({type(exc).__name__})",
                sent=True,
                provider=provider,
                retryable=True,
            ) from None

    async def _exchange(
        self, provider: Provider, base: str, request: RequestSpec, key: str, note: Exchange
    ) -> tuple[int, bytes, dict[str, str]]:
        """Send, then read the answer up to the size cap (the rest is never read)."""
        note.started = True
        async with self._http.stream(
            request.method,
            base + request.path,
            json=request.json,
            params=request.params or None,
            headers={"Authorization": f"Bearer {key}"},
        ) as response:
            status = note.http_status = response.status_code
            cap = self.max_answer_bytes
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > cap:
                raise self._too_large(provider, status, f"declares {int(declared):,} bytes")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > cap:
                    raise self._too_large(provider, status, f"ran past {cap:,} bytes")
            return status, bytes(body), {k.lower(): v for k, v in response.headers.items()}

    def _too_large(self, provider: Provider, status: int, what: str) -> AnswerTooLarge:
        return AnswerTooLarge(
            f"the answer {what}; answers over {self.max_answer_bytes:,} bytes are refused",
            provider=provider,
            http_status=status,
            retryable=True,
        )
