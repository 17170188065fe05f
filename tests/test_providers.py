"""Provider modules against the docs' own sample payloads (copied verbatim from api-docs/)."""

from __future__ import annotations

import json

import pytest

from seedance_tui import providers
from seedance_tui.models import JobSpec, JobValidationError, Mode, Provider, TaskStatus
from seedance_tui.providers import (
    AuthError,
    BadRequestError,
    InsufficientCreditsError,
    NotFoundError,
    ProtocolError,
    RateLimitError,
    ServerError,
)

nano = providers.nanophoto
seed = providers.seedance15pro

# -- nanophoto-seedance-1-5-pro.txt ----------------------------------------------------

NANO_SAMPLE_T2V = """{
"prompt": "A golden retriever running on a beach at sunset, cinematic lighting",
"mode": "textToVideo",
"aspectRatio": "landscape",
"resolution": "720p",
"duration": "8",
"generateAudio": true,
"fixedLens": false
}"""
NANO_SAMPLE_I2V = """{
"prompt": "The character comes alive, walking through a magical forest",
"mode": "imageToVideo",
"imageUrls": ["https://static.nanophoto.ai/demo/nano-banana-pro.webp"],
"aspectRatio": "portrait",
"resolution": "1080p",
"duration": "12",
"generateAudio": false,
"fixedLens": true
}"""
NANO_GENERATE_OK = """{
"status" : "processing" ,
"taskId" : "task_abc123" ,
"creditsUsed" : 8
}"""
NANO_STATUS_PROCESSING = """{
"status" : "processing" ,
"taskId" : "task_abc123"
}"""
NANO_STATUS_COMPLETED = """{
"status" : "completed" ,
"taskId" : "task_abc123" ,
"videoUrl" : "https://video.nanophoto.ai/seedance/..." ,
"generationTime" : 120
}"""
NANO_STATUS_FAILED = """{
"status" : "failed" ,
"taskId" : "task_abc123" ,
"error" : "Video generation failed"
}"""
NANO_INSUFFICIENT = """{
"error" : "Insufficient credits" ,
"errorCode" : "INSUFFICIENT_CREDITS" ,
"requiredCredits" : 8
}"""

# -- seedance1-5pro-com.txt ------------------------------------------------------------

SEED_SAMPLE_REQUEST = """{
  "prompt": "Drone shot over neon night market",
  "aspect_ratio": "16:9",
  "duration": "5",
  "sound": false,
  "image_urls": [
    "https://cdn.example.com/reference/frame01.png"
  ]
}"""
SEED_GENERATE_OK = """{
  "code": 200,
  "message": "success",
  "data": {
    "task_id": "sd15p_b6d54c8f4b4c4e8"
  }
}"""
SEED_STATUS_SUCCESS = """{
  "code": 200,
  "message": "success",
  "data": {
    "task_id": "sd15p_b6d54c8f4b4c4e8",
    "status": "SUCCESS",
    "request": {
      "prompt": "Drone shot over neon night market",
      "aspect_ratio": "16:9",
      "duration": "5",
      "sound": false
    },
    "response": [
      "https://static.gogloai.com/seedance15pro/clip_001.mp4"
    ],
    "consumed_credits": 65,
    "error_message": null,
    "created_at": "2025-06-14T05:21:11Z"
  }
}"""


def b(text: str) -> bytes:
    return text.encode()


# -- building requests -----------------------------------------------------------------


def nano_spec(**kw) -> JobSpec:
    return JobSpec(Provider.NANOPHOTO, kw.pop("prompt", "a cat"), **kw)


def seed_spec(**kw) -> JobSpec:
    return JobSpec(Provider.SEEDANCE15PRO, kw.pop("prompt", "a cat"), **kw)


def test_nanophoto_request_matches_the_docs_text_to_video_sample():
    spec = nano_spec(
        prompt="A golden retriever running on a beach at sunset, cinematic lighting",
        aspect_ratio="landscape", resolution="720p", duration="8", audio=True, fixed_lens=False,
    )  # fmt: skip
    request = nano.submit_request(spec)
    assert (request.method, request.path) == ("POST", "/api/seedance-1-5-pro/generate")
    assert request.json == json.loads(NANO_SAMPLE_T2V)


def test_nanophoto_request_matches_the_docs_image_to_video_sample():
    spec = nano_spec(
        prompt="The character comes alive, walking through a magical forest",
        mode=Mode.IMAGE_TO_VIDEO, image_urls=("https://static.nanophoto.ai/demo/nano-banana-pro.webp",),
        aspect_ratio="9:16", resolution="1080p", duration="12", audio=False, fixed_lens=True,
    )  # fmt: skip
    assert nano.submit_request(spec).json == json.loads(NANO_SAMPLE_I2V)


def test_seedance_request_matches_the_docs_sample():
    spec = seed_spec(
        prompt="Drone shot over neon night market", mode=Mode.IMAGE_TO_VIDEO,
        image_urls=("https://cdn.example.com/reference/frame01.png",), duration="5",
    )  # fmt: skip
    request = seed.submit_request(spec)
    assert (request.method, request.path) == ("POST", "/api/generate")
    # aspect_ratio is required by the API even though images make it moot: always sent.
    assert request.json == json.loads(SEED_SAMPLE_REQUEST)


