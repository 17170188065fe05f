"""The simulator: a faithful fake of both provider APIs (see api-docs/)."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from seedance_tui.simulator import SimConfig, SimulatorServer, create_app, serve
from seedance_tui.simulator.media import media_bytes

KEY = "sk-test-key-123"
OTHER_KEY = "sk-other-key-456"
AUTH = {"Authorization": f"Bearer {KEY}"}

NANO_GEN = "/api/seedance-1-5-pro/generate"
NANO_STATUS = "/api/seedance-1-5-pro/check-status"
SD_GEN = "/api/generate"
SD_STATUS = "/api/status"

# The docs' sample request bodies, verbatim.
NANO_T2V_SAMPLE = {
    "prompt": "A golden retriever running on a beach at sunset, cinematic lighting",
    "mode": "textToVideo",
    "aspectRatio": "landscape",
    "resolution": "720p",
    "duration": "8",
    "generateAudio": True,
    "fixedLens": False,
}
NANO_I2V_SAMPLE = {
    "prompt": "The character comes alive, walking through a magical forest",
    "mode": "imageToVideo",
    "imageUrls": ["https://static.nanophoto.ai/demo/nano-banana-pro.webp"],
    "aspectRatio": "portrait",
    "resolution": "1080p",
    "duration": "12",
    "generateAudio": False,
    "fixedLens": True,
}
SD_SAMPLE = {
    "prompt": "Drone shot over neon night market",
    "aspect_ratio": "16:9",
    "duration": "5",
    "sound": False,
    "image_urls": ["https://cdn.example.com/reference/frame01.png"],
}


class FakeClock:
    """An injectable clock that moves only when told to."""

    def __init__(self, start: float = 1_750_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


ClientFactory = Callable[..., httpx.AsyncClient]


@pytest.fixture
async def make_client(clock: FakeClock) -> AsyncIterator[ClientFactory]:
    """In-process clients: `make_client(**SimConfig fields)` → a client on a fresh app."""
    clients: list[httpx.AsyncClient] = []

    def factory(**overrides: Any) -> httpx.AsyncClient:
        overrides.setdefault("seed", 7)
        overrides.setdefault("failure_rate", 0.0)
        overrides.setdefault("clock", clock)
        app = create_app(SimConfig(**overrides))
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8765"
        )
        client.app = app  # type: ignore[attr-defined]
        clients.append(client)
        return client

    yield factory
    for client in clients:
        await client.aclose()


@pytest.fixture
async def client(make_client: ClientFactory) -> httpx.AsyncClient:
    return make_client()


async def nano_generate(client: httpx.AsyncClient, body: dict[str, Any] | None = None) -> str:
    response = await client.post(NANO_GEN, json=body or NANO_T2V_SAMPLE, headers=AUTH)
    assert response.status_code == 200, response.text
    return response.json()["taskId"]


async def sd_generate(client: httpx.AsyncClient, body: dict[str, Any] | None = None) -> str:
    response = await client.post(SD_GEN, json=body or SD_SAMPLE, headers=AUTH)
    assert response.status_code == 200, response.text
    return response.json()["data"]["task_id"]


async def ledger(client: httpx.AsyncClient) -> dict[str, Any]:
    return (await client.get("/_sim/ledger")).json()


# ---- nanophoto: happy paths and lifecycle -------------------------------------------


async def test_nanophoto_generate_text_to_video_sample(client: httpx.AsyncClient) -> None:
    response = await client.post(NANO_GEN, json=NANO_T2V_SAMPLE, headers=AUTH)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"status", "taskId", "creditsUsed"}
    assert body["status"] == "processing"
    assert re.fullmatch(r"task_[0-9a-f]{12}", body["taskId"])
    assert body["creditsUsed"] == 16  # the API table: 720p 8 s = 8, doubled with audio


async def test_nanophoto_generate_image_to_video_sample(client: httpx.AsyncClient) -> None:
    response = await client.post(NANO_GEN, json=NANO_I2V_SAMPLE, headers=AUTH)
    assert response.status_code == 200
    assert response.json()["creditsUsed"] == 22
    tasks = (await client.get("/_sim/tasks")).json()["tasks"]
    assert tasks[0]["request"]["imageUrls"] == NANO_I2V_SAMPLE["imageUrls"]


async def test_nanophoto_lifecycle_processing_to_completed(
    make_client: ClientFactory, clock: FakeClock
) -> None:
    client = make_client(generation_time=(100, 100))
    task_id = await nano_generate(client)
    response = await client.post(NANO_STATUS, json={"taskId": task_id}, headers=AUTH)
    assert response.json() == {"status": "processing", "taskId": task_id}
    clock.advance(99.5)
    response = await client.post(NANO_STATUS, json={"taskId": task_id}, headers=AUTH)
    assert response.json()["status"] == "processing"
    clock.advance(1)
    response = await client.post(NANO_STATUS, json={"taskId": task_id}, headers=AUTH)
    assert response.json() == {
        "status": "completed",
        "taskId": task_id,
        "videoUrl": f"http://127.0.0.1:8765/media/{task_id}.mp4",
        "generationTime": 100,
    }


async def test_nanophoto_lifecycle_failed_is_refunded(
    make_client: ClientFactory, clock: FakeClock
) -> None:
    client = make_client(generation_time=(10, 10), failure_rate=1.0, balances={KEY: 100})
    task_id = await nano_generate(client)
    assert (await ledger(client))["balances"] == {_fp(client, KEY): 84}
    clock.advance(11)
    response = await client.post(NANO_STATUS, json={"taskId": task_id}, headers=AUTH)
    assert response.status_code == 200
    assert response.json() == {
        "status": "failed",
        "taskId": task_id,
        "error": "Video generation failed",
    }
    book = await ledger(client)
    assert book["providers"]["nanophoto"]["charged"] == 16
    assert book["providers"]["nanophoto"]["refunded"] == 16
    assert book["providers"]["nanophoto"]["net"] == 0
    assert book["balances"] == {_fp(client, KEY): 100}


def _fp(client: httpx.AsyncClient, key: str) -> str:
    from seedance_tui.simulator.state import fingerprint, key_hash

    return fingerprint(key_hash(key))


async def test_sim_next_and_force_fix_outcomes(client: httpx.AsyncClient) -> None:
    await client.post("/_sim/next", json={"will_fail": True, "error": "moderation"})
    doomed = await nano_generate(client)
    fine = await nano_generate(client)
    forced = await client.post(f"/_sim/tasks/{doomed}", json={"status": "failed"})
    assert forced.json()["status"] == "failed"
    assert (await client.post(f"/_sim/tasks/{fine}", json={"status": "completed"})).json()[
        "status"
    ] == "completed"
    status = await client.post(NANO_STATUS, json={"taskId": doomed}, headers=AUTH)
    assert status.json() == {"status": "failed", "taskId": doomed, "error": "moderation"}
    status = await client.post(NANO_STATUS, json={"taskId": fine}, headers=AUTH)
    assert status.json()["status"] == "completed"
    again = await client.post(f"/_sim/tasks/{fine}", json={"status": "failed"})
    assert again.status_code == 409


# ---- nanophoto: every documented errorCode ------------------------------------------


def _nano(**changes: Any) -> dict[str, Any]:
    body = dict(NANO_T2V_SAMPLE)
    for name, value in changes.items():
        if value is ...:
            body.pop(name, None)
        else:
            body[name] = value
    return body


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "LOGIN_REQUIRED"),
        ({"Authorization": ""}, "LOGIN_REQUIRED"),
        ({"Authorization": "Bearer "}, "LOGIN_REQUIRED"),
        ({"Authorization": f"Basic {KEY}"}, "LOGIN_REQUIRED"),
        ({"Authorization": "Bearer invalid-key"}, "INVALID_API_KEY"),
    ],
)
async def test_nanophoto_auth_errors(
    client: httpx.AsyncClient, headers: dict[str, str], code: str
) -> None:
    for path, body in ((NANO_GEN, NANO_T2V_SAMPLE), (NANO_STATUS, {"taskId": "task_x"})):
        response = await client.post(path, json=body, headers=headers)
        assert response.status_code == 401
        assert response.json()["errorCode"] == code
        assert isinstance(response.json()["error"], str)
    assert (await ledger(client))["providers"]["nanophoto"]["unauthorized"] == 2


async def test_valid_keys_restricts_keys(make_client: ClientFactory) -> None:
    client = make_client(valid_keys={KEY})
    assert (await client.post(NANO_GEN, json=NANO_T2V_SAMPLE, headers=AUTH)).status_code == 200
    other = {"Authorization": f"Bearer {OTHER_KEY}"}
    response = await client.post(NANO_GEN, json=NANO_T2V_SAMPLE, headers=other)
    assert response.json()["errorCode"] == "INVALID_API_KEY"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (_nano(prompt=...), "PROMPT_REQUIRED"),
        (_nano(prompt="   "), "PROMPT_REQUIRED"),
        (_nano(prompt="x" * 1001), "PROMPT_LENGTH_INVALID"),
        (_nano(prompt="🎬" * 501), "PROMPT_LENGTH_INVALID"),  # 1002 UTF-16 units
        (_nano(mode="imageToVideo"), "IMAGE_REQUIRED"),
        (_nano(mode="imageToVideo", imageUrls=[]), "IMAGE_REQUIRED"),
        (
            _nano(mode="imageToVideo", imageUrls=["data:image/png;base64,iVBORw0KGgo="]),
            "IMAGE_URLS_REQUIRED",
        ),
        (_nano(mode="imageToVideo", images=["iVBORw0KGgo="]), "IMAGE_URLS_REQUIRED"),
        (_nano(mode="videoToVideo"), "INVALID_PARAMETER"),
        (_nano(mode=...), "INVALID_PARAMETER"),
        (_nano(aspectRatio="16:9"), "INVALID_PARAMETER"),
        (_nano(resolution="4k"), "INVALID_PARAMETER"),
        (_nano(duration=8), "INVALID_PARAMETER"),  # a number, not the documented string
        (_nano(duration="5"), "INVALID_PARAMETER"),
        (_nano(duration=...), "INVALID_PARAMETER"),
        (_nano(generateAudio=None), "INVALID_PARAMETER"),
        (_nano(fixedLens="yes"), "INVALID_PARAMETER"),
    ],
)
async def test_nanophoto_generate_validation(
    client: httpx.AsyncClient, body: dict[str, Any], code: str
) -> None:
    response = await client.post(NANO_GEN, json=body, headers=AUTH)
    assert response.status_code == 400
    assert response.json()["errorCode"] == code
    assert (await client.get("/_sim/tasks")).json()["tasks"] == []


async def test_nanophoto_prompt_of_exactly_1000_units_is_accepted(
    client: httpx.AsyncClient,
) -> None:
    await nano_generate(client, _nano(prompt="🎬" * 500))
    await nano_generate(client, _nano(prompt="é" * 1000))


async def test_nanophoto_non_json_body(client: httpx.AsyncClient) -> None:
    response = await client.post(NANO_GEN, content=b"prompt=hi", headers=AUTH)
    assert response.status_code == 400
    assert set(response.json()) == {"error", "errorCode"}


async def test_nanophoto_check_status_errors(client: httpx.AsyncClient) -> None:
    task_id = await nano_generate(client)
    for body in ({}, {"taskId": ""}, {"taskId": None}):
        response = await client.post(NANO_STATUS, json=body, headers=AUTH)
        assert response.status_code == 400
        assert response.json()["errorCode"] == "TASK_ID_REQUIRED"
    response = await client.post(NANO_STATUS, json={"taskId": "task_abc123"}, headers=AUTH)
    assert response.status_code == 404
    assert response.json()["errorCode"] == "TASK_NOT_FOUND"
    # Another key's task is "not found or not owned by user".
    other = {"Authorization": f"Bearer {OTHER_KEY}"}
    response = await client.post(NANO_STATUS, json={"taskId": task_id}, headers=other)
    assert response.status_code == 404
    assert response.json()["errorCode"] == "TASK_NOT_FOUND"
    # A seedance15pro task id is not a nanophoto task.
    sd_task = await sd_generate(client)
    response = await client.post(NANO_STATUS, json={"taskId": sd_task}, headers=AUTH)
    assert response.status_code == 404


async def test_nanophoto_insufficient_credits(make_client: ClientFactory) -> None:
    client = make_client(balances={KEY: 20})
    await nano_generate(client)  # 16 of 20
    response = await client.post(NANO_GEN, json=NANO_T2V_SAMPLE, headers=AUTH)
    assert response.status_code == 402
    assert response.json() == {
        "error": "Insufficient credits",
        "errorCode": "INSUFFICIENT_CREDITS",
        "requiredCredits": 16,
    }
    cheap = _nano(resolution="480p", duration="4", generateAudio=False)
    assert (await client.post(NANO_GEN, json=cheap, headers=AUTH)).json()["creditsUsed"] == 2
    assert len((await client.get("/_sim/tasks")).json()["tasks"]) == 2


@pytest.mark.parametrize("on_generate", [True, False])
async def test_nanophoto_server_errors(make_client: ClientFactory, on_generate: bool) -> None:
    client = make_client(fault_rate=1.0, fault_kinds={"server_error": 1})
    path, body = (NANO_GEN, NANO_T2V_SAMPLE) if on_generate else (NANO_STATUS, {"taskId": "t"})
    response = await client.post(path, json=body, headers=AUTH)
    assert response.status_code == 500
    expected = "GENERATION_FAILED" if on_generate else "INTERNAL_ERROR"
    assert response.json()["errorCode"] == expected


# ---- credits tables -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("resolution", "duration", "silent"),
    [
        ("480p", "4", 2),
        ("480p", "8", 4),
        ("480p", "12", 6),
        ("720p", "4", 4),
        ("720p", "8", 8),
        ("720p", "12", 12),
        ("1080p", "4", 8),
        ("1080p", "8", 16),
        ("1080p", "12", 22),
    ],
)
async def test_nanophoto_credits_table(
    client: httpx.AsyncClient, resolution: str, duration: str, silent: int
) -> None:
    for audio, expected in ((False, silent), (True, 2 * silent)):
        body = _nano(resolution=resolution, duration=duration, generateAudio=audio)
        response = await client.post(NANO_GEN, json=body, headers=AUTH)
        assert response.json()["creditsUsed"] == expected
    assert (await ledger(client))["providers"]["nanophoto"]["net"] == 3 * silent


@pytest.mark.parametrize(
    ("duration", "sound", "credits"),
    [("5", False, 65), ("10", False, 130), ("5", True, 130), ("10", True, 260)],
)
async def test_seedance_credits_table(
    client: httpx.AsyncClient, duration: str, sound: bool, credits: int
) -> None:
    task_id = await sd_generate(client, {**SD_SAMPLE, "duration": duration, "sound": sound})
    response = await client.get(SD_STATUS, params={"task_id": task_id}, headers=AUTH)
    assert response.json()["data"]["consumed_credits"] == credits


# ---- seedance15pro ------------------------------------------------------------------


async def test_seedance_generate_sample(client: httpx.AsyncClient) -> None:
    response = await client.post(SD_GEN, json=SD_SAMPLE, headers=AUTH)
    assert response.status_code == 200
    body = response.json()
    assert body["code"] == 200 and body["message"] == "success"
    assert set(body["data"]) == {"task_id"}
    assert re.fullmatch(r"sd15p_[0-9a-f]{15}", body["data"]["task_id"])


async def test_seedance_status_get_and_post_lifecycle(
    make_client: ClientFactory, clock: FakeClock
) -> None:
    client = make_client(generation_time=(60, 60))
    task_id = await sd_generate(client)
    by_get = await client.get(SD_STATUS, params={"task_id": task_id}, headers=AUTH)
    by_post = await client.post(SD_STATUS, json={"task_id": task_id}, headers=AUTH)
    assert by_get.json() == by_post.json()
    data = by_get.json()["data"]
    assert data == {
        "task_id": task_id,
        "status": "IN_PROGRESS",
        "request": SD_SAMPLE,
        "response": [],
        "consumed_credits": 65,
        "error_message": None,
        "created_at": "2025-06-15T15:06:40Z",  # the fake clock's start
    }
    clock.advance(60)
    done = (await client.post(SD_STATUS, json={"task_id": task_id}, headers=AUTH)).json()
    assert done["code"] == 200
    assert done["data"]["status"] == "SUCCESS"
    assert done["data"]["response"] == [f"http://127.0.0.1:8765/media/{task_id}.mp4"]
    assert done["data"]["consumed_credits"] == 65


async def test_seedance_request_is_sanitized(client: httpx.AsyncClient) -> None:
    body = {"prompt": "Drone", "aspect_ratio": "1:1", "duration": "10", "api_key": "leak"}
    task_id = await sd_generate(client, body)
    data = (await client.get(SD_STATUS, params={"task_id": task_id}, headers=AUTH)).json()
    assert data["data"]["request"] == {
        "prompt": "Drone",
        "aspect_ratio": "1:1",
        "duration": "10",
        "sound": False,
    }


async def test_seedance_failed_is_refunded(make_client: ClientFactory, clock: FakeClock) -> None:
    client = make_client(generation_time=(30, 30), failure_rate=1.0)
    task_id = await sd_generate(client)
    clock.advance(31)
    data = (await client.get(SD_STATUS, params={"task_id": task_id}, headers=AUTH)).json()
    assert data["data"]["status"] == "FAILED"
    assert data["data"]["consumed_credits"] == 0
    assert data["data"]["response"] == []
    assert isinstance(data["data"]["error_message"], str) and data["data"]["error_message"]
    assert (await ledger(client))["providers"]["seedance15pro"]["net"] == 0


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({**SD_SAMPLE, "prompt": ""}, 400),
        ({**SD_SAMPLE, "prompt": "x" * 1001}, 400),
        ({k: v for k, v in SD_SAMPLE.items() if k != "aspect_ratio"}, 400),
        ({**SD_SAMPLE, "aspect_ratio": "4:3"}, 400),
        ({**SD_SAMPLE, "duration": 5}, 400),
        ({**SD_SAMPLE, "duration": "8"}, 400),
        ({**SD_SAMPLE, "sound": "no"}, 400),
        ({**SD_SAMPLE, "image_urls": ["data:image/png;base64,AAAA"]}, 400),
    ],
)
async def test_seedance_validation_errors(
    client: httpx.AsyncClient, body: dict[str, Any], status: int
) -> None:
    response = await client.post(SD_GEN, json=body, headers=AUTH)
    assert response.status_code == status
    payload = response.json()
    assert payload["code"] == status and payload["data"] is None
    assert isinstance(payload["message"], str) and payload["message"]


async def test_seedance_envelope_errors(make_client: ClientFactory) -> None:
    client = make_client(balances={KEY: 100}, seedance_rate_limit=6)
    for headers in ({}, {"Authorization": "Bearer invalid"}):
        response = await client.post(SD_GEN, json=SD_SAMPLE, headers=headers)
        assert response.status_code == 401
        assert response.json()["code"] == 401 and response.json()["data"] is None
    await sd_generate(client)  # 65 of 100
    response = await client.post(SD_GEN, json=SD_SAMPLE, headers=AUTH)
    assert (response.status_code, response.json()["code"]) == (402, 402)
    response = await client.get(SD_STATUS, params={"task_id": "sd15p_nope"}, headers=AUTH)
    assert (response.status_code, response.json()["code"]) == (404, 404)
    response = await client.get(SD_STATUS, headers=AUTH)
    assert (response.status_code, response.json()["code"]) == (400, 400)
    response = await client.post(SD_STATUS, json={}, headers=AUTH)
    assert (response.status_code, response.json()["code"]) == (400, 400)
    response = await client.post(SD_STATUS, json={"task_id": "x"}, headers=AUTH)  # 6th
    assert response.status_code == 404
    response = await client.post(SD_STATUS, json={"task_id": "x"}, headers=AUTH)
    assert (response.status_code, response.json()["code"]) == (429, 429)
    assert int(response.headers["Retry-After"]) > 3500


async def test_seedance_has_no_rate_limit_by_default(client: httpx.AsyncClient) -> None:
    for _ in range(150):
        response = await client.get(SD_STATUS, params={"task_id": "x"}, headers=AUTH)
        assert response.status_code == 404
    assert (await ledger(client))["providers"]["seedance15pro"]["rate_limited"] == 0


async def test_seedance_server_error_fault(make_client: ClientFactory) -> None:
    client = make_client(fault_rate=1.0, fault_kinds={"server_error": 1})
    response = await client.post(SD_GEN, json=SD_SAMPLE, headers=AUTH)
    assert response.status_code == 500
    assert response.json()["code"] == 500 and response.json()["data"] is None


# ---- the 100 requests/hour limit ----------------------------------------------------


async def test_nanophoto_rate_limit_sliding_window(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    task_id = await nano_generate(client)  # request 1, at t=0
    clock.advance(600)
    for _ in range(99):  # requests 2..100, at t=600
        response = await client.post(NANO_STATUS, json={"taskId": task_id}, headers=AUTH)
        assert response.status_code == 200
    clock.advance(60)  # t=660
    for path, body in ((NANO_STATUS, {"taskId": task_id}), (NANO_GEN, NANO_T2V_SAMPLE)):
        response = await client.post(path, json=body, headers=AUTH)
        assert response.status_code == 429
        assert response.json() == {
            "error": "Rate limit exceeded (100 req/hour)",
            "errorCode": "API_KEY_RATE_LIMIT_EXCEEDED",
        }
        # The first request (t=0) leaves the window at t=3600.
        assert response.headers["Retry-After"] == str(3600 - 660)
    # Another key has its own window.
    other = {"Authorization": f"Bearer {OTHER_KEY}"}
    assert (await client.post(NANO_GEN, json=NANO_T2V_SAMPLE, headers=other)).status_code == 200
    clock.advance(3600 - 660)  # the first request has left the window: one slot free
    assert (await client.post(NANO_GEN, json=NANO_T2V_SAMPLE, headers=AUTH)).status_code == 200
    response = await client.post(NANO_STATUS, json={"taskId": task_id}, headers=AUTH)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "600"
    book = await ledger(client)
    row = book["keys"]["nanophoto"][_fp(client, KEY)]
    assert (row["requests"], row["rate_limited"]) == (101, 3)
    assert book["faults"]["rate_limit"] == 0  # refusals are not injected faults
    assert len((await client.get("/_sim/tasks")).json()["tasks"]) == 3


async def test_rate_limit_counts_bad_requests_too(make_client: ClientFactory) -> None:
    client = make_client(nanophoto_rate_limit=3)
    for _ in range(3):
        response = await client.post(NANO_STATUS, json={}, headers=AUTH)
        assert response.status_code == 400
    response = await client.post(NANO_STATUS, json={}, headers=AUTH)
    assert response.status_code == 429


# ---- faults -------------------------------------------------------------------------


def _fault_config(kind: str, **extra: Any) -> SimConfig:
    return SimConfig(seed=3, failure_rate=0.0, fault_rate=1.0, fault_kinds={kind: 1.0}, **extra)


def test_fault_reset_is_a_transport_error() -> None:
    with (
        SimulatorServer(_fault_config("reset")) as sim,
        httpx.Client(base_url=sim.base_url, headers=AUTH) as http,
    ):
        with pytest.raises(httpx.RemoteProtocolError):
            http.post(NANO_GEN, json=NANO_T2V_SAMPLE)
        with pytest.raises(httpx.TransportError):
            http.get(SD_STATUS, params={"task_id": "x"})
        assert http.get("/_sim/ledger").json()["faults"]["reset"] == 2


def test_fault_timeout_makes_clients_time_out() -> None:
    with (
        SimulatorServer(_fault_config("timeout", timeout_seconds=1.0)) as sim,
        httpx.Client(base_url=sim.base_url, headers=AUTH, timeout=0.3) as http,
    ):
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            http.post(NANO_GEN, json=NANO_T2V_SAMPLE)
        assert time.monotonic() - started < 0.9
        assert http.get("/_sim/tasks").json()["tasks"] == []


def test_stop_is_quick_with_a_pending_timeout() -> None:
    sim = SimulatorServer(_fault_config("timeout"))  # default 35 s
    sim.start()
    with (
        httpx.Client(base_url=sim.base_url, headers=AUTH, timeout=0.2) as http,
        pytest.raises(httpx.ReadTimeout),
    ):
        http.post(NANO_STATUS, json={"taskId": "x"})
    started = time.monotonic()
    sim.stop()
    assert time.monotonic() - started < 2.5


async def test_fault_slow_answers_normally(make_client: ClientFactory) -> None:
    client = make_client(fault_rate=1.0, fault_kinds={"slow": 1.0}, slow_seconds=0.3)
    started = time.monotonic()
    response = await client.post(NANO_GEN, json=NANO_T2V_SAMPLE, headers=AUTH)
    assert time.monotonic() - started >= 0.3
    assert response.status_code == 200 and response.json()["status"] == "processing"
    assert len((await client.get("/_sim/tasks")).json()["tasks"]) == 1


async def test_fault_garbage_is_not_json(make_client: ClientFactory) -> None:
    client = make_client(fault_rate=1.0, fault_kinds={"garbage": 1.0})
    response = await client.post(NANO_GEN, json=NANO_T2V_SAMPLE, headers=AUTH)
    assert response.status_code == 200
    assert not response.headers["content-type"].startswith("application/json")
    with pytest.raises(ValueError):
        response.json()


async def test_fault_rate_limit_in_each_providers_shape(make_client: ClientFactory) -> None:
    client = make_client(fault_rate=1.0, fault_kinds={"rate_limit": 1.0}, fault_retry_after=7)
    response = await client.post(NANO_STATUS, json={"taskId": "x"}, headers=AUTH)
    assert response.status_code == 429 and response.headers["Retry-After"] == "7"
    assert response.json()["errorCode"] == "API_KEY_RATE_LIMIT_EXCEEDED"
    response = await client.post(SD_GEN, json=SD_SAMPLE, headers=AUTH)
    assert response.status_code == 429 and response.headers["Retry-After"] == "7"
    assert response.json()["code"] == 429
    book = await ledger(client)
    assert book["faults"]["rate_limit"] == 2
    assert book["totals"]["rate_limited"] == 0  # injected, not real refusals


@pytest.mark.parametrize("kind", ["rate_limit", "server_error", "garbage", "timeout"])
async def test_faulted_generate_creates_no_task(make_client: ClientFactory, kind: str) -> None:
    client = make_client(fault_rate=1.0, fault_kinds={kind: 1.0}, timeout_seconds=0.05)
    for path, body in ((NANO_GEN, NANO_T2V_SAMPLE), (SD_GEN, SD_SAMPLE)):
        response = await client.post(path, json=body, headers=AUTH)
        assert response.status_code != 200 or kind == "garbage"
    assert (await client.get("/_sim/tasks")).json()["tasks"] == []
    assert (await ledger(client))["totals"]["net"] == 0


@pytest.mark.parametrize("kind", ["rate_limit", "server_error", "garbage", "timeout"])
async def test_fault_after_accept_creates_and_charges(
    make_client: ClientFactory, kind: str
) -> None:
    client = make_client(
        fault_rate=1.0, fault_kinds={kind: 1.0}, fault_after_accept=True, timeout_seconds=0.05
    )
    await client.post(NANO_GEN, json=NANO_T2V_SAMPLE, headers=AUTH)
    await client.post(SD_GEN, json=SD_SAMPLE, headers=AUTH)
    tasks = (await client.get("/_sim/tasks")).json()["tasks"]
    assert sorted(t["provider"] for t in tasks) == ["nanophoto", "seedance15pro"]
    book = await ledger(client)
    assert book["providers"]["nanophoto"]["net"] == 16
    assert book["providers"]["seedance15pro"]["net"] == 65


def test_faulted_generate_reset_after_accept_over_the_wire() -> None:
    config = _fault_config("reset", fault_after_accept=True)
    with (
        SimulatorServer(config) as sim,
        httpx.Client(base_url=sim.base_url, headers=AUTH) as http,
    ):
        with pytest.raises(httpx.TransportError):
            http.post(NANO_GEN, json=NANO_T2V_SAMPLE)
        tasks = http.get("/_sim/tasks").json()["tasks"]
        assert [t["charged"] for t in tasks] == [16]


async def test_fault_rate_is_a_share(make_client: ClientFactory) -> None:
    client = make_client(fault_rate=0.3, fault_kinds={"server_error": 1.0})
    codes = [
        (await client.get(SD_STATUS, params={"task_id": "x"}, headers=AUTH)).status_code
        for _ in range(300)
    ]
    assert 60 <= codes.count(500) <= 120
    assert codes.count(500) + codes.count(404) == 300
    assert (await ledger(client))["faults"]["server_error"] == codes.count(500)


async def test_auth_errors_are_never_faulted(make_client: ClientFactory) -> None:
    client = make_client(fault_rate=1.0, fault_kinds={"server_error": 1.0})
    response = await client.post(NANO_GEN, json=NANO_T2V_SAMPLE)
    assert response.json()["errorCode"] == "LOGIN_REQUIRED"


# ---- media --------------------------------------------------------------------------


def _completed_task(http: httpx.Client) -> str:
    task_id = http.post(NANO_GEN, json=NANO_T2V_SAMPLE).json()["taskId"]
    http.post(f"/_sim/tasks/{task_id}", json={"status": "completed"})
    return http.post(NANO_STATUS, json={"taskId": task_id}).json()["videoUrl"]


def test_media_full_and_ranges() -> None:
    with (
        SimulatorServer(SimConfig(seed=1, nanophoto_rate_limit=3)) as sim,
        httpx.Client(base_url=sim.base_url, headers=AUTH) as http,
    ):
        url = _completed_task(http)
        assert url.startswith(sim.base_url + "/media/task_")
        full = httpx.get(url)  # no auth needed
        assert full.status_code == 200
        assert full.headers["content-type"] == "video/mp4"
        assert full.headers["accept-ranges"] == "bytes"
        size = int(full.headers["content-length"])
        assert size == len(full.content) and 100_000 < size < 1_000_000
        assert full.content[4:8] == b"ftyp"
        part = httpx.get(url, headers={"Range": "bytes=0-999"})
        assert part.status_code == 206
        assert part.headers["content-range"] == f"bytes 0-999/{size}"
        assert part.content == full.content[:1000]
        tail = httpx.get(url, headers={"Range": "bytes=-10"})
        assert tail.status_code == 206 and tail.content == full.content[-10:]
        beyond = httpx.get(url, headers={"Range": f"bytes={size}-"})
        assert beyond.status_code == 416
        assert beyond.headers["content-range"] == f"bytes */{size}"
        head = httpx.head(url)
        assert head.status_code == 200 and int(head.headers["content-length"]) == size
        # Deterministic per task id, and media requests do not touch the rate limit.
        assert httpx.get(url).content == full.content == media_bytes(url.rsplit("/", 1)[1][:-4])
        assert http.get("/_sim/ledger").json()["providers"]["nanophoto"]["requests"] == 2


def test_media_resume_after_interrupted_download() -> None:
    with (
        SimulatorServer(SimConfig(seed=2, media_fault_rate=1.0)) as sim,
        httpx.Client(base_url=sim.base_url, headers=AUTH) as http,
    ):
        url = _completed_task(http)
        received = bytearray()
        with pytest.raises(httpx.TransportError), httpx.stream("GET", url) as response:
            assert response.status_code == 200
            for chunk in response.iter_bytes():
                received.extend(chunk)
        task_id = url.rsplit("/", 1)[1][:-4]
        assert len(received) == len(media_bytes(task_id)) // 2
        http.post("/_sim/config", json={"media_fault_rate": 0.0})
        rest = httpx.get(url, headers={"Range": f"bytes={len(received)}-"})
        assert rest.status_code == 206
        assert bytes(received) + rest.content == media_bytes(task_id)
        assert http.get("/_sim/ledger").json()["faults"]["media_reset"] == 1


async def test_media_of_unfinished_task_is_404(client: httpx.AsyncClient) -> None:
    task_id = await nano_generate(client)
    assert (await client.get(f"/media/{task_id}.mp4")).status_code == 404
    assert (await client.get("/media/../etc/passwd")).status_code == 404
    assert (await client.get("/media/whatever.mp4")).status_code == 404


# ---- introspection ------------------------------------------------------------------


async def test_sim_tasks_and_ledger(make_client: ClientFactory, clock: FakeClock) -> None:
    client = make_client(generation_time=(5, 5))
    await client.post("/_sim/next", json={"will_fail": True, "provider": "seedance15pro"})
    await nano_generate(client)
    await sd_generate(client)
    await sd_generate(client, {**SD_SAMPLE, "sound": True})
    listing = await client.get("/_sim/tasks")
    assert KEY not in listing.text  # fingerprints only
    tasks = listing.json()["tasks"]
    assert {t["status"] for t in tasks} == {"processing"}
    expected_keys = {"provider", "task_id", "key", "status", "charged", "refunded", "net"}
    assert expected_keys | {"created_at", "will_fail", "gen_time"} <= set(tasks[0])
    clock.advance(5)
    book = await ledger(client)
    assert book["providers"]["nanophoto"]["net"] == 16
    assert book["providers"]["seedance15pro"]["charged"] == 65 + 130
    assert book["providers"]["seedance15pro"]["refunded"] == 65
    assert book["providers"]["seedance15pro"]["net"] == 130
    assert book["keys"]["seedance15pro"][_fp(client, KEY)]["net"] == 130
    assert book["totals"]["net"] == 146
    assert KEY not in str(book)


async def test_sim_config_and_reset(client: httpx.AsyncClient, clock: FakeClock) -> None:
    response = await client.post(
        "/_sim/config", json={"failure_rate": 1.0, "generation_time": [1, 1], "fault_rate": 0}
    )
    assert response.status_code == 200
    assert response.json()["generation_time"] == [1, 1]
    task_id = await nano_generate(client)
    clock.advance(1)
    status = await client.post(NANO_STATUS, json={"taskId": task_id}, headers=AUTH)
    assert status.json()["status"] == "failed"
    bad = await client.post("/_sim/config", json={"failure_rate": 2})
    assert bad.status_code == 400
    assert (await client.post("/_sim/config", json={"valid_keys": []})).status_code == 400
    await client.post("/_sim/reset")
    assert (await client.get("/_sim/tasks")).json()["tasks"] == []
    assert (await ledger(client))["totals"] == {
        "net": 0,
        "requests": 0,
        "rate_limited": 0,
        "faults": 0,
    }
    assert (await client.get("/_sim/config")).json()["failure_rate"] == 0.0


async def test_sim_advance_moves_renders(make_client: ClientFactory) -> None:
    client = make_client(generation_time=(50, 50), clock=time.time)
    task_id = await nano_generate(client)
    await client.post("/_sim/advance", json={"seconds": 51})
    status = await client.post(NANO_STATUS, json={"taskId": task_id}, headers=AUTH)
    assert status.json()["status"] == "completed"


async def test_time_scale_speeds_renders(make_client: ClientFactory, clock: FakeClock) -> None:
    client = make_client(generation_time=(120, 120), time_scale=10)
    task_id = await nano_generate(client)
    clock.advance(12)
    status = await client.post(NANO_STATUS, json={"taskId": task_id}, headers=AUTH)
    assert status.json()["status"] == "completed"
    assert status.json()["generationTime"] == 120


async def test_same_seed_same_ids(make_client: ClientFactory) -> None:
    first, second = make_client(seed=11), make_client(seed=11)
    assert await nano_generate(first) == await nano_generate(second)
    assert await sd_generate(first) == await sd_generate(second)
    assert await nano_generate(make_client(seed=12)) != await nano_generate(first)


# ---- serving ------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "example.com"])
def test_serve_refuses_non_loopback(host: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        serve(host=host, port=0)
    with pytest.raises(ValueError, match="loopback"):
        SimulatorServer(host=host)


def test_server_start_stop_and_two_at_once() -> None:
    first, second = SimulatorServer(), SimulatorServer()
    try:
        url1, url2 = first.start(), second.start()
        assert url1.startswith("http://127.0.0.1:") and url1 != url2
        for url in (url1, url2):
            assert httpx.get(url + "/_sim/health").json() == {"ok": True}
        assert first.state is first.app.state.sim
    finally:
        started = time.monotonic()
        first.stop()
        second.stop()
        assert time.monotonic() - started < 2.0
    with pytest.raises(httpx.ConnectError):
        httpx.get(url1 + "/_sim/health")


def test_serve_refuses_a_taken_port() -> None:
    with SimulatorServer() as sim, pytest.raises(ValueError, match="cannot listen"):
        serve(port=sim.port or 0)


def test_serve_blocks_and_serves_on_loopback(processes) -> None:
    code = (
        "from seedance_tui.simulator import serve\n"
        "serve(port=0, on_ready=lambda url: print(url, flush=True))\n"
    )
    process = processes.spawn([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    url = process.stdout.readline().strip()
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url)
    assert httpx.get(url + "/_sim/health").json() == {"ok": True}
    response = httpx.post(url + SD_GEN, json=SD_SAMPLE, headers=AUTH)
    assert response.json()["code"] == 200
