"""Poster frames: the simulator's real videos, extraction from files and links, the
`frame` and `sheet` commands, the dashboard's loader and the terminal graphics choice."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import time
from pathlib import Path

import av
import httpx
import pytest
from conftest import NANO_KEY
from PIL import Image

from seedance_tui import cli, frames
from seedance_tui.client import MediaClient
from seedance_tui.config import Settings
from seedance_tui.models import Provider, Task, TaskStatus
from seedance_tui.simulator import SimConfig, SimulatorServer
from seedance_tui.simulator.media import (
    SHAPES,
    media_bytes,
    media_colour,
    media_fades_in,
    shape_of,
)
from seedance_tui.store import Store, new_task_id
from seedance_tui.tui import images

AUTH = {"Authorization": f"Bearer {NANO_KEY}"}


def corner_colour(image: Image.Image) -> tuple[int, int, int]:
    """The mean colour of the frame's top-left 12×12 pixels."""
    corner = image.convert("RGB").crop((0, 0, 12, 12))
    pixels = [corner.getpixel((x, y)) for y in range(12) for x in range(12)]
    return tuple(round(sum(p[i] for p in pixels) / len(pixels)) for i in range(3))  # type: ignore[return-value]


def close(a: tuple[int, int, int], b: tuple[int, int, int], tolerance: int = 14) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=True))


def first_frame(data: bytes) -> Image.Image:
    with av.open(io.BytesIO(data)) as container:
        return next(container.decode(video=0)).to_image()


def completed_task(url: str, *, age: float = 600.0, prompt: str = "A red fox in the snow") -> Task:
    now = time.time()
    return Task(
        id=new_task_id(now - age), provider=Provider.NANOPHOTO, status=TaskStatus.COMPLETED,
        prompt=prompt, params={"mode": "text-to-video", "resolution": "720p", "duration": "4"},
        created_at=now - age, task_id="sim-" + url.rsplit("/", 1)[-1], credits_estimated=4,
        credits_charged=4, video_urls=(url,), submitted_at=now - age, completed_at=now - age + 30,
    )  # fmt: skip


def sim_task(sim: SimulatorServer, *, aspect: str = "landscape") -> tuple[str, str]:
    """A task rendered by the simulator: (its task id, its video URL)."""
    with httpx.Client(base_url=sim.base_url, headers=AUTH) as http:
        body = {"prompt": "a koi pond", "mode": "textToVideo", "aspectRatio": aspect,
                "resolution": "720p", "duration": "4", "generateAudio": False}  # fmt: skip
        task_id = http.post("/api/seedance-1-5-pro/generate", json=body).json()["taskId"]
        http.post(f"/_sim/tasks/{task_id}", json={"status": "completed"}).raise_for_status()
        answer = http.post("/api/seedance-1-5-pro/check-status", json={"taskId": task_id})
        return task_id, answer.json()["videoUrl"]


@pytest.fixture
def store(settings: Settings):
    s = Store.open(settings.db_path)
    yield s
    s.close()


# -- the simulator's videos ------------------------------------------------------------


