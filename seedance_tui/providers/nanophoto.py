"""nanophoto.ai's Seedance 1.5 Pro API (`api-docs/nanophoto-seedance-1-5-pro.txt`)."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from ..models import (
    CreditQuote,
    JobSpec,
    JobValidationError,
    Mode,
    Provider,
    TaskStatus,
    TaskUpdate,
)
from .base import (
    ApiError,
    AuthError,
    BadRequestError,
    InsufficientCreditsError,
    NotFoundError,
    ProtocolError,
    RateLimitError,
    RequestSpec,
    ServerError,
    SubmitAnswer,
    accepted,
    check_choice,
    check_images,
    check_prompt,
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
RESOLUTIONS = ("480p", "720p", "1080p")
DURATIONS = ("4", "8", "12")
ASPECTS = ("landscape", "portrait")
ASPECT_ALIASES = {"16:9": "landscape", "9:16": "portrait"}

# API prices (2× the web prices); audio doubles them. DESIGN.md, "credits (API)".
PRICES: dict[tuple[str, str], int] = {
    ("480p", "4"): 2, ("480p", "8"): 4, ("480p", "12"): 6,
    ("720p", "4"): 4, ("720p", "8"): 8, ("720p", "12"): 12,
    ("1080p", "4"): 8, ("1080p", "8"): 16, ("1080p", "12"): 22,
}  # fmt: skip

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


class Nanophoto:
    name = NAME
    default_base_url = "https://nanophoto.ai"
    env_key = "NANOPHOTO_API_KEY"
    env_base_url = "NANOPHOTO_BASE_URL"
    requests_per_hour: int | None = 100

    # -- jobs --------------------------------------------------------------------------

    def defaults(self) -> dict[str, Any]:
        return {"aspect_ratio": "landscape", "resolution": "720p", "duration": "4",
                "audio": False, "fixed_lens": False}  # fmt: skip

    def choices(self) -> dict[str, tuple[str, ...]]:
        return {"aspect_ratio": ASPECTS, "resolution": RESOLUTIONS, "duration": DURATIONS}

    def validate(self, spec: JobSpec) -> JobSpec:
        if spec.provider is not NAME:
            raise JobValidationError("provider", f"expected {NAME.value}")
        check_prompt(spec.prompt)
        urls = check_images(spec)
        defaults = self.defaults()
        aspect = spec.aspect_ratio or defaults["aspect_ratio"]
        aspect = check_choice(
            "aspect_ratio", ASPECT_ALIASES.get(aspect, aspect), ASPECTS + tuple(ASPECT_ALIASES)
        )
        resolution = check_choice(
            "resolution", spec.resolution or defaults["resolution"], RESOLUTIONS
        )
        duration = check_choice("duration", str(spec.duration or defaults["duration"]), DURATIONS)
        return dataclasses.replace(
            spec,
            image_urls=urls,
            aspect_ratio=aspect,
            resolution=resolution,
            duration=duration,
            fixed_lens=bool(spec.fixed_lens),
        )

    def quote(self, spec: JobSpec) -> CreditQuote:
        spec = self.validate(spec)
        base = PRICES[(spec.resolution, spec.duration)]
        credits = base * 2 if spec.audio else base
        basis = f"{spec.resolution} {spec.duration}s = {base}" + (" ×2 audio" if spec.audio else "")
        return CreditQuote(NAME, credits, basis)

    # -- wire --------------------------------------------------------------------------

    def submit_request(self, spec: JobSpec) -> RequestSpec:
        spec = self.validate(spec)
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
        return RequestSpec(
            "POST",
            "/api/seedance-1-5-pro/generate",
            "generate",
            json=body.model_dump(exclude_none=True),
        )

    def status_request(self, task_id: str) -> RequestSpec:
        return RequestSpec(
            "POST", "/api/seedance-1-5-pro/check-status", "status", json={"taskId": task_id}
        )

    def parse_submit(self, status: int, body: bytes, headers: dict[str, str]) -> SubmitAnswer:
        fields = self._answer(status, body, headers)
        if not fields.task_id:
            raise ProtocolError(
                "the generate answer has no usable taskId", provider=NAME, http_status=status
            )
        return SubmitAnswer(
            fields.task_id,
            accepted(
                lambda: self._update(fields, status, default=TaskStatus.PROCESSING),
                fields.task_id,
                fields.credits,
                fields.status,
                fields.oddities,
            ),
        )

    def parse_status(self, status: int, body: bytes, headers: dict[str, str]) -> TaskUpdate:
        fields = self._answer(status, body, headers)
        if not fields.task_id:
            raise ProtocolError(
                "the status answer has no usable taskId", provider=NAME, http_status=status
            )
        return self._update(fields, status, default=None)

    # -- parsing -----------------------------------------------------------------------

    def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> Fields:
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
            raise self._error(fields, status, headers)
        return fields

    def _error(self, fields: Fields, status: int, headers: dict[str, str]) -> ApiError:
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

    def _update(self, fields: Fields, status: int, default: TaskStatus | None) -> TaskUpdate:
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


adapter = Nanophoto()
