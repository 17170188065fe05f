"""Fake of seedance1-5pro.com's API: `{"code","message","data"}` envelope, HTTP status = code."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..models import js_length
from .common import BadBody, ProviderApi, is_public_url, json_object, media_url
from .pricing import (
    PROMPT_MAX,
    SEEDANCE15PRO,
    SEEDANCE_ASPECT_RATIOS,
    SEEDANCE_DURATIONS,
    seedance_credits,
)
from .state import SimState, SimTask, iso_seconds

STATUS_NAMES = {"processing": "IN_PROGRESS", "completed": "SUCCESS", "failed": "FAILED"}


class Invalid(Exception):
    """A field the server refuses with 400."""


def envelope(data: Any, code: int = 200, message: str = "success") -> JSONResponse:
    return JSONResponse({"code": code, "message": message, "data": data}, status_code=code)


def error(code: int, message: str) -> JSONResponse:
    return envelope(None, code=code, message=message)


class SeedanceApi(ProviderApi):
    provider = SEEDANCE15PRO

    def __init__(self, state: SimState) -> None:
        super().__init__(state)
        self.routes = [
            Route("/api/generate", self.generate, methods=["POST"]),
            Route("/api/status", self.status, methods=["GET", "POST"]),
        ]

    # ---- the provider's error answers ------------------------------------------------

    def login_required(self) -> Response:
        return error(401, "Unauthorized: missing API key")

    def invalid_key(self) -> Response:
        return error(401, "Unauthorized: invalid API key")

    def rate_limited(self, retry_after: float) -> Response:
        response = error(429, "Too many requests: reduce the polling cadence or request rate")
        response.headers["Retry-After"] = str(int(retry_after))
        return response

    def server_error(self, on_generate: bool) -> Response:
        return error(500, "Internal server error, please retry later")

    # ---- endpoints -----------------------------------------------------------------

    async def generate(self, request: Request) -> Response:
        return await self.guarded(request, self._generate, is_generate=True)

    async def status(self, request: Request) -> Response:
        return await self.guarded(request, self._status, is_generate=False)

    async def _generate(self, request: Request, digest: str) -> Response:
        try:
            spec = validate_generate(await json_object(request))
        except (BadBody, Invalid) as exc:
            return error(400, str(exc))
        cost = seedance_credits(spec["duration"], spec["sound"])
        task = self.state.create_task(SEEDANCE15PRO, digest, spec, cost)
        if task is None:
            return error(402, f"Insufficient credits: {cost} required")
        return envelope({"task_id": task.task_id})

    async def _status(self, request: Request, digest: str) -> Response:
        if request.method == "GET":
            task_id: Any = request.query_params.get("task_id")
        else:
            try:
                task_id = (await json_object(request)).get("task_id")
            except BadBody as exc:
                return error(400, str(exc))
        if not isinstance(task_id, str) or not task_id.strip():
            return error(400, "task_id is required")
        task = self.state.find_task(SEEDANCE15PRO, task_id.strip(), digest)
        if task is None:
            return error(404, "Task not found")
        return envelope(status_data(task, request))


def status_data(task: SimTask, request: Request) -> dict[str, Any]:
    """The status record, shaped like the docs' sample."""
    return {
        "task_id": task.task_id,
        "status": STATUS_NAMES[task.status],
        "request": dict(task.request),
        "response": [media_url(request, task.task_id)] if task.status == "completed" else [],
        "consumed_credits": task.net,
        "error_message": task.error if task.status == "failed" else None,
        "created_at": iso_seconds(task.created_at),
    }


def validate_generate(body: dict[str, Any]) -> dict[str, Any]:
    """The generate request checked; its sanitized copy (echoed as `request`), or Invalid."""
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise Invalid("prompt is required")
    if js_length(prompt) > PROMPT_MAX:
        raise Invalid(f"prompt must be at most {PROMPT_MAX} characters")
    aspect_ratio = body.get("aspect_ratio")
    if aspect_ratio not in SEEDANCE_ASPECT_RATIOS:
        raise Invalid(f"aspect_ratio must be one of {', '.join(SEEDANCE_ASPECT_RATIOS)}")
    duration = body.get("duration")
    if not isinstance(duration, str) or duration not in SEEDANCE_DURATIONS:
        raise Invalid('duration must be "5" or "10" (a string)')
    sound = body.get("sound", False)
    if not isinstance(sound, bool):
        raise Invalid("sound must be a boolean")
    spec: dict[str, Any] = {
        "prompt": prompt,
        "aspect_ratio": aspect_ratio,
        "duration": duration,
        "sound": sound,
    }
    image_urls = body.get("image_urls")
    if image_urls is not None:
        if not isinstance(image_urls, list) or not all(is_public_url(u) for u in image_urls):
            raise Invalid("image_urls must be a list of public http(s) URLs")
        if image_urls:
            spec["image_urls"] = list(image_urls)
    return spec
