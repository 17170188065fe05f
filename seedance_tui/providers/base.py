"""What every provider module offers, and the typed errors they raise. Pure: no I/O."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol
from urllib.parse import urlsplit

from ..models import (
    CreditQuote,
    JobSpec,
    JobValidationError,
    Mode,
    PreparedJob,
    Provider,
    TaskStatus,
    TaskUpdate,
    js_length,
)

MAX_PROMPT = 1000
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


# -- errors ----------------------------------------------------------------------------


class ApiError(Exception):
    """A request did not produce a usable answer.

    `retryable` says whether sending the same request again may succeed;
    `retry_after` (seconds) is the server's word on when.
    """

    kind: ClassVar[str] = "api"

    def __init__(
        self,
        message: str,
        *,
        provider: Provider | None = None,
        code: str | None = None,
        http_status: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.code = code
        self.http_status = http_status
        self.retryable = retryable
        self.retry_after = retry_after
        self.details = details or {}

    def __str__(self) -> str:
        where = f"{self.provider.value}: " if self.provider else ""
        code = f" [{self.code}]" if self.code else ""
        status = f" (HTTP {self.http_status})" if self.http_status else ""
        return f"{where}{self.message}{code}{status}"

    @property
    def hint(self) -> str:
        """What the user can do about it."""
        return ""


class AuthError(ApiError):
    kind = "auth"

    @property
    def hint(self) -> str:
        if self.provider is None:
            return "check the API key: `seedance-tui key list` shows where each one comes from"
        from ..hosts import HOSTS, key_set_command

        command = key_set_command(self.provider)
        return f"check the API key: `{command}` or {HOSTS[self.provider].env_key}"


class InsufficientCreditsError(ApiError):
    kind = "credits"

    @property
    def hint(self) -> str:
        need = self.details.get("required_credits")
        return f"top up the account{f' (this job needs {need} credits)' if need else ''}"


class RateLimitError(ApiError):
    kind = "rate_limit"

    @property
    def hint(self) -> str:
        return "the provider's rate limit was hit; requests resume after its Retry-After"


class BadRequestError(ApiError):
    kind = "bad_request"


class NotFoundError(ApiError):
    kind = "not_found"


class ServerError(ApiError):
    kind = "server"


class ProtocolError(ApiError):
    """The server answered with something we cannot read (not JSON, wrong shape)."""

    kind = "protocol"


class TransportError(ApiError):
    """No answer: connection refused or reset, a timeout.

    `sent` tells whether the request may have reached the server, which decides
    whether a non-idempotent request can be retried.
    """

    kind = "transport"

    def __init__(self, message: str, *, sent: bool, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.sent = sent


def error_for_status(status: int) -> type[ApiError]:
    if status in (401, 403):
        return AuthError
    if status == 402:
        return InsufficientCreditsError
    if status == 429:
        return RateLimitError
    if status == 404:
        return NotFoundError
    if 400 <= status < 500:
        return BadRequestError
    return ServerError


# -- requests --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RequestSpec:
    """An HTTP request, described; `client.py` sends it."""

    method: str
    path: str
    endpoint: str  # "generate" or "status": what the request ledger records
    json: dict[str, Any] | None = None
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SubmitAnswer:
    task_id: str
    update: TaskUpdate


class ProviderAdapter(Protocol):
    name: Provider
    requests_per_hour: int | None  # its host's limit (`hosts.py`)

    def validate(self, spec: JobSpec) -> JobSpec: ...
    def prepare(self, spec: JobSpec) -> PreparedJob: ...
    def quote(self, spec: JobSpec) -> CreditQuote: ...
    def defaults(self) -> dict[str, Any]: ...
    def choices(self) -> dict[str, tuple[str, ...]]: ...
    def submit_request(self, job: PreparedJob | JobSpec) -> RequestSpec: ...
    def status_request(self, task_id: str) -> RequestSpec: ...
    def parse_submit(self, status: int, body: bytes, headers: dict[str, str]) -> SubmitAnswer: ...
    def parse_status(self, status: int, body: bytes, headers: dict[str, str]) -> TaskUpdate: ...


# -- shared checks ---------------------------------------------------------------------


def check_text(field_name: str, value: str) -> str:
    """Refuse text that cannot be sent as UTF-8: lone surrogates, which is what Python
    makes of invalid UTF-8 bytes in a command line or a file read with surrogateescape."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise JobValidationError(
            field_name,
            f"contains bytes that are not valid UTF-8 text (at character {exc.start + 1}); "
            "check the terminal's or the file's encoding",
        ) from None
    return value


def check_prompt(prompt: str) -> str:
    if not prompt or not prompt.strip():
        raise JobValidationError("prompt", "is empty: describe the video to generate")
    check_text("prompt", prompt)
    length = js_length(prompt)
    if length > MAX_PROMPT:
        # Say why the count is above what the user sees only when it is: a character
        # outside the BMP (most emoji) is two UTF-16 units, as the servers count.
        why = " (emoji count as 2)" if length > len(prompt) else ""
        raise JobValidationError(
            "prompt", f"is {length} characters; the limit is {MAX_PROMPT}{why}"
        )
    return prompt


def check_image_url(url: str) -> str:
    """The APIs take public image URLs only: no data: URIs, no base64, no local files."""
    text = check_text("image_urls", url).strip()
    if not text:
        raise JobValidationError("image_urls", "an image URL is empty")
    if text.lower().startswith("data:"):
        raise JobValidationError(
            "image_urls", "data:/base64 images are not accepted by the API; give a public URL"
        )
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise JobValidationError("image_urls", f"{_short(text)!r} is not a public http(s) URL")
    if _CONTROL.search(text) or " " in text:
        raise JobValidationError(
            "image_urls", f"{_short(text)!r} contains spaces or control characters"
        )
    return text


