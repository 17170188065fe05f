"""nanophoto's wire format: the generate body and the answers, as pydantic models.

Imported when a request is built or an answer read (`Nanophoto.submit_request`,
`parse_submit`, `parse_status`), not by what only validates and prices a job: building
these models is most of the providers' import cost.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from ..models import JobSpec, Mode, Provider, TaskStatus, TaskUpdate
from .base import (
    ApiError,
    AuthError,
    BadRequestError,
    InsufficientCreditsError,
    NotFoundError,
    ProtocolError,
    RateLimitError,
    ServerError,
    SubmitAnswer,
    accepted,
    credits_field,
    error_for_status,
    load_json,
    parse_retry_after,
    seconds_field,
    string_field,
    task_id_field,
    text_field,
)

NAME = Provider.NANOPHOTO

_ERRORS: dict[str, type[ApiError]] = {
    "LOGIN_REQUIRED": AuthError,
    "INVALID_API_KEY": AuthError,
    "API_KEY_RATE_LIMIT_EXCEEDED": RateLimitError,
    "INSUFFICIENT_CREDITS": InsufficientCreditsError,
    "PROMPT_REQUIRED": BadRequestError,
    "PROMPT_LENGTH_INVALID": BadRequestError,
    "IMAGE_REQUIRED": BadRequestError,
    "IMAGE_URLS_REQUIRED": BadRequestError,
    "TASK_ID_REQUIRED": BadRequestError,
    "TASK_NOT_FOUND": NotFoundError,
    "GENERATION_FAILED": ServerError,
    "INTERNAL_ERROR": ServerError,
}


class GenerateRequest(BaseModel):
    """The body of POST /api/seedance-1-5-pro/generate, in the API's own field names."""

    model_config = ConfigDict(extra="forbid")

    prompt: str
    mode: Literal["textToVideo", "imageToVideo"]
    imageUrls: list[str] | None = None
    aspectRatio: Literal["portrait", "landscape"]
    resolution: Literal["480p", "720p", "1080p"]
    duration: Literal["4", "8", "12"]
    generateAudio: bool | None = None
    fixedLens: bool | None = None


class Answer(BaseModel):
    """Any JSON object the API returns: tolerant of fields it may add, and of fields of
    the wrong type, which `_read` drops one by one (see `base.credits_field`)."""

    model_config = ConfigDict(extra="allow")

    status: Any = None
    taskId: Any = None
    creditsUsed: Any = None
    videoUrl: Any = None
    generationTime: Any = None
    error: Any = None
    errorCode: Any = None
    requiredCredits: Any = None


@dataclasses.dataclass(frozen=True, slots=True)
class Fields:
    """An answer's fields, each usable or None; what was dropped is in `oddities`."""

    status: str | None
    task_id: str | None
    credits: int | None
    video_url: str | None
    generation_time: float | None
    error: Any
    error_code: str | None
    required_credits: int | None
    oddities: tuple[str, ...]


def _read(answer: Answer) -> Fields:
    odd: list[str] = []
    status = answer.status
    if status is not None and not isinstance(status, str):
        odd.append(f"status={text_field(status, 40)} is not a word")
        status = text_field(status, 40)
    code = answer.errorCode
    if code is not None and not isinstance(code, str):
        code = text_field(code, 60)
    return Fields(
        status=status,
        task_id=task_id_field(answer.taskId),
        credits=credits_field(answer.creditsUsed, "creditsUsed", odd),
        video_url=string_field(answer.videoUrl, "videoUrl", odd, limit=8192),
        generation_time=seconds_field(answer.generationTime, "generationTime", odd),
        error=answer.error,
        error_code=code,
        required_credits=credits_field(answer.requiredCredits, "requiredCredits", odd),
        oddities=tuple(odd),
    )


def generate_body(spec: JobSpec) -> dict[str, Any]:
    """The JSON body of a generate request for a validated spec; optional fields only
    when set (never null), `duration` a string."""
    body = GenerateRequest(
        prompt=spec.prompt,
        mode="imageToVideo" if spec.mode is Mode.IMAGE_TO_VIDEO else "textToVideo",
        imageUrls=list(spec.image_urls) or None,
        aspectRatio=spec.aspect_ratio,
        resolution=spec.resolution,
        duration=spec.duration,
        generateAudio=spec.audio,
        fixedLens=spec.fixed_lens,
    )
    return body.model_dump(exclude_none=True)


def parse_submit(status: int, body: bytes, headers: dict[str, str]) -> SubmitAnswer:
    fields = answer_fields(status, body, headers)
    if not fields.task_id:
        raise ProtocolError(
            "the generate answer has no usable taskId", provider=NAME, http_status=status
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
            "the status answer has no usable taskId", provider=NAME, http_status=status
        )
    return update(fields, status, default=None)


def answer_fields(status: int, body: bytes, headers: dict[str, str]) -> Fields:
    data = load_json(NAME, status, body)
    if not isinstance(data, dict):
        raise ProtocolError(
            f"expected a JSON object, got {type(data).__name__}",
            provider=NAME,
            http_status=status,
        )
    try:
        answer = Answer.model_validate(data)
    except ValidationError as exc:  # only a key that is not a string can get here
        raise ProtocolError(
            f"unexpected answer: {_first_error(exc)}",
            provider=NAME,
            http_status=status,
            retryable=status >= 500,
        ) from None
    fields = _read(answer)
    if status >= 400 or fields.error_code or (fields.error and fields.status is None):
        raise _error(fields, status, headers)
    return fields


def _error(fields: Fields, status: int, headers: dict[str, str]) -> ApiError:
    code = fields.error_code
    cls = _ERRORS.get(code or "") or error_for_status(status if status >= 400 else 500)
    message = text_field(fields.error) or f"HTTP {status}"
    retry_after = parse_retry_after(headers)
    details = {"required_credits": fields.required_credits} if fields.required_credits else {}
    return cls(
        message,
        provider=NAME,
        code=code,
        http_status=status,
        retryable=cls in (RateLimitError, ServerError),
        retry_after=retry_after,
        details=details,
    )


def update(fields: Fields, status: int, default: TaskStatus | None) -> TaskUpdate:
    raw = (fields.status or "").lower()
    mapping = {
        "processing": TaskStatus.PROCESSING,
        "completed": TaskStatus.COMPLETED,
        "failed": TaskStatus.FAILED,
    }
    normalised = mapping.get(raw, default)
    if normalised is None:
        raise ProtocolError(
            f"undocumented status {text_field(fields.status, 40)!r}",
            provider=NAME,
            http_status=status,
            retryable=True,
        )
    urls: tuple[str, ...] = ()
    if normalised is TaskStatus.COMPLETED:
        if not fields.video_url:
            raise ProtocolError(
                "completed without a videoUrl",
                provider=NAME,
                http_status=status,
                retryable=True,
            )
        urls = (fields.video_url,)
    error = text_field(fields.error) if normalised is TaskStatus.FAILED else None
    if normalised is TaskStatus.FAILED and not error:
        error = "the render failed (the provider gave no reason)"
    summary = f"{text_field(raw, 40) or normalised.value}"
    if fields.credits is not None:
        summary += f" credits={fields.credits}"
    if fields.generation_time is not None:
        summary += f" time={fields.generation_time:g}s"
    return TaskUpdate(
        task_id=fields.task_id or "",
        status=normalised,
        credits_charged=fields.credits,
        video_urls=urls,
        error=error,
        generation_time=fields.generation_time,
        summary=summary,
        oddities=fields.oddities,
    )


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ()))
    return f"{where}: {err.get('msg', 'invalid')}"
