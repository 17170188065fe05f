"""The engine and the CLI against a hostile server on loopback (`tests/hostile.py`):
absurd numbers, wrong types, a body that drips, bodies of 50 MB, refused connections,
bad URLs, escape sequences.

The rules (issue #10): a task id the server named is committed whatever else is wrong in
the answer (unusable fields are dropped and noted as an `oddity` event); no traceback,
no OverflowError, anywhere; every request ends by its deadline and reads at most 1 MiB;
a slow answer delays only its own task.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import tracemalloc
from pathlib import Path

import pytest
from conftest import NANO_KEY, SEED_KEY
from hostile import (
    HostileServer,
    Request,
    drip,
    huge,
    json_answer,
    refused_url,
)
from raw_sql import raw_sql

from seedance_tui import cli
from seedance_tui.client import Client
from seedance_tui.config import Settings, load_settings
from seedance_tui.engine import Engine
from seedance_tui.models import JobSpec, Provider, TaskStatus
from seedance_tui.store import Store

NANO_GENERATE = "/seedance-1-5-pro/generate"
NANO_STATUS = "/seedance-1-5-pro/check-status"
SEED_GENERATE = "/api/generate"
SEED_STATUS = "/api/status"
NANO_JOB = JobSpec(Provider.NANOPHOTO, "a lighthouse in a storm", resolution="720p", duration="4")
SEED_JOB = JobSpec(Provider.SEEDANCE15PRO, "a night market", duration="5")
FAST = {"min_interval": 0.1, "target_latency": 0.3, "max_interval": 1.0, "prior": (0.2, 0.5)}
RAW_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@pytest.fixture
def hostile():
    with HostileServer() as server:
        yield server


def settings_for(base_url: str, tmp_path: Path) -> Settings:
    env = {
        "NANOPHOTO_BASE_URL": base_url,
        "SEEDANCE15PRO_BASE_URL": base_url,
        "NANOPHOTO_API_KEY": NANO_KEY,
        "SEEDANCE15PRO_API_KEY": SEED_KEY,
    }
    settings = load_settings(db=tmp_path / "history.db", env=env)
    settings.polling = dict(FAST)
    for provider in Provider:
        settings.providers[provider].requests_per_hour = None
    return settings


async def wait_for(condition, what: str, seconds: float = 20.0) -> None:
    """Poll a condition until it holds; fail with `what` when it does not in time."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {seconds:g} s")
        await asyncio.sleep(0.02)


def oddities(store: Store, task_id: str) -> list[str]:
    return [e["detail"] for e in store.events(task_id) if e["kind"] == "oddity"]


# -- items 1, 2: an answer that names a task id is never lost ----------------------------

ABSURD_SUBMITS = [
    (NANO_JOB, NANO_GENERATE, {"taskId": "t-1", "status": "processing", "creditsUsed": 10**30}),
    (NANO_JOB, NANO_GENERATE, {"taskId": "t-1", "status": "processing", "creditsUsed": 1e308}),
    (NANO_JOB, NANO_GENERATE, {"taskId": "t-1", "status": "processing", "creditsUsed": -4}),
    (NANO_JOB, NANO_GENERATE, {"taskId": "t-1", "status": "processing", "generationTime": "abc"}),
    (NANO_JOB, NANO_GENERATE, {"taskId": "t-1", "status": "processing", "generationTime": -1e300}),
    (NANO_JOB, NANO_GENERATE, {"taskId": "t-1", "status": 17, "videoUrl": ["x"]}),
    (NANO_JOB, NANO_GENERATE, {"taskId": "t-1", "creditsUsed": float("nan")}),
    (SEED_JOB, SEED_GENERATE, {"code": 200, "data": {"task_id": "t-1", "status": "IN_PROGRESS",
                                                     "consumed_credits": 10**30}}),
    (SEED_JOB, SEED_GENERATE, {"code": 200, "data": {"task_id": "t-1", "status": "IN_PROGRESS",
                                                     "consumed_credits": 1e308, "response": 7}}),
    (SEED_JOB, SEED_GENERATE, {"code": "two hundred", "data": {"task_id": "t-1",
                                                               "status": "IN_PROGRESS"}}),
]  # fmt: skip