def test_simulator_serves_a_decodable_mp4_in_the_tasks_colour(sim) -> None:
    task_id, url = sim_task(sim)
    served = httpx.get(url)
    assert served.headers["content-type"] == "video/mp4"
    with av.open(io.BytesIO(served.content)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert (stream.width, stream.height) == SHAPES["landscape"]
        decoded = list(container.decode(stream))
    assert len(decoded) >= 24
    poster = decoded[0].to_image() if not media_fades_in(task_id) else decoded[12].to_image()
    assert close(corner_colour(poster), media_colour(task_id))
    # A portrait task gets a portrait video.
    portrait_id, portrait_url = sim_task(sim, aspect="portrait")
    assert first_frame(httpx.get(portrait_url).content).size == SHAPES["portrait"]
    assert media_colour(portrait_id) != media_colour(task_id) or portrait_id == task_id


def test_every_task_looks_different_and_some_fade_in() -> None:
    ids = [f"task_look{i}" for i in range(24)]
    colours = {media_colour(i) for i in ids}
    assert len(colours) >= 18  # a hue per id: a few may collide, most differ
    for task_id in ids[:6]:
        frame = first_frame(media_bytes(task_id))
        if media_fades_in(task_id):
            assert frames.is_black(frame)
        else:
            assert close(corner_colour(frame), media_colour(task_id))
    assert any(media_fades_in(i) for i in ids) and not all(media_fades_in(i) for i in ids)
    assert shape_of("9:16") == "portrait" and shape_of("1:1") == "square"
    assert shape_of("landscape") == shape_of(None) == "landscape"


def test_the_poster_of_a_video_that_fades_in_is_taken_at_one_second(tmp_path: Path) -> None:
    task_id = next(f"task_fade{i}" for i in range(100) if media_fades_in(f"task_fade{i}"))
    path = tmp_path / "fade.mp4"
    path.write_bytes(media_bytes(task_id))
    assert frames.is_black(first_frame(path.read_bytes()))
    poster = frames.extract_poster(path)
    assert not frames.is_black(poster)
    assert close(corner_colour(poster), media_colour(task_id))


def test_a_file_that_is_not_a_video_is_a_frame_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypisom" + b"not really a video" * 50)
    with pytest.raises(frames.FrameError, match="could not be decoded"):
        frames.extract_poster(path)


# -- from a link, without downloading it -----------------------------------------------


async def test_a_poster_from_a_link_reads_only_the_blocks_it_needs(sim) -> None:
    task_id, url = sim_task(sim)
    size = len(media_bytes(task_id))
    async with MediaClient() as media:
        image, link = await frames.poster_from_link(media, url)
    assert close(corner_colour(image), media_colour(task_id))
    # The start and the moov box at the end, not the padding between them.
    assert link.fetched < size * 0.75, (link.fetched, size)
    assert link.requests >= 1


async def test_link_reads_go_through_the_media_client_with_ranges() -> None:
    """A large file: blocks at the start and the end are fetched, the middle is not."""
    padded = media_bytes("task_rangecheck")  # 100-400 KB, the moov box at the end
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("range"))
        assert "authorization" not in request.headers
        wanted = request.headers.get("range")
        if wanted is None:
            return httpx.Response(
                200, headers={"content-length": str(len(padded))}, stream=httpx.ByteStream(padded)
            )
        start = int(wanted.split("=")[1].rstrip("-"))
        return httpx.Response(
            206,
            stream=httpx.ByteStream(padded[start:]),
            headers={"content-range": f"bytes {start}-{len(padded) - 1}/{len(padded)}"},
        )

    media = MediaClient(transport=httpx.MockTransport(handler))
    try:
        image, link = await frames.poster_from_link(media, "https://cdn.example/v.mp4")
    finally:
        await media.aclose()
    assert close(corner_colour(image), media_colour("task_rangecheck"))
    assert seen[0] is None and all(r and r.startswith("bytes=") for r in seen[1:])
    assert link.fetched < len(padded)


async def test_a_dead_link_is_a_frame_error_not_a_decoder_error(sim) -> None:
    async with MediaClient() as media:
        with pytest.raises(frames.FrameError, match="HTTP 404"):
            await frames.poster_from_link(media, f"{sim.base_url}/media/nothing-here.mp4")


async def test_plain_http_to_another_host_is_refused() -> None:
    async with MediaClient() as media:
        with pytest.raises(frames.FrameError, match="refusing"):
            await frames.poster_from_link(media, "http://example.com/v.mp4")


# -- the dashboard's loader ------------------------------------------------------------


async def test_the_loader_makes_one_poster_for_many_callers_and_caches_it(sim, settings) -> None:
    task_id, url = sim_task(sim)
    task = completed_task(url)
    loader = frames.FrameLoader(settings)
    try:
        paths = await asyncio.gather(*(loader.poster(task) for _ in range(5)))
        assert len(set(paths)) == 1 and loader.extracted == 1
        assert paths[0] == frames.poster_path(settings, task.id)
        assert paths[0].parent == settings.library_dir() / "frames"
        poster = Image.open(paths[0])
        assert max(poster.size) <= max(frames.POSTER_BOX)
        assert close(corner_colour(poster), media_colour(task_id))
        assert await loader.poster(task) == paths[0] and loader.extracted == 1
    finally:
        await loader.aclose()


