"""seedance1-5pro.com's wire format: the generate body and the answers (an envelope
around `data`), as pydantic models.

Imported when a request is built or an answer read (`Seedance15Pro.submit_request`,
`parse_submit`, `parse_status`), not by what only validates and prices a job.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from ..models import JobSpec, Provider, TaskStatus, TaskUpdate
from .base import (
    ProtocolError,
    RateLimitError,
    ServerError,
    SubmitAnswer,
    accepted,
    credits_field,
    error_for_status,
    load_json,
    parse_retry_after,
    task_id_field,
    text_field,
    url_list_field,
)

NAME = Provider.SEEDANCE15PRO
# The API requires aspect_ratio even when images make it moot; this is what we send then.
ASPECT_WITH_IMAGES = "16:9"


class GenerateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str
    aspect_ratio: Literal["16:9", "9:16", "1:1"]
    duration: Literal["5", "10"]
    sound: bool | None = None
    image_urls: list[str] | None = None


class TaskData(BaseModel):
    """`data` of an answer: every field is read on its own (see `_read`), so that one of
    the wrong type is dropped rather than the answer refused."""

    model_config = ConfigDict(extra="allow")

    task_id: Any = None
    status: Any = None
    request: Any = None
    response: Any = None
    consumed_credits: Any = None
    error_message: Any = None
    created_at: Any = None


class Envelope(BaseModel):
    model_config = ConfigDict(extra="allow")

    code: Any = None
    message: Any = None
    data: Any = None


@dataclasses.dataclass(frozen=True, slots=True)
class Fields:
    """`data`'s fields, each usable or None; what was dropped is in `oddities`."""

    task_id: str | None
    status: str | None
    urls: tuple[str, ...]
    credits: int | None
    error: Any
    oddities: tuple[str, ...]


def _read(data: TaskData, odd: list[str]) -> Fields:
    status = data.status
    if status is not None and not isinstance(status, str):
        odd.append(f"status={text_field(status, 40)} is not a word")
        status = text_field(status, 40)
    return Fields(
        task_id=task_id_field(data.task_id),
        status=status,
        urls=url_list_field(data.response, "response", odd),
        credits=credits_field(data.consumed_credits, "consumed_credits", odd),
        error=data.error_message,
        oddities=tuple(odd),
    )


def _code(value: Any, odd: list[str]) -> int | None:
    """The envelope's `code`: a whole number (or its text), else None and noted."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit() and len(value) < 10:
        return int(value)
    odd.append(f"code={text_field(value, 40)} ignored (not a number)")
    return None


def generate_body(spec: JobSpec) -> dict[str, Any]:
    """The JSON body of a generate request for a validated spec; optional fields only
    when set (never null), `aspect_ratio` always (the API lists it as required)."""
    body = GenerateRequest(
        prompt=spec.prompt,
        aspect_ratio=spec.aspect_ratio or ASPECT_WITH_IMAGES,
        duration=spec.duration,
        sound=spec.audio,
        image_urls=list(spec.image_urls) or None,
    )
    return body.model_dump(exclude_none=True)


def parse_submit(status: int, body: bytes, headers: dict[str, str]) -> SubmitAnswer:
    fields = answer_fields(status, body, headers)
    if not fields.task_id:
        raise ProtocolError(
            "the generate answer has no usable task_id", provider=NAME, http_status=status
        )
    return SubmitAnswer(
        fields.task_id,
        accepted(
            lambda: update(fields, status, default=TaskStatus.PROCESSING),
            fields.task_id,
            fields.credits,
            fields.status,
            fields.oddities,
        ),
    )


def parse_status(status: int, body: bytes, headers: dict[str, str]) -> TaskUpdate:
    fields = answer_fields(status, body, headers)
    if not fields.task_id:
        raise ProtocolError(
            "the status answer has no usable task_id", provider=NAME, http_status=status
        )
    return update(fields, status, default=None)


def answer_fields(status: int, body: bytes, headers: dict[str, str]) -> Fields:
    raw = load_json(NAME, status, body) if body.strip() or status < 400 else {}
    if not isinstance(raw, dict):
        raise ProtocolError(
            f"expected a JSON object, got {type(raw).__name__}",
            provider=NAME,
            http_status=status,
        )
    try:
        envelope = Envelope.model_validate(raw)
    except ValidationError as exc:  # only a key that is not a string can get here
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err.get("loc", ()))
        raise ProtocolError(
            f"unexpected answer: {where}: {err.get('msg')}",
            provider=NAME,
            http_status=status,
            retryable=status >= 500,
        ) from None
    odd: list[str] = []
    code = _code(envelope.code, odd)
    failing = status >= 400 or (code is not None and code != 200)
    if failing:
        effective = status if status >= 400 else (code if code and code >= 400 else 500)
        cls = error_for_status(effective)
        return_message = text_field(envelope.message) or f"HTTP {effective}"
        raise cls(
            return_message,
            provider=NAME,
            code=str(code)[:20] if code is not None else None,
            http_status=status,
            retryable=cls in (RateLimitError, ServerError),
            retry_after=parse_retry_after(headers),
        )
    if envelope.data is None:
        raise ProtocolError("the answer has no data", provider=NAME, http_status=status)
    if not isinstance(envelope.data, dict):
        raise ProtocolError(
            f"the answer's data is not an object ({type(envelope.data).__name__})",
            provider=NAME,
            http_status=status,
        )
    try:
        data = TaskData.model_validate(envelope.data)
    except ValidationError:  # a key that is not a string
        raise ProtocolError(
            "the answer's data is not an object", provider=NAME, http_status=status
        ) from None
    return _read(data, odd)


def update(fields: Fields, status: int, default: TaskStatus | None) -> TaskUpdate:
    raw = (fields.status or "").upper()
    mapping = {
        "IN_PROGRESS": TaskStatus.PROCESSING,
        "SUCCESS": TaskStatus.COMPLETED,
        "FAILED": TaskStatus.FAILED,
    }
    normalised = mapping.get(raw, default if not raw else None)
    if normalised is None:
        raise ProtocolError(
            f"undocumented status {text_field(fields.status, 40)!r}",
            provider=NAME,
            http_status=status,
            retryable=True,
        )
    urls = fields.urls
    if normalised is TaskStatus.COMPLETED and not urls:
        raise ProtocolError(
            "SUCCESS without media URLs", provider=NAME, http_status=status, retryable=True
        )
    error = text_field(fields.error) if normalised is TaskStatus.FAILED else None
    if normalised is TaskStatus.FAILED and not error:
        error = "the render failed (the provider gave no reason)"
    summary = text_field(raw, 40) or normalised.value
    if fields.credits is not None:
        summary += f" credits={fields.credits}"
    return TaskUpdate(
        task_id=fields.task_id or "",
        status=normalised,
        credits_charged=fields.credits,
        video_urls=urls,
        error=error,
        summary=summary,
        oddities=fields.oddities,
    )
