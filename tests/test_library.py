"""The local library: resumable, checked downloads; names; the expired mark; auto-download."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from conftest import NANO_KEY, SEED_KEY

from seedance_tui import cli
from seedance_tui.client import MediaClient
from seedance_tui.config import Settings
from seedance_tui.events import DownloadProgress, Notice, TaskChanged
from seedance_tui.library import (
    DownloadError,
    download_task,
    download_url,
    file_name,
    likely_expired,
    link_state,
    slugify,
)
from seedance_tui.models import Provider, Task, TaskStatus
from seedance_tui.session import Session
from seedance_tui.simulator.media import media_bytes
from seedance_tui.store import Store, new_task_id


def completed_task(url: str, *, prompt: str = "A red fox in the snow", age: float = 60.0) -> Task:
    now = time.time()
    return Task(
        id=new_task_id(now - age),
        provider=Provider.NANOPHOTO,
        status=TaskStatus.COMPLETED,
        prompt=prompt,
        params={"mode": "text-to-video", "resolution": "720p", "duration": "4", "audio": False},
        created_at=now - age,
        task_id="sim-" + url.rsplit("/", 1)[-1],
        credits_estimated=4,
        credits_charged=4,
        video_urls=(url,),
        submitted_at=now - age,
        completed_at=now - age + 30,
    )


def set_sim(sim, **changes) -> None:
    httpx.post(sim.base_url + "/_sim/config", json=changes).raise_for_status()


@pytest.fixture
def store(settings: Settings):
    s = Store.open(settings.db_path)
    yield s
    s.close()


# -- names -----------------------------------------------------------------------------


def test_slug_is_safe_and_bounded() -> None:
    assert (
        slugify("A golden retriever running on a beach!") == "a-golden-retriever-running-on-a-beach"
    )
    assert slugify("Café déjà vu — naïve") == "cafe-deja-vu-naive"
    assert slugify("../../etc/passwd\x1b[31m") == "etc-passwd-31m"
    assert slugify("🎬🎥") == "video"
    long = slugify("word " * 50)
    assert len(long) <= 40 and not long.endswith("-") and long.startswith("word-word")
    assert all(c.isalnum() or c == "-" for c in slugify('CON:<>|?*"\\ nul'))


def test_file_name_has_date_short_id_and_slug() -> None:
    task = completed_task("http://127.0.0.1/x.mp4", prompt="Neon [bold]sign[/] in rain")
    name = file_name(task)
    day = time.strftime("%Y-%m-%d", time.localtime(task.created_at))
    assert name == f"{day}_{task.short_id}_neon-bold-sign-in-rain.mp4"


# -- resumable download against the simulator ------------------------------------------


async def test_interrupted_download_resumes_byte_identical(sim, settings, store) -> None:
    media_id = "task_resume1"
    task = completed_task(f"{sim.base_url}/media/{media_id}.mp4")
    store.insert_task(task)
    expected = media_bytes(media_id)

    set_sim(sim, media_fault_rate=1.0)  # every download breaks off halfway
    with pytest.raises(DownloadError) as info:
        await download_task(task, store, settings, attempts=1)
    assert info.value.retryable
    dest = settings.library_dir() / file_name(task)
    part = dest.with_name(dest.name + ".part")
    assert not dest.exists()
    assert 0 < part.stat().st_size < len(expected)
    offset = part.stat().st_size
    assert part.read_bytes() == expected[:offset]
    assert store.get(task.id).local_path is None

    set_sim(sim, media_fault_rate=0.0)
    seen: list[tuple[int, int | None]] = []
    path = await download_task(
        task, store, settings, attempts=1, on_progress=lambda d, t: seen.append((d, t))
    )
    assert path == dest
    assert seen[0] == (offset, len(expected))  # resumed where the part file ended
    assert seen[-1] == (len(expected), len(expected))
    assert dest.read_bytes() == expected
    assert not part.exists()
    assert store.get(task.id).local_path == str(dest)
    assert link_state(store.get(task.id), settings) == "saved"


async def test_retries_resume_within_one_call(sim, settings, store) -> None:
    """With attempts left, one call recovers from a break by itself."""
    task = completed_task(f"{sim.base_url}/media/task_retry1.mp4")
    store.insert_task(task)
    set_sim(sim, media_fault_rate=1.0)
    calls = 0

    def heal(done: int, total: int | None) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            set_sim(sim, media_fault_rate=0.0)  # the next attempt goes through

    path = await download_task(task, store, settings, attempts=3, retry_pause=0, on_progress=heal)
    assert path.read_bytes() == media_bytes("task_retry1")


# -- checks, with a fake media server --------------------------------------------------


def media_client(handler) -> MediaClient:
    return MediaClient(transport=httpx.MockTransport(handler))


async def test_short_body_is_detected(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, headers={"content-length": "1000"}, stream=httpx.ByteStream(b"x" * 500)
        )

    async with media_client(handler) as media:
        with pytest.raises(DownloadError, match="500 of 1000"):
            await download_url(media, "https://cdn.test/v.mp4", tmp_path / "v.mp4", attempts=1)
    assert not (tmp_path / "v.mp4").exists()


async def test_long_body_is_discarded(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, headers={"content-length": "100"}, stream=httpx.ByteStream(b"x" * 500)
        )

    async with media_client(handler) as media:
        with pytest.raises(DownloadError, match="declared 100"):
            await download_url(media, "https://cdn.test/v.mp4", tmp_path / "v.mp4", attempts=1)
    assert not (tmp_path / "v.mp4").exists()
    assert not (tmp_path / "v.mp4.part").exists()


async def test_server_ignoring_range_starts_over(tmp_path: Path) -> None:
    body = bytes(range(256)) * 40
    (tmp_path / "v.mp4.part").write_bytes(b"garbage!" * 10)
    ranges: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        ranges.append(request.headers.get("range"))
        return httpx.Response(  # no Range support: the whole file
            200, headers={"content-length": str(len(body))}, stream=httpx.ByteStream(body)
        )

    async with media_client(handler) as media:
        size = await download_url(media, "https://cdn.test/v.mp4", tmp_path / "v.mp4")
    assert ranges == ["bytes=80-"]
    assert size == len(body)
    assert (tmp_path / "v.mp4").read_bytes() == body


async def test_wrong_resume_range_is_refused(tmp_path: Path) -> None:
    (tmp_path / "v.mp4.part").write_bytes(b"x" * 10)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            206, headers={"content-range": "bytes 0-9/20"}, stream=httpx.ByteStream(b"y" * 10)
        )

    async with media_client(handler) as media:
        with pytest.raises(DownloadError, match="wrong range"):
            await download_url(media, "https://cdn.test/v.mp4", tmp_path / "v.mp4", attempts=1)


async def test_no_key_is_sent_and_expired_links_say_so(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(403, text="expired")

    async with media_client(handler) as media:
        with pytest.raises(DownloadError, match="expired") as info:
            await download_url(media, "https://cdn.test/v.mp4", tmp_path / "v.mp4")
    assert not info.value.retryable
    assert len(seen) == 1  # not retried
    assert "authorization" not in {k.lower() for k in seen[0].headers}


@pytest.mark.parametrize(
    "url", ["http://cdn.example.com/v.mp4", "ftp://127.0.0.1/v.mp4", "http://10.0.0.5/v.mp4"]
)
async def test_plain_http_beyond_loopback_is_refused(tmp_path: Path, url: str) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b"x")

    async with media_client(handler) as media:
        with pytest.raises(DownloadError, match="refusing") as info:
            await download_url(media, url, tmp_path / "v.mp4")
    assert not info.value.retryable
    assert seen == []


async def test_redirect_to_plain_http_is_refused(tmp_path: Path) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(302, headers={"location": "http://cdn.example.com/v.mp4"})

    async with media_client(handler) as media:
        with pytest.raises(DownloadError, match="refusing"):
            await download_url(media, "https://cdn.test/v.mp4", tmp_path / "v.mp4")
    assert seen == ["https://cdn.test/v.mp4"]


# -- the expired mark ------------------------------------------------------------------


def test_expired_mark(settings: Settings, tmp_path: Path) -> None:
    now = time.time()
    fresh = completed_task("https://cdn.test/a.mp4", age=3600)
    old = completed_task("https://cdn.test/b.mp4", age=3 * 86400)
    assert link_state(fresh, settings, now) == "remote"
    assert link_state(old, settings, now) == "expired"
    assert likely_expired(old, 24, now) and not likely_expired(old, 100, now)
    settings.providers[Provider.NANOPHOTO].link_ttl_hours = 100
    assert link_state(old, settings, now) == "remote"
    saved = tmp_path / "b.mp4"
    saved.write_bytes(b"x")
    old.local_path = str(saved)
    assert link_state(old, settings, now) == "saved"
    saved.unlink()
    assert link_state(old, settings, now) == "missing"
    old.status = TaskStatus.FAILED
    assert link_state(old, settings, now) is None


# -- the command -----------------------------------------------------------------------


def test_download_all_command(sim, settings, store, capsys) -> None:
    tasks = [
        completed_task(f"{sim.base_url}/media/task_cli{i}.mp4", prompt=f"clip {i}") for i in (1, 2)
    ]
    for task in tasks:
        store.insert_task(task)
    db = str(settings.db_path)
    assert cli.main(["--db", db, "download", "--all"]) == 0
    captured = capsys.readouterr()
    paths = captured.out.split()
    assert len(paths) == 2
    for task in tasks:
        saved = store.get(task.id).local_path
        assert saved in paths
        assert Path(saved).read_bytes() == media_bytes(f"task_cli{tasks.index(task) + 1}")
    assert "100%" in captured.err  # plain progress lines when not a terminal
    assert cli.main(["--db", db, "download", "--all"]) == 0
    assert "nothing to download" in capsys.readouterr().err
    assert cli.main(["--db", db, "download", "nosuchid"]) == 2
    assert cli.main(["--db", db, "download"]) == 2
    output = capsys.readouterr()
    assert NANO_KEY not in output.out + output.err and SEED_KEY not in output.out + output.err


def test_open_without_opener_prints_the_target(sim, settings, store, capsys, monkeypatch):
    monkeypatch.setenv("SSH_CONNECTION", "10.0.0.1 5000 10.0.0.2 22")
    task = completed_task(f"{sim.base_url}/media/task_open1.mp4")
    store.insert_task(task)
    assert cli.main(["--db", str(settings.db_path), "open", task.short_id]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == task.video_urls[0]
    assert "copy" in captured.err


# -- auto-download ---------------------------------------------------------------------


async def test_auto_download_saves_a_completed_render(sim, settings, store) -> None:
    settings.auto_download = True
    task = completed_task(f"{sim.base_url}/media/task_auto1.mp4")
    store.insert_task(task)
    session = Session(settings, store=store)
    engine = session.start_engine()
    events: list[object] = []
    engine.subscribe(events.append)
    try:
        assert session.downloads is not None
        engine.emit(TaskChanged(task, TaskStatus.PROCESSING))
        assert engine.has_pending()
        await session.downloads.wait()
        saved = store.get(task.id)
        assert saved.local_path and Path(saved.local_path).read_bytes() == media_bytes("task_auto1")
        assert any(isinstance(e, Notice) and "saved" in e.message for e in events)
        assert not engine.has_pending()
        # A completion another instance saw (previous unknown) is left to that instance.
        other = completed_task(f"{sim.base_url}/media/task_auto2.mp4")
        store.insert_task(other)
        engine.emit(TaskChanged(other, None))
        assert not session.downloads.active
        # Its progress reached the engine's listeners, up to the whole file.
        progress = [e for e in events if isinstance(e, DownloadProgress)]
        assert progress and {e.task_id for e in progress} == {task.id}
        assert progress[-1].done == progress[-1].total == len(media_bytes("task_auto1"))
    finally:
        await session.aclose()


async def test_auto_download_off(settings, store) -> None:
    settings.auto_download = False
    session = Session(settings, store=store)
    engine = session.start_engine()
    try:
        assert session.downloads is None
        assert not engine.has_pending()
    finally:
        await session.aclose()
