"""Fake of nanophoto.ai's Seedance 1.5 Pro API: flat JSON, `{"error","errorCode"}` errors."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..models import js_length
from .common import BadBody, ProviderApi, is_public_url, json_object, media_url
from .pricing import (
    NANOPHOTO,
    NANOPHOTO_ASPECT_RATIOS,
    NANOPHOTO_DURATIONS,
    NANOPHOTO_MODES,
    NANOPHOTO_RESOLUTIONS,
    PROMPT_MAX,
    nanophoto_credits,
)
from .state import SimState, SimTask

# Fields under which a browser client might send an uploaded image (not allowed via API).
_INLINE_IMAGE_FIELDS = ("image", "images", "imageBase64", "imageData", "imageUrl")


class Invalid(Exception):
    """A request the server refuses with 400 (or another status)."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def error(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, "errorCode": code, **extra}, status_code=status)


class NanophotoApi(ProviderApi):
    provider = NANOPHOTO

    def __init__(self, state: SimState) -> None:
        super().__init__(state)
        self.routes = [
            Route("/api/seedance-1-5-pro/generate", self.generate, methods=["POST"]),
            Route("/api/seedance-1-5-pro/check-status", self.check_status, methods=["POST"]),
        ]

    # ---- the provider's error answers ------------------------------------------------

    def login_required(self) -> Response:
        return error(401, "LOGIN_REQUIRED", "Authentication required")

    def invalid_key(self) -> Response:
        return error(401, "INVALID_API_KEY", "Invalid or expired API key")

    def rate_limited(self, retry_after: float) -> Response:
        limit = self.state.config.nanophoto_rate_limit or 100
        response = error(
            429, "API_KEY_RATE_LIMIT_EXCEEDED", f"Rate limit exceeded ({limit} req/hour)"
        )
        response.headers["Retry-After"] = str(int(retry_after))
        return response

    def server_error(self, on_generate: bool) -> Response:
        if on_generate:
            return error(500, "GENERATION_FAILED", "Video generation failed")
        return error(500, "INTERNAL_ERROR", "Internal server error")

    # ---- endpoints -----------------------------------------------------------------

    async def generate(self, request: Request) -> Response:
        return await self.guarded(request, self._generate, is_generate=True)

    async def check_status(self, request: Request) -> Response:
        return await self.guarded(request, self._check_status, is_generate=False)

    async def _generate(self, request: Request, digest: str) -> Response:
        try:
            body = await json_object(request)
            spec = validate_generate(body)
        except BadBody as exc:
            return error(400, "INVALID_REQUEST", str(exc))
        except Invalid as exc:
            return error(exc.status, exc.code, exc.message)
        cost = nanophoto_credits(spec["resolution"], spec["duration"], spec["generateAudio"])
        task = self.state.create_task(NANOPHOTO, digest, spec, cost)
        if task is None:
            return error(402, "INSUFFICIENT_CREDITS", "Insufficient credits", requiredCredits=cost)
        return JSONResponse({"status": "processing", "taskId": task.task_id, "creditsUsed": cost})

    async def _check_status(self, request: Request, digest: str) -> Response:
        try:
            body = await json_object(request)
        except BadBody as exc:
            return error(400, "INVALID_REQUEST", str(exc))
        task_id = body.get("taskId")
        if not isinstance(task_id, str) or not task_id.strip():
            return error(400, "TASK_ID_REQUIRED", "Missing task ID")
        task = self.state.find_task(NANOPHOTO, task_id.strip(), digest)
        if task is None:
            return error(404, "TASK_NOT_FOUND", "Task not found or not owned by user")
        return JSONResponse(status_body(task, request))


def status_body(task: SimTask, request: Request) -> dict[str, Any]:
    """check-status's answer, shaped exactly like the docs' samples."""
    if task.status == "completed":
        return {
            "status": "completed",
            "taskId": task.task_id,
            "videoUrl": media_url(request, task.task_id),
            "generationTime": round(task.gen_time),
        }
    if task.status == "failed":
        return {"status": "failed", "taskId": task.task_id, "error": task.error}
    return {"status": "processing", "taskId": task.task_id}


def validate_generate(body: dict[str, Any]) -> dict[str, Any]:
    """The generate request checked field by field; the normalised request, or Invalid."""
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise Invalid("PROMPT_REQUIRED", "Missing prompt")
    if js_length(prompt) > PROMPT_MAX:
        raise Invalid("PROMPT_LENGTH_INVALID", f"Prompt exceeds {PROMPT_MAX} characters")
    mode = _enum(body, "mode", NANOPHOTO_MODES)
    image_urls = _image_urls(body, mode)
    spec: dict[str, Any] = {
        "prompt": prompt,
        "mode": mode,
        "aspectRatio": _enum(body, "aspectRatio", NANOPHOTO_ASPECT_RATIOS),
        "resolution": _enum(body, "resolution", NANOPHOTO_RESOLUTIONS),
        "duration": _enum(body, "duration", NANOPHOTO_DURATIONS),
        "generateAudio": _flag(body, "generateAudio"),
        "fixedLens": _flag(body, "fixedLens"),
    }
    if image_urls:
        spec["imageUrls"] = image_urls
    return spec


def _enum(body: dict[str, Any], name: str, allowed: tuple[str, ...]) -> str:
    value = body.get(name)
    if value is None:
        raise Invalid("INVALID_PARAMETER", f"{name} is required ({', '.join(allowed)})")
    if not isinstance(value, str) or value not in allowed:
        raise Invalid("INVALID_PARAMETER", f"Invalid {name}: must be one of {', '.join(allowed)}")
    return value


def _flag(body: dict[str, Any], name: str) -> bool:
    """An optional boolean: absent is false; anything but true/false (null too) is refused."""
    if name not in body:
        return False
    value = body[name]
    if not isinstance(value, bool):
        raise Invalid("INVALID_PARAMETER", f"{name} must be a boolean")
    return value


def _image_urls(body: dict[str, Any], mode: str) -> list[str]:
    raw = body.get("imageUrls")
    if raw in (None, []):
        if mode != "imageToVideo":
            return []
        if any(body.get(name) for name in _INLINE_IMAGE_FIELDS):
            raise Invalid("IMAGE_URLS_REQUIRED", "API calls require imageUrls (no base64)")
        raise Invalid("IMAGE_REQUIRED", "imageToVideo mode requires images")
    if not isinstance(raw, list) or not all(isinstance(url, str) for url in raw):
        raise Invalid("INVALID_PARAMETER", "imageUrls must be an array of URLs")
    if not all(is_public_url(url) for url in raw):
        raise Invalid("IMAGE_URLS_REQUIRED", "API calls require imageUrls (no base64)")
    return list(raw) if mode == "imageToVideo" else []