async def test_the_loader_remembers_a_failure_and_says_expired_links_are_gone(
    sim, settings
) -> None:
    dead = completed_task(f"{sim.base_url}/media/gone.mp4")
    expired = completed_task(f"{sim.base_url}/media/task_x.mp4", age=3 * 86400)
    loader = frames.FrameLoader(settings)
    try:
        with pytest.raises(frames.FrameError, match="404"):
            await loader.poster(dead)
        assert loader.known_failure(dead) is not None
        with pytest.raises(frames.FrameError, match="404"):
            await loader.poster(dead)  # answered from memory
        with pytest.raises(frames.NoVideo, match="expired .* never saved"):
            await loader.poster(expired)
    finally:
        await loader.aclose()


async def test_a_failure_nobody_waits_for_any_more_is_not_logged_as_never_retrieved(
    sim, settings
) -> None:
    import gc

    loop = asyncio.get_running_loop()
    logged: list[dict] = []
    loop.set_exception_handler(lambda _loop, context: logged.append(context))
    dead = completed_task(f"{sim.base_url}/media/gone.mp4")
    loader = frames.FrameLoader(settings)
    try:
        waiter = asyncio.ensure_future(loader.poster(dead))
        await asyncio.sleep(0)  # the extraction has started
        waiter.cancel()  # the cursor moved on: nobody waits for this frame any more
        await asyncio.gather(waiter, return_exceptions=True)
        deadline = loop.time() + 30
        while loader.known_failure(dead) is None:  # the extraction ends on its own
            assert loop.time() < deadline, "the extraction did not end"
            await asyncio.sleep(0.01)
        del waiter
        gc.collect()
        assert not [c for c in logged if "never retrieved" in str(c.get("message"))], logged
    finally:
        loop.set_exception_handler(None)
        await loader.aclose()


# -- `seedance-tui frame` ----------------------------------------------------------------