def test_status_requests():
    assert nano.status_request("task_abc123").json == {"taskId": "task_abc123"}
    request = seed.status_request("sd15p_b6d54c8f4b4c4e8")
    assert (request.method, request.path, request.params) == (
        "GET", "/api/status", {"task_id": "sd15p_b6d54c8f4b4c4e8"},
    )  # fmt: skip


def test_optional_fields_are_never_sent_as_null_and_duration_is_a_string():
    body = seed.submit_request(seed_spec(duration=10)).json
    assert body == {"prompt": "a cat", "aspect_ratio": "16:9", "duration": "10", "sound": False}
    assert None not in nano.submit_request(nano_spec()).json.values()


# -- validation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("adapter", "spec", "field"),
    [
        (nano, nano_spec(prompt=""), "prompt"),
        (nano, nano_spec(prompt="   "), "prompt"),
        (nano, nano_spec(prompt="x" * 1001), "prompt"),
        (seed, seed_spec(prompt="😀" * 501), "prompt"),  # 1002 UTF-16 units
        (nano, nano_spec(mode=Mode.IMAGE_TO_VIDEO), "image_urls"),
        (seed, seed_spec(mode=Mode.IMAGE_TO_VIDEO), "image_urls"),
        (nano, nano_spec(mode=Mode.IMAGE_TO_VIDEO, image_urls=("data:image/png;base64,AAAA",)), "image_urls"),
        (nano, nano_spec(mode=Mode.IMAGE_TO_VIDEO, image_urls=("/home/me/cat.png",)), "image_urls"),
        (seed, seed_spec(mode=Mode.IMAGE_TO_VIDEO, image_urls=("ftp://x.org/a.png",)), "image_urls"),
        (nano, nano_spec(resolution="4k"), "resolution"),
        (nano, nano_spec(duration="5"), "duration"),
        (nano, nano_spec(aspect_ratio="1:1"), "aspect_ratio"),
        (seed, seed_spec(duration="8"), "duration"),
        (seed, seed_spec(aspect_ratio="4:3"), "aspect_ratio"),
        (seed, seed_spec(resolution="720p"), "resolution"),
        (seed, seed_spec(mode=Mode.IMAGE_TO_VIDEO, image_urls=("https://x.org/a.png",), aspect_ratio="9:16"), "aspect_ratio"),
    ],
)  # fmt: skip
def test_bad_input_names_the_field(adapter, spec, field):
    with pytest.raises(JobValidationError) as info:
        adapter.validate(spec)
    assert info.value.field == field
    assert info.value.message


def test_the_aspect_ratio_error_says_the_api_ignores_it():
    spec = seed_spec(
        mode=Mode.IMAGE_TO_VIDEO, image_urls=("https://x.org/a.png",), aspect_ratio="1:1"
    )
    with pytest.raises(JobValidationError, match="ignores"):
        seed.validate(spec)


def test_a_prompt_of_exactly_1000_units_is_accepted():
    nano.validate(nano_spec(prompt="é" * 1000))
    nano.validate(nano_spec(prompt="😀" * 500))


# -- prices ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resolution", "duration", "audio", "credits"),
    [("480p", "4", False, 2), ("480p", "12", False, 6), ("720p", "8", False, 8),
     ("720p", "8", True, 16), ("1080p", "8", False, 16), ("1080p", "12", False, 22),
     ("1080p", "12", True, 44)],
)  # fmt: skip
def test_nanophoto_prices(resolution, duration, audio, credits):
    spec = nano_spec(resolution=resolution, duration=duration, audio=audio)
    assert nano.quote(spec).credits == credits


@pytest.mark.parametrize(
    ("duration", "audio", "credits"),
    [("5", False, 65), ("10", False, 130), ("5", True, 130), ("10", True, 260)],
)
def test_seedance_prices(duration, audio, credits):
    assert seed.quote(seed_spec(duration=duration, audio=audio)).credits == credits


# -- parsing the docs' answers ---------------------------------------------------------


def test_nanophoto_generate_answer():
    answer = nano.parse_submit(200, b(NANO_GENERATE_OK), {})
    assert answer.task_id == "task_abc123"
    assert answer.update.status is TaskStatus.PROCESSING
    assert answer.update.credits_charged == 8


def test_nanophoto_status_answers():
    assert nano.parse_status(200, b(NANO_STATUS_PROCESSING), {}).status is TaskStatus.PROCESSING
    done = nano.parse_status(200, b(NANO_STATUS_COMPLETED), {})
    assert done.status is TaskStatus.COMPLETED
    assert done.video_urls == ("https://video.nanophoto.ai/seedance/...",)
    assert done.generation_time == 120
    failed = nano.parse_status(200, b(NANO_STATUS_FAILED), {})
    assert (failed.status, failed.error) == (TaskStatus.FAILED, "Video generation failed")