@pytest.mark.parametrize(("job", "path", "answer"), ABSURD_SUBMITS)
async def test_an_accepted_task_id_is_kept_whatever_else_the_answer_says(
    hostile, tmp_path, job, path, answer
) -> None:
    hostile.route(path, json_answer(answer))
    settings = settings_for(hostile.base_url, tmp_path)
    store = Store.open(settings.db_path)
    engine = Engine(settings, store)
    try:
        task = await engine.submit(job)
    finally:
        await engine.aclose()
    assert task.status is TaskStatus.PROCESSING, task.error
    saved = store.get(task.id)
    assert saved.task_id == "t-1" and saved.status is TaskStatus.PROCESSING
    assert saved.credits_charged is None or 0 <= saved.credits_charged <= 10**6
    # What could not be used is on record, for the user to see.
    assert oddities(store, task.id), store.events(task.id)


async def test_a_numeric_task_id_is_kept_as_text(hostile, tmp_path) -> None:
    hostile.route(NANO_GENERATE, json_answer({"taskId": 123456789, "status": "processing"}))
    settings = settings_for(hostile.base_url, tmp_path)
    store = Store.open(settings.db_path)
    engine = Engine(settings, store)
    try:
        task = await engine.submit(NANO_JOB)
    finally:
        await engine.aclose()
    assert store.get(task.id).task_id == "123456789"


def status_of(task_id: str, **fields) -> dict:
    return {"taskId": task_id, **fields}


@pytest.mark.parametrize(
    "fields",
    [
        {"creditsUsed": 10**30, "generationTime": 42},
        {"creditsUsed": 1e308, "generationTime": float("inf")},
        {"creditsUsed": 4, "generationTime": -5},
        {"creditsUsed": "lots", "generationTime": 1e12},
    ],
)
async def test_absurd_status_answers_still_finish_the_task(hostile, tmp_path, fields) -> None:
    """A status answer with unusable numbers is applied without them: the task completes,
    nothing overflows, and no absurd render time reaches the history or the ETAs."""
    hostile.route(NANO_GENERATE, json_answer({"taskId": "t-1", "status": "processing",
                                              "creditsUsed": 4}))  # fmt: skip
    hostile.route(
        NANO_STATUS,
        json_answer(status_of("t-1", status="completed", videoUrl="https://e.com/v.mp4", **fields)),
    )
    settings = settings_for(hostile.base_url, tmp_path)
    store = Store.open(settings.db_path)
    engine = Engine(settings, store)
    try:
        task = await engine.submit(NANO_JOB)
        async with asyncio.timeout(30):
            await engine.run(until_idle=True)
    finally:
        await engine.aclose()
    done = store.get(task.id)
    assert done.status is TaskStatus.COMPLETED
    assert done.credits_charged == 4  # the absurd figure changed nothing
    assert done.generation_time is None or 0 <= done.generation_time <= 86_400
    for _profile, seconds in store.generation_history():
        assert 0 < seconds <= 86_400
    estimate = engine.scheduler.estimate(("nanophoto", "720p", "4", False))
    assert all(0 < p < 86_400 for p in estimate.points)


def test_absurd_render_times_already_in_the_history_are_not_learned(tmp_path) -> None:
    """Rows written before such values were refused must not skew the ETAs for good."""
    from seedance_tui.models import Task

    store = Store.open(tmp_path / "history.db")
    params = {"mode": "text-to-video", "resolution": "720p", "duration": "4", "audio": False}
    for i, seconds in enumerate([90.0, -5.0, float("inf"), float("nan"), 1e12, 120.0]):
        store.insert_task(
            Task(
                id=f"0190000000{i:02d}00000000", provider=Provider.NANOPHOTO,
                status=TaskStatus.COMPLETED, prompt=f"p{i}", params=params,
                created_at=1_700_000_000.0 + i, completed_at=1_700_000_100.0 + i,
                generation_time=seconds,
            )
        )  # fmt: skip
    learned = sorted(seconds for _profile, seconds in store.generation_history())
    assert learned == [90.0, 120.0]