def test_frame_of_a_completed_render_saves_it_first_then_writes_the_png(
    sim, settings, store, tmp_path, capsys
) -> None:
    task_id, url = sim_task(sim)
    task = completed_task(url)
    store.insert_task(task)
    out = tmp_path / "poster.png"
    assert cli.main(["--db", str(settings.db_path), "frame", task.short_id, "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == str(out)
    assert "downloading" in captured.err  # progress while the video is saved
    image = Image.open(out)
    assert image.size == SHAPES["landscape"]  # the video's own size
    assert close(corner_colour(image), media_colour(task_id))
    saved = store.get(task.id)
    assert saved.local_path and Path(saved.local_path).read_bytes() == media_bytes(task_id)
    assert frames.poster_path(settings, task.id).is_file()
    # Again, without -o: the library's poster, and no download this time.
    assert cli.main(["--db", str(settings.db_path), "frame", task.short_id]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == str(frames.poster_path(settings, task.id))
    assert "downloading" not in captured.err


def test_frame_of_an_expired_render_exits_1_and_says_why(sim, settings, store, capsys) -> None:
    task = completed_task(f"{sim.base_url}/media/gone.mp4", age=3 * 86400)
    store.insert_task(task)
    assert cli.main(["--db", str(settings.db_path), "frame", task.short_id]) == 1
    error = capsys.readouterr().err
    assert "expired" in error and "never saved" in error and "404" in error
    assert not frames.poster_path(settings, task.id).exists()


def test_frame_of_a_failed_task_exits_1(settings, store, capsys) -> None:
    now = time.time()
    task = Task(
        id=new_task_id(now), provider=Provider.NANOPHOTO, status=TaskStatus.FAILED,
        prompt="a storm", params={"duration": "4"}, created_at=now, task_id="task_f1",
        error="Video generation failed",
    )  # fmt: skip
    store.insert_task(task)
    assert cli.main(["--db", str(settings.db_path), "frame", task.short_id]) == 1
    assert "failed: it has no video" in capsys.readouterr().err


def test_frame_usage_errors_exit_2(settings, store, tmp_path, capsys) -> None:
    assert cli.main(["--db", str(settings.db_path), "frame", "nope"]) == 2
    assert (
        cli.main(["--db", str(settings.db_path), "frame", "x", "-o", str(tmp_path / "a.jpg")]) == 2
    )
    assert "PNG" in capsys.readouterr().err


# -- `seedance-tui sheet` ----------------------------------------------------------------


def test_sheet_writes_a_captioned_png_of_the_selection(sim, settings, store, tmp_path, capsys):
    urls = [sim_task(sim)[1] for _ in range(3)]
    tasks = [
        completed_task(u, age=600 + i, prompt=f"koi pond number {i}") for i, u in enumerate(urls)
    ]
    tasks.append(completed_task(f"{sim.base_url}/media/gone.mp4", age=4 * 86400, prompt="koi lost"))
    other = completed_task(urls[0], age=700, prompt="a lighthouse at night")
    tasks.append(dataclasses.replace(other, task_id="sim-lighthouse"))
    for task in tasks:
        store.insert_task(task)
    out = tmp_path / "sheet.png"
    args = ["--db", str(settings.db_path), "sheet", "--search", "koi", "-o", str(out)]
    assert cli.main(args) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == str(out)
    assert "1 of 4 renders had no frame" in captured.err
    sheet = Image.open(out)
    assert sheet.width > 4 * 300 and sheet.height > 180
    # Nothing downloaded for a sheet: frames come from the links.
    assert all(store.get(t.id).local_path is None for t in tasks)
    nothing = ["--db", str(settings.db_path), "sheet", "--search", "zebra", "-o", str(out)]
    assert cli.main(nothing) == 1


def test_sheet_tiles_without_a_frame_keep_their_place() -> None:
    from seedance_tui.sheet import Tile, render_sheet

    task = completed_task("https://cdn.example/v.mp4", prompt="[bold]not markup[/] " * 8)
    task_id = next(f"task_sheet{i}" for i in range(100) if not media_fades_in(f"task_sheet{i}"))
    image = first_frame(media_bytes(task_id))
    sheet = render_sheet([Tile(task, image), Tile(task, None, "link expired, never saved")])
    assert sheet.size[0] > 600
    assert close(sheet.getpixel((20, 20)), media_colour(task_id), 30)  # no title: tile at 14,14


# -- terminal graphics -----------------------------------------------------------------


def test_graphics_fit_keeps_the_aspect_ratio() -> None:
    half = images.Graphics("halfblocks", "")
    assert half.fit((320, 180), 40, 20) == (40, 11)  # width-bound: 40 px wide, 22.5 tall
    assert half.fit((180, 320), 40, 8) == (9, 8)  # height-bound: 16 px tall
    assert half.pixels(40, 11) == (40, 22)
    kitty = images.Graphics("kitty", "", (10, 20))
    assert kitty.fit((320, 180), 40, 20) == (40, 11)
    assert kitty.pixels(4, 2) == (40, 40)


def test_detection_falls_back_to_half_blocks(monkeypatch, tmp_path) -> None:
    images.reset()
    try:
        assert images.detect("auto", {}).mode == "halfblocks"  # pytest's stdout: no terminal
        images.reset()
        web = images.detect("auto", {"TEXTUAL_DRIVER": "textual.drivers.web_driver:WebDriver"})
        assert web.mode == "halfblocks" and "web" in web.reason
        images.reset()
        assert images.detect("sixel", {}).mode == "sixel"
    finally:
        images.reset()


def test_tmux_passthrough_is_detected(monkeypatch, tmp_path) -> None:
    fake = tmp_path / "tmux"
    fake.write_text("#!/bin/sh\n[ \"$*\" = 'show-options -gqv allow-passthrough' ] && echo on\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    assert images.tmux_passthrough({}) is None
    assert images.tmux_passthrough({"TMUX": "/tmp/tmux-0/default,1,0"}) == "on"
    images.reset()
    try:
        found = images.detect("auto", {"TMUX": "/tmp/tmux-0/default,1,0"})
        assert found.mode == "halfblocks" and "allow-passthrough on" in found.reason
    finally:
        images.reset()


def test_image_setting_is_checked(monkeypatch) -> None:
    from seedance_tui.config import ConfigError, load_settings

    monkeypatch.setenv("SEEDANCE_TUI_IMAGES", "ascii-art")
    with pytest.raises(ConfigError, match="SEEDANCE_TUI_IMAGES"):
        load_settings()
    monkeypatch.setenv("SEEDANCE_TUI_IMAGES", "halfblocks")
    assert load_settings().images == "halfblocks"


@pytest.mark.parametrize(
    "sim_config", [SimConfig(generation_time=(0.3, 0.8), seed=3)], indirect=True
)
def test_media_of_a_known_task_keeps_its_shape_across_requests(sim) -> None:
    _, url = sim_task(sim, aspect="portrait")
    assert httpx.get(url).content == httpx.get(url).content
