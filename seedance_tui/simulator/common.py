"""What both fake providers share: auth, rate limiting, fault injection, body parsing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from .faults import (
    absurd_response,
    drip_response,
    garbage_response,
    huge_response,
    reset_json_response,
)
from .state import SimState, key_hash

# An endpoint body, called once the key is known good and the request is counted.
Handler = Callable[[Request, str], Awaitable[Response]]


class BadBody(Exception):
    """The request body is not a JSON object."""


def bearer_token(request: Request) -> str:
    """The key of `Authorization: Bearer KEY`, or "" when there is none."""
    value = request.headers.get("authorization", "")
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer":
        return ""
    return token.strip()


async def json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object (BadBody otherwise)."""
    try:
        body = await request.json()
    except ValueError as exc:
        raise BadBody("request body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise BadBody("request body must be a JSON object")
    return body


def is_public_url(value: object) -> bool:
    return isinstance(value, str) and value.lower().startswith(("http://", "https://"))


def media_url(request: Request, task_id: str) -> str:
    """Where the simulator itself serves a task's video (the host the client used)."""
    return f"{str(request.base_url).rstrip('/')}/media/{task_id}.mp4"


class ProviderApi:
    """One provider's face: its error shape, plus the request pipeline every call takes."""

    provider: str = ""

    def __init__(self, state: SimState) -> None:
        self.state = state

    # ---- the provider's answers (overridden) ---------------------------------------

    def login_required(self) -> Response:
        raise NotImplementedError

    def invalid_key(self) -> Response:
        raise NotImplementedError

    def rate_limited(self, retry_after: float) -> Response:
        raise NotImplementedError

    def server_error(self, on_generate: bool) -> Response:
        raise NotImplementedError

    # ---- the pipeline ----------------------------------------------------------------

    async def guarded(self, request: Request, handler: Handler, *, is_generate: bool) -> Response:
        """Auth → rate limit (every counted request) → maybe a fault → the endpoint."""
        token = bearer_token(request)
        if not token:
            self._count_unauthorized()
            return self.login_required()
        if not self.state.key_is_valid(token):
            self._count_unauthorized()
            return self.invalid_key()
        digest = key_hash(token)
        retry_after = self.state.admit(self.provider, digest)
        if retry_after is not None:
            return self.rate_limited(retry_after)
        kind = self.state.draw_fault()
        if kind is None:
            return await handler(request, digest)
        return await self._fault(kind, request, digest, handler, is_generate)

    def _count_unauthorized(self) -> None:
        with self.state.lock:
            self.state.unauthorized[self.provider] += 1

    async def _fault(
        self, kind: str, request: Request, digest: str, handler: Handler, is_generate: bool
    ) -> Response:
        """Answer with an injected fault.

        A faulted `generate` creates (and charges) its task only when
        `fault_after_accept` is set: then the client cannot know it was accepted.
        """
        cfg = self.state.config
        # Read the whole request first: closing a socket with unread input sends an RST,
        # which could wipe the partial answer a `reset` fault means the client to see.
        await request.body()
        if kind == "slow":
            await self.state.sleep(cfg.slow_seconds)
            return await handler(request, digest)
        if kind == "absurd":
            # A real answer, task id and all (a generate's task exists): only its other
            # fields are nonsense.
            return absurd_response(await handler(request, digest), self.state.draw_variant())
        accept = is_generate and cfg.fault_after_accept
        if kind == "drip":
            answer = await handler(request, digest) if accept or not is_generate else None
            return drip_response(
                answer if answer is not None else self.server_error(True),
                cfg.drip_seconds,
                self.state.sleep,
            )
        if kind == "huge":
            if accept:
                await handler(request, digest)
            return huge_response()
        if kind == "timeout":
            answer = await handler(request, digest) if accept else None
            await self.state.sleep(cfg.timeout_seconds)
            if answer is None:
                # Nobody is listening any more; a status read still answers normally.
                answer = self.server_error(True) if is_generate else await handler(request, digest)
            return answer
        if accept:
            await handler(request, digest)  # the task exists and is charged; the answer is lost
        if kind == "rate_limit":
            return self.rate_limited(cfg.fault_retry_after)
        if kind == "server_error":
            return self.server_error(is_generate)
        if kind == "garbage":
            return garbage_response()
        return reset_json_response()