# -- item 4: a server that drips --------------------------------------------------------


async def test_a_dripping_generate_answer_ends_at_the_total_deadline(hostile, tmp_path) -> None:
    """Per-read timeouts never fire on one byte every 50 ms; the total deadline does.
    The request left, so the job may exist: orphaned, never resent."""
    body = b'{"taskId": "t-1", "status": "processing"' + b" " * 100_000 + b"}"
    hostile.route(NANO_GENERATE, drip(body, every=0.05))
    settings = settings_for(hostile.base_url, tmp_path)
    store = Store.open(settings.db_path)
    client = Client(
        {p: s.base_url for p, s in settings.providers.items()},
        {p: settings.key(p) for p in Provider},
        deadline=0.5,
    )
    engine = Engine(settings, store, client=client)
    try:
        async with asyncio.timeout(30):
            task = await engine.submit(NANO_JOB)
    finally:
        await engine.aclose()
    assert task.status is TaskStatus.ORPHANED
    assert "within 0.5 s" in task.error
    assert hostile.count(NANO_GENERATE) == 1


async def test_one_dripping_status_answer_delays_only_its_own_task(hostile, tmp_path) -> None:
    """The slow task's poll drips for good; the other task, due later, is polled and
    finishes meanwhile (the loop does not wait for the slow answer)."""
    ids = iter(["t-slow", "t-fast"])
    hostile.route(
        NANO_GENERATE,
        make=lambda request: json_answer({"taskId": next(ids), "status": "processing"}),
    )

    def status(request: Request):
        if request.json()["taskId"] == "t-slow":
            return drip(b'{"taskId": "t-slow", "status": "processing"}' * 100, every=0.2)
        return json_answer(status_of("t-fast", status="completed", videoUrl="https://e.com/f.mp4"))

    hostile.route(NANO_STATUS, make=status)
    settings = settings_for(hostile.base_url, tmp_path)
    store = Store.open(settings.db_path)
    engine = Engine(settings, store)
    loop = asyncio.create_task(engine.run())
    try:
        slow = await engine.submit(NANO_JOB)
        await wait_for(lambda: hostile.count(NANO_STATUS) >= 1, "the slow task's first poll")
        fast = await engine.submit(NANO_JOB)
        await wait_for(
            lambda: store.get(fast.id).status is TaskStatus.COMPLETED,
            "the fast task completed while the slow answer was still dripping",
        )
        assert store.get(slow.id).status is TaskStatus.PROCESSING
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
        await engine.aclose()


# -- item 6: answers of any size --------------------------------------------------------


@pytest.mark.parametrize("declare", [True, False], ids=["content-length", "chunked"])
async def test_a_50_mb_status_answer_is_refused_without_being_read(
    hostile, tmp_path, declare
) -> None:
    hostile.route(NANO_GENERATE, json_answer({"taskId": "t-huge", "status": "processing"}))
    hostile.route(NANO_STATUS, huge(50_000_000, declare=declare))
    settings = settings_for(hostile.base_url, tmp_path)
    store = Store.open(settings.db_path)
    engine = Engine(settings, store)
    try:
        task = await engine.submit(NANO_JOB)
        tracemalloc.start()
        try:
            polled = await engine.poll(task.id)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    finally:
        await engine.aclose()
    assert polled.status is TaskStatus.PROCESSING
    errors = [e["detail"] for e in store.events(task.id) if e["kind"] == "error"]
    assert errors and "refused" in errors[-1], errors
    assert peak < 8 * 1024 * 1024, f"the poll held {peak:,} bytes"