def check_images(spec: JobSpec) -> tuple[str, ...]:
    """The job's image URLs, checked, and consistent with its mode."""
    urls = tuple(check_image_url(u) for u in spec.image_urls)
    if spec.mode is Mode.IMAGE_TO_VIDEO and not urls:
        raise JobValidationError("image_urls", "image-to-video needs at least one public image URL")
    if spec.mode is Mode.TEXT_TO_VIDEO and urls:
        raise JobValidationError(
            "image_urls", "given with text-to-video: choose image-to-video or remove them"
        )
    return urls


# -- answer fields ---------------------------------------------------------------------
#
# A server's answer is read field by field: a field of the wrong type or out of range is
# dropped and the oddity noted (the engine records it as an event), never allowed to
# discard the rest of the answer. Above all a task id the server named is kept: the job
# exists, and may be charged, whatever else the answer says.

MAX_CREDITS = 1_000_000  # credits of one task: more is not a price, it is an error
MAX_GENERATION_SECONDS = 86_400.0  # one day: a longer render time is not believable
MAX_TASK_ID = 512  # characters of a provider's task id


def _preview(value: Any, limit: int = 40) -> str:
    try:
        text = json.dumps(value, allow_nan=True) if not isinstance(value, str) else repr(value)
    except (TypeError, ValueError):
        text = type(value).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def task_id_field(value: Any) -> str | None:
    """The task id an answer names: a non-empty string (or a whole number, as text) of at
    most MAX_TASK_ID characters; None when there is none that could be polled."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str):
        return None
    value = value.strip()
    if not value or len(value) > MAX_TASK_ID:
        return None
    return value


def _number(value: Any) -> float | None:
    """A JSON number (or a numeric string) as a float; None for anything else."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return float(value) if abs(value) < 10**300 else math.inf
    if isinstance(value, float):
        return value
    if isinstance(value, str) and 0 < len(value) <= 40:
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def credits_field(value: Any, name: str, oddities: list[str]) -> int | None:
    """A credit count in 0..MAX_CREDITS (a whole number); else None, and the oddity noted."""
    if value is None:
        return None
    number = _number(value)
    if number is not None and math.isfinite(number) and number == int(number):
        credits = int(number)
        if 0 <= credits <= MAX_CREDITS:
            return credits
    oddities.append(f"{name}={_preview(value)} ignored (not a credit count in 0..{MAX_CREDITS})")
    return None


def seconds_field(value: Any, name: str, oddities: list[str]) -> float | None:
    """A render time in 0..MAX_GENERATION_SECONDS, finite; else None, and the oddity noted."""
    if value is None:
        return None
    number = _number(value)
    if number is not None and math.isfinite(number) and 0 <= number <= MAX_GENERATION_SECONDS:
        return float(number)
    oddities.append(
        f"{name}={_preview(value)} ignored (not a render time in 0..{MAX_GENERATION_SECONDS:g} s)"
    )
    return None


def string_field(value: Any, name: str, oddities: list[str], limit: int = 2000) -> str | None:
    """A field that must be a string: anything else is dropped, and the oddity noted."""
    if value is None or isinstance(value, str):
        return None if value is None else value[:limit]
    oddities.append(f"{name}={_preview(value)} ignored (not a string)")
    return None


def url_list_field(value: Any, name: str, oddities: list[str]) -> tuple[str, ...]:
    """A list of URL strings; other items (or a value that is not a list) are dropped."""
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        oddities.append(f"{name}={_preview(value)} ignored (not a list of URLs)")
        return ()
    urls = tuple(u for u in value if isinstance(u, str) and 0 < len(u) <= 8192)
    if len(urls) != len(value):
        oddities.append(f"{name}: {len(value) - len(urls)} item(s) that are not URLs ignored")
    return urls


def accepted(
    update: Callable[[], TaskUpdate],
    task_id: str,
    credits: int | None,
    status_text: Any,
    oddities: list[str] | tuple[str, ...] = (),
) -> TaskUpdate:
    """A generate answer with a task id is never thrown away: the job exists (and may be
    charged) whatever else the answer says, so an unreadable rest still means
    `processing`; polling tells the rest."""
    try:
        return update()
    except ProtocolError as exc:
        return TaskUpdate(
            task_id=task_id,
            status=TaskStatus.PROCESSING,
            credits_charged=credits,
            summary=f"accepted ({text_field(status_text, 40)})",
            oddities=(*oddities, f"the rest of the answer was unusable: {exc.message}"),
        )


def check_choice(field_name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise JobValidationError(
            field_name, f"{_short(str(value))!r} is not one of {', '.join(allowed)}"
        )
    return value


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def load_json(provider: Provider, status: int, body: bytes) -> Any:
    """Decode a body or raise a ProtocolError that says what came back."""
    try:
        return json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError):
        # ValueError covers bad UTF-8 and bad JSON, and also an integer too long for
        # Python to convert; RecursionError is JSON nested deeper than the stack.
        preview = body[:80].decode("utf-8", "replace")
        raise ProtocolError(
            f"the server sent an answer that is not JSON: {preview!r}",
            provider=provider,
            http_status=status,
            retryable=True,
        ) from None


def text_field(value: Any, limit: int = 2000) -> str | None:
    """A server-supplied string, bounded; anything else becomes its JSON text."""
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value)[:limit]
    return text[:limit]


def parse_retry_after(headers: dict[str, str], cap: float = 3600.0) -> float | None:
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            import time

            seconds = parsedate_to_datetime(raw).timestamp() - time.time()
        except (TypeError, ValueError, IndexError):
            return None
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), cap)