def test_nanophoto_insufficient_credits():
    with pytest.raises(InsufficientCreditsError) as info:
        nano.parse_submit(402, b(NANO_INSUFFICIENT), {})
    assert info.value.code == "INSUFFICIENT_CREDITS"
    assert info.value.details["required_credits"] == 8
    assert not info.value.retryable


@pytest.mark.parametrize(
    ("code", "status", "cls", "retryable"),
    [("LOGIN_REQUIRED", 401, AuthError, False), ("INVALID_API_KEY", 401, AuthError, False),
     ("API_KEY_RATE_LIMIT_EXCEEDED", 429, RateLimitError, True),
     ("PROMPT_REQUIRED", 400, BadRequestError, False), ("PROMPT_LENGTH_INVALID", 400, BadRequestError, False),
     ("IMAGE_REQUIRED", 400, BadRequestError, False), ("IMAGE_URLS_REQUIRED", 400, BadRequestError, False),
     ("TASK_ID_REQUIRED", 400, BadRequestError, False), ("TASK_NOT_FOUND", 404, NotFoundError, False),
     ("GENERATION_FAILED", 500, ServerError, True), ("INTERNAL_ERROR", 500, ServerError, True)],
)  # fmt: skip
def test_every_nanophoto_error_code(code, status, cls, retryable):
    body = json.dumps({"error": "message from the server", "errorCode": code}).encode()
    with pytest.raises(cls) as info:
        nano.parse_status(status, body, {"retry-after": "30"})
    assert info.value.code == code
    assert info.value.http_status == status
    assert info.value.retryable is retryable
    assert info.value.retry_after == 30.0


def test_seedance_generate_and_status_answers():
    answer = seed.parse_submit(200, b(SEED_GENERATE_OK), {})
    assert answer.task_id == "sd15p_b6d54c8f4b4c4e8"
    update = seed.parse_status(200, b(SEED_STATUS_SUCCESS), {})
    assert update.status is TaskStatus.COMPLETED
    assert update.video_urls == ("https://static.gogloai.com/seedance15pro/clip_001.mp4",)
    assert update.credits_charged == 65
    assert update.error is None


def test_seedance_failed_and_in_progress():
    failed = json.loads(SEED_STATUS_SUCCESS)
    failed["data"].update(status="FAILED", response=[], consumed_credits=0, error_message="boom")
    update = seed.parse_status(200, json.dumps(failed).encode(), {})
    assert (update.status, update.error, update.credits_charged) == (TaskStatus.FAILED, "boom", 0)
    failed["data"].update(status="IN_PROGRESS", error_message=None, consumed_credits=65)
    assert seed.parse_status(200, json.dumps(failed).encode(), {}).status is TaskStatus.PROCESSING


@pytest.mark.parametrize(
    ("status", "cls", "retryable"),
    [(401, AuthError, False), (402, InsufficientCreditsError, False), (429, RateLimitError, True),
     (500, ServerError, True), (404, NotFoundError, False)],
)  # fmt: skip
def test_seedance_errors(status, cls, retryable):
    body = json.dumps({"code": status, "message": "nope", "data": None}).encode()
    with pytest.raises(cls) as info:
        seed.parse_status(status, body, {"retry-after": "7"})
    assert info.value.retryable is retryable
    assert info.value.message == "nope"


@pytest.mark.parametrize(
    "body",
    [b"<html>502 Bad Gateway</html>", b"", b"[]", b'"processing"', b"{}",
     b'{"status": "processing"}', b'{"status": "weird", "taskId": "t"}',
     b'{"status": "completed", "taskId": "t"}', b'{"status": 5, "taskId": ["x"]}',
     b'{"taskId": "t", "creditsUsed": "lots"}', b"\xff\xfe"],
)  # fmt: skip
def test_undocumented_or_partial_answers_become_typed_errors(body):
    for adapter in (nano, seed):
        with pytest.raises(providers.ApiError):
            adapter.parse_status(200, body, {})


@pytest.mark.parametrize(
    "body",
    [b'{"status": "weird", "taskId": "t"}', b'{"status": "completed", "taskId": "t"}',
     b'{"code": 200, "data": {"task_id": "t", "status": "QUEUED"}}'],
)  # fmt: skip
def test_a_generate_answer_with_a_task_id_is_never_thrown_away(body):
    adapter = seed if b"code" in body else nano
    answer = adapter.parse_submit(200, body, {})
    assert (answer.task_id, answer.update.status) == ("t", TaskStatus.PROCESSING)


@pytest.mark.parametrize(
    "body", [b"<html>502</html>", b"", b"[]", b"{}", b'{"status": "processing"}']
)
def test_a_generate_answer_without_a_task_id_is_an_error(body):
    for adapter in (nano, seed):
        with pytest.raises(providers.ApiError):
            adapter.parse_submit(200, body, {})


def test_garbage_is_a_protocol_error_that_says_what_came_back():
    with pytest.raises(ProtocolError, match="not JSON"):
        nano.parse_status(200, b"<html>oops</html>", {})


def test_retry_after_http_date_and_nonsense():
    from seedance_tui.providers.base import parse_retry_after

    assert parse_retry_after({"retry-after": "12"}) == 12
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({"retry-after": "999999"}) == 3600
    assert parse_retry_after({}) is None