async def test_an_oversized_generate_answer_is_an_unknown_outcome(hostile, tmp_path) -> None:
    """The answer to a generate that left is unreadable: it may have created the job."""
    hostile.route(NANO_GENERATE, huge(5_000_000))
    settings = settings_for(hostile.base_url, tmp_path)
    store = Store.open(settings.db_path)
    engine = Engine(settings, store)
    try:
        task = await engine.submit(NANO_JOB)
    finally:
        await engine.aclose()
    assert task.status is TaskStatus.ORPHANED
    assert "bytes" in task.error and hostile.count(NANO_GENERATE) == 1


# -- connection refused -----------------------------------------------------------------


async def test_a_generate_that_never_connects_is_cancelled_with_nothing_charged(tmp_path) -> None:
    settings = settings_for(refused_url(), tmp_path)
    store = Store.open(settings.db_path)
    engine = Engine(settings, store)
    engine.ledger.patience = 0.0  # give up at the first failure (the default waits 15 min)
    try:
        task = await engine.submit(NANO_JOB)
    finally:
        await engine.aclose()
    assert task.status is TaskStatus.CANCELLED
    assert "cannot connect" in task.error and "nothing charged" in task.error
    rows = raw_sql(store.path, "SELECT endpoint, sent FROM requests")
    assert rows == [("generate", 0)]  # counted before sending, then recorded as not sent
    summary = store.credits_summary(time.time())["providers"]["nanophoto"]
    assert summary["at_risk_orphaned"] == 0 and summary["held_by_pending"] == 0


# -- bad URLs and escape sequences ------------------------------------------------------


def fast_polling(tmp_path: Path) -> None:
    """A config that polls as fast as the hostile server answers (the docs' 1-3 minute
    prior would make the first check wait a minute)."""
    config = tmp_path / "home" / "config" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("[polling]\nmin_interval = 0.1\ntarget_latency = 0.3\nprior = [0.2, 0.5]\n")


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "javascript:alert(1)", "--help", "http://example.com/v.mp4"]
)
def test_a_completed_task_with_a_bad_video_url_is_never_downloaded(
    hostile, tmp_path, capsys, monkeypatch, url
) -> None:
    hostile.route(NANO_GENERATE, json_answer({"taskId": "t-1", "status": "processing"}))
    hostile.route(NANO_STATUS, json_answer(status_of("t-1", status="completed", videoUrl=url)))
    settings = settings_for(hostile.base_url, tmp_path)
    for name, value in {
        "NANOPHOTO_BASE_URL": hostile.base_url,
        "NANOPHOTO_API_KEY": NANO_KEY,
        "SEEDANCE_TUI_DB": str(settings.db_path),
    }.items():
        monkeypatch.setenv(name, value)
    fast_polling(tmp_path)
    code = cli.main(["submit", "--prompt", "a lighthouse", "--wait"])
    assert code == 0
    capsys.readouterr()
    code = cli.main(["download", "--all"])
    captured = capsys.readouterr()
    assert code == 1
    assert "refusing to download" in captured.err
    assert "Traceback" not in captured.err + captured.out
    assert not list((tmp_path / "home").rglob("*.mp4"))


def test_escape_sequences_in_server_text_reach_the_terminal_inert(
    hostile, tmp_path, capsys, monkeypatch
) -> None:
    nasty = "\x1b]0;pwned\x07\x1b[2J\x9b31m[bold]x[/]"
    hostile.route(NANO_GENERATE, json_answer({"taskId": "t-" + nasty, "status": "processing"}))
    hostile.route(NANO_STATUS, json_answer({"error": "busy " + nasty}, status=500), times=1)
    hostile.route(NANO_STATUS, json_answer(status_of("t-" + nasty, status="failed",
                                                     error="render " + nasty)))  # fmt: skip
    settings = settings_for(hostile.base_url, tmp_path)
    monkeypatch.setenv("NANOPHOTO_BASE_URL", hostile.base_url)
    monkeypatch.setenv("NANOPHOTO_API_KEY", NANO_KEY)
    db = str(settings.db_path)
    assert cli.main(["--db", db, "submit", "--prompt", "a lighthouse"]) == 0
    fast_polling(tmp_path)
    code = cli.main(["--db", db, "watch"])
    captured = capsys.readouterr()
    shown = captured.out + captured.err
    assert code == 1  # the render failed
    assert not RAW_CONTROL.search(shown.replace("\n", "")), repr(shown)
    assert "Traceback" not in shown
    listed = json.loads(_run_json(db, capsys))
    assert listed[0]["error"].endswith(nasty)  # JSON keeps the exact text


