"""The ASGI app: both providers' APIs, the media host, and `/_sim/` introspection."""

from __future__ import annotations

import re
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .common import BadBody, json_object
from .config import SimConfig
from .faults import ResetResponse, quiet_simulated_resets
from .media import RangeNotSatisfiable, media_bytes, media_etag, parse_range, shape_of
from .nanophoto import NanophotoApi
from .seedance import SeedanceApi
from .state import SimState

_MEDIA_NAME = re.compile(r"((?:task|sd15p)_[A-Za-z0-9]+)\.mp4")


def create_app(config: SimConfig | None = None) -> Starlette:
    """Both fake APIs in one app; its state is `app.state.sim` (a SimState)."""
    quiet_simulated_resets()
    state = SimState(config)
    nanophoto = NanophotoApi(state)
    seedance = SeedanceApi(state)
    admin = Admin(state)
    routes = [
        *nanophoto.routes,
        *seedance.routes,
        Route("/media/{name}", admin.media, methods=["GET", "HEAD"]),
        *admin.routes,
    ]
    app = Starlette(routes=routes)
    app.state.sim = state
    return app


def _bad(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class Admin:
    """Media downloads and the `/_sim/` endpoints: no auth, no rate limit."""

    def __init__(self, state: SimState) -> None:
        self.state = state
        self.routes = [
            Route("/_sim/health", self.health, methods=["GET"]),
            Route("/_sim/tasks", self.tasks, methods=["GET"]),
            Route("/_sim/tasks/{task_id}", self.task, methods=["GET"]),
            Route("/_sim/tasks/{task_id}", self.force, methods=["POST"]),
            Route("/_sim/ledger", self.ledger, methods=["GET"]),
            Route("/_sim/config", self.get_config, methods=["GET"]),
            Route("/_sim/config", self.set_config, methods=["POST"]),
            Route("/_sim/next", self.next_task, methods=["POST"]),
            Route("/_sim/advance", self.advance, methods=["POST"]),
            Route("/_sim/reset", self.reset, methods=["POST"]),
        ]

    async def health(self, request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def tasks(self, request: Request) -> Response:
        return JSONResponse({"tasks": self.state.tasks_public()})

    async def task(self, request: Request) -> Response:
        self.state.settle()
        task = self.state.tasks.get(request.path_params["task_id"])
        if task is None:
            return _bad("unknown task", 404)
        return JSONResponse(task.public())

    async def force(self, request: Request) -> Response:
        """`{"status": "completed"|"failed", "error"?: str}`: finish a processing task now."""
        try:
            body = await json_object(request)
            task = self.state.force(
                request.path_params["task_id"], str(body.get("status")), body.get("error")
            )
        except BadBody as exc:
            return _bad(str(exc))
        except KeyError:
            return _bad("unknown task", 404)
        except ValueError as exc:
            return _bad(str(exc), 409)
        return JSONResponse(task.public())

    async def ledger(self, request: Request) -> Response:
        return JSONResponse(self.state.ledger())

    async def get_config(self, request: Request) -> Response:
        return JSONResponse(self.state.config.public())

    async def set_config(self, request: Request) -> Response:
        """Change any subset of the runtime knobs (fault_rate, failure_rate, ...)."""
        try:
            config = self.state.reconfigure(await json_object(request))
        except (BadBody, ValueError, TypeError) as exc:
            return _bad(str(exc))
        return JSONResponse(config.public())

    async def next_task(self, request: Request) -> Response:
        """Fix the next task: `{"provider"?, "will_fail"?: bool, "gen_time"?: s, "error"?}`."""
        try:
            body = await json_object(request)
        except BadBody as exc:
            return _bad(str(exc))
        allowed = {"provider", "will_fail", "gen_time", "error"}
        if set(body) - allowed:
            return _bad(f"unknown fields: {sorted(set(body) - allowed)}")
        self.state.queue_next(body)
        return JSONResponse({"queued": body})

    async def advance(self, request: Request) -> Response:
        """`{"seconds": N}`: move the simulator's clock forward."""
        try:
            seconds = float((await json_object(request)).get("seconds", 0))
        except (BadBody, ValueError, TypeError) as exc:
            return _bad(str(exc))
        if seconds < 0:
            return _bad("seconds must be >= 0")
        self.state.advance(seconds)
        return JSONResponse({"now": self.state.now()})

    async def reset(self, request: Request) -> Response:
        self.state.reset()
        return JSONResponse({"ok": True})

    # ---- media -----------------------------------------------------------------------

    async def media(self, request: Request) -> Response:
        """A task's video, with Range support so that a download can be resumed."""
        match = _MEDIA_NAME.fullmatch(request.path_params["name"])
        if match is None:
            return Response("Not Found", status_code=404, media_type="text/plain")
        task_id = match.group(1)
        self.state.settle()
        task = self.state.tasks.get(task_id)
        if task is not None and task.status != "completed":
            return Response("Not Found", status_code=404, media_type="text/plain")
        # The video has the task's aspect ratio when the simulator knows the task (a link
        # of a history seeded elsewhere, such as the demo's, gets a landscape one).
        request_fields = task.request if task is not None else {}
        shape = shape_of(request_fields.get("aspectRatio") or request_fields.get("aspect_ratio"))
        # Encoding a video the first time takes a few tens of milliseconds: off the loop.
        data = await run_in_threadpool(media_bytes, task_id, shape)
        return self._media_answer(request, data, media_etag(task_id, shape))

    def _media_answer(self, request: Request, data: bytes, etag: str) -> Response:
        size = len(data)
        headers: dict[str, Any] = {"Accept-Ranges": "bytes", "ETag": etag}
        range_header = request.headers.get("range")
        if_range = request.headers.get("if-range")
        if if_range is not None and if_range != etag:
            range_header = None  # the client's copy is stale: send it all again
        try:
            wanted = parse_range(range_header, size)
        except RangeNotSatisfiable:
            headers["Content-Range"] = f"bytes */{size}"
            return Response(b"", status_code=416, headers=headers)
        status, body = 200, data
        if wanted is not None:
            start, end = wanted
            status, body = 206, data[start : end + 1]
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        if request.method == "GET" and body and self.state.draw_media_fault():
            return ResetResponse(body[: len(body) // 2], len(body), status, "video/mp4", headers)
        return Response(body, status_code=status, headers=headers, media_type="video/mp4")