def _run_json(db: str, capsys) -> str:
    cli.main(["--db", db, "list", "--json"])
    return capsys.readouterr().out


async def test_a_task_id_the_history_already_has_is_kept_in_the_error(hostile, tmp_path) -> None:
    """A server that names the same task id twice: the second job's own id is unknown.
    It ends orphaned with the id it was given in its error, at once (not retried as if
    the disk were full)."""
    hostile.route(NANO_GENERATE, json_answer({"taskId": "t-same", "status": "processing"}))
    settings = settings_for(hostile.base_url, tmp_path)
    store = Store.open(settings.db_path)
    engine = Engine(settings, store)
    try:
        first = await engine.submit(NANO_JOB)
        second = await engine.submit(NANO_JOB)
    finally:
        await engine.aclose()
    assert first.status is TaskStatus.PROCESSING
    assert second.status is TaskStatus.ORPHANED
    assert "t-same" in second.error and first.short_id in second.error
    assert store.get(second.id).status is TaskStatus.ORPHANED


# -- downloads from a hostile media host -------------------------------------------------


def _completed_task(store: Store, url: str):
    from seedance_tui.models import Task

    task = Task(
        id="0190000000004321dcba", provider=Provider.NANOPHOTO, status=TaskStatus.COMPLETED,
        prompt="a lighthouse", params=NANO_JOB.params(), created_at=time.time() - 60,
        task_id="t-media", video_urls=(url,),
    )  # fmt: skip
    store.insert_task(task)
    return task


async def test_a_dripping_video_download_fails_as_a_stall_and_keeps_its_part(
    hostile, tmp_path
) -> None:
    """Bytes keep coming, too few to be progress: the download fails as a stall (the
    part file stays for the next download to resume) instead of holding `watch` for good."""
    from seedance_tui.client import MediaClient
    from seedance_tui.library import DownloadError, download_task

    hostile.route("/media/v.mp4", drip(b"\0" * 100_000, every=0.05))
    settings = settings_for(hostile.base_url, tmp_path)
    store = Store.open(settings.db_path)
    task = _completed_task(store, hostile.base_url + "/media/v.mp4")
    media = MediaClient(stall_seconds=0.5, stall_bytes=1024)
    try:
        async with asyncio.timeout(30):
            with pytest.raises(DownloadError) as caught:
                await download_task(task, store, settings, media=media, attempts=1)
    finally:
        await media.aclose()
    assert "stalled" in str(caught.value) and "resume" in str(caught.value)
    [part] = settings.library_dir().iterdir()
    assert part.name.endswith(".mp4.part") and 0 < part.stat().st_size < 100_000
    assert store.get(task.id).local_path is None


async def test_a_video_without_a_declared_size_is_streamed_to_disk(hostile, tmp_path) -> None:
    from seedance_tui.library import download_task

    size = 30_000_000
    hostile.route("/media/v.mp4", huge(size, declare=False))
    settings = settings_for(hostile.base_url, tmp_path)
    store = Store.open(settings.db_path)
    task = _completed_task(store, hostile.base_url + "/media/v.mp4")
    tracemalloc.start()
    try:
        path = await download_task(task, store, settings, attempts=1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert path.stat().st_size == size
    assert store.get(task.id).local_path == str(path)
    assert peak < 8 * 1024 * 1024, f"the download held {peak:,} bytes"
