"""Poster frames of the renders, taken with PyAV and kept as small PNGs in the library.

A task's poster is the first frame of its video, or the one at 1 s when the first is
black (renders often fade in). It is taken from the saved file when there is one, else
from the link while it still works, reading only the bytes the decoder asks for: a
seekable file over HTTP Range requests (`LinkFile`), every request made by
`client.MediaClient` (no API key; https, or http to loopback only) on the event loop
while PyAV decodes in a worker thread. FFmpeg never opens a URL itself.

The poster is cached as `<library>/frames/<task id>.png`, at most POSTER_BOX pixels, so a
gallery of the history decodes each video once. A completed render whose link has likely
expired and that was never saved has no video to take a frame from: `NoVideo` says so.

For the dashboard, `FrameLoader` runs at most a few extractions at a time, lets several
callers wait for the same one, and remembers failures for the session. For the command
line, `write_frame` saves the render first when needed (with progress) and writes the
frame at the video's full size.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import io
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from . import library, paths
from .models import Task, TaskStatus
from .text import span

if TYPE_CHECKING:
    from PIL.Image import Image

    from .client import MediaClient
    from .config import Settings
    from .store import Store

POSTER_BOX = (480, 480)  # the cached poster fits in this many pixels
POSTER_AT = 1.0  # seconds: where the poster is taken when the first frame is black
DARK_LUMA = 32  # a pixel darker than this (of 255) counts as black
DARK_SHARE = 0.98  # a frame is black when this share of its pixels is
LINK_BLOCK = 64 * 1024  # bytes fetched per Range request, at least
LINK_CAP = 48 * 1024 * 1024  # the most a poster may read from a link (else: save it first)
FETCH_TIMEOUT = 120.0  # seconds a decoder thread waits for one block


class FrameError(Exception):
    """A poster could not be made (the message says why and what to do)."""


class NoVideo(FrameError):
    """There is no video to take a frame from: not a completed render, or its link expired
    and it was never saved."""


# -- where posters live ----------------------------------------------------------------


def frames_dir(settings: Settings) -> Path:
    return paths.frames_dir(settings.library_dir())


def poster_path(settings: Settings, task_id: str) -> Path:
    return frames_dir(settings) / f"{task_id}.png"


def cached_poster(settings: Settings, task: Task) -> Path | None:
    path = poster_path(settings, task.id)
    return path if path.is_file() else None


def no_video_reason(task: Task, settings: Settings, now: float | None = None) -> str | None:
    """Why a task has no video to take a frame from, or None when it has one (or may)."""
    if task.status is not TaskStatus.COMPLETED:
        return f"task {task.short_id} is {task.status.value}: it has no video"
    if not task.video_urls and library.saved_file(task) is None:
        return f"task {task.short_id} completed without a video link"
    state = library.link_state(task, settings, now)
    if state == "expired":
        finished = task.completed_at or task.submitted_at or task.created_at
        age = span((time.time() if now is None else now) - finished)
        return (
            f"the link of {task.short_id} has likely expired (it is {age} old) and the video "
            "was never saved"
        )
    return None


# -- decoding --------------------------------------------------------------------------


def is_black(image: Image) -> bool:
    """Nearly every pixel dark: a fade-in's first frame, a blank leader."""
    gray = image.convert("L")
    histogram = gray.histogram()
    dark = sum(histogram[:DARK_LUMA])
    return dark >= DARK_SHARE * gray.width * gray.height


def extract_poster(source: str | os.PathLike[str] | io.RawIOBase) -> Image:
    """The poster frame of a video (a path or a seekable binary file), full size, RGB."""
    import av

    try:
        with av.open(source, "r") as container:
            if not container.streams.video:
                raise FrameError("the file has no video stream")
            stream = container.streams.video[0]
            first: Image | None = None
            for frame in container.decode(stream):
                if first is None:
                    first = frame.to_image()
                    if not is_black(first):
                        return first
                    continue
                # Half a frame early counts: timestamps are rounded to the time base.
                if frame.time is not None and frame.time >= POSTER_AT - 0.02:
                    return frame.to_image()
            if first is None:
                raise FrameError("the video has no frames")
            return first  # black throughout, or shorter than POSTER_AT
    except av.FFmpegError as exc:
        raise FrameError(f"the video could not be decoded ({exc.strerror or exc})") from None


def thumbnail(image: Image, box: tuple[int, int] = POSTER_BOX) -> Image:
    from PIL import Image as PILImage

    small = image.copy()
    small.thumbnail(box, PILImage.Resampling.LANCZOS, reducing_gap=3.0)
    return small


def save_png(image: Image, path: Path) -> Path:
    """Write atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            image.save(fh, format="PNG", optimize=False)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def _cache_from_file(settings: Settings, task: Task, video: Path) -> Path:
    return save_png(thumbnail(extract_poster(video)), poster_path(settings, task.id))


# -- reading a link without downloading it ---------------------------------------------


async def read_span(media: MediaClient, url: str, start: int, length: int) -> tuple[bytes, int]:
    """`length` bytes of `url` from `start` (fewer at the end) and the file's size.

    One request (a Range request unless `start` is 0); the answer is read only as far as
    needed and the connection closed."""
    from .client import MediaError

    wanted = bytearray()
    try:
        async with media.open(url, start) as stream:
            if stream.total is None:
                raise FrameError("the media server did not say how large the video is")
            skip = start - stream.start  # a server that ignores Range sends from 0
            async for chunk in stream.chunks:
                if skip:
                    cut = min(skip, len(chunk))
                    chunk, skip = chunk[cut:], skip - cut
                wanted.extend(chunk)
                if len(wanted) >= length:
                    break
            total = stream.total
    except MediaError as exc:
        if exc.http_status is None and exc.retryable:
            raise FrameError(f"could not read the link: {exc}") from None
        raise FrameError(str(exc)) from None
    return bytes(wanted[:length]), total


class LinkFile(io.RawIOBase):
    """A read-only, seekable file over a video link, for PyAV in a worker thread.

    Reads fetch the missing LINK_BLOCK-sized blocks they cover (one request per run of
    missing blocks) through `fetch(start, length)`, which runs on the event loop; blocks
    are kept, so seeking back costs nothing. At most `cap` bytes are fetched.
    """

    def __init__(
        self,
        fetch: Callable[[int, int], bytes],
        size: int,
        *,
        first: bytes = b"",
        block: int = LINK_BLOCK,
        cap: int = LINK_CAP,
    ) -> None:
        super().__init__()
        self._fetch = fetch
        self.size = size
        self.block = block
        self.cap = cap
        self.fetched = 0  # bytes fetched so far (the first block's included)
        self.requests = 0
        self.error: FrameError | None = None  # why a fetch failed, if one did
        self._blocks: dict[int, bytes] = {}
        self._pos = 0
        if first:
            self._store(0, first)
            self.fetched = len(first)

    def _store(self, start: int, data: bytes) -> None:
        for offset in range(0, len(data), self.block):
            self._blocks[(start + offset) // self.block] = data[offset : offset + self.block]

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer) -> int:  # type: ignore[override]
        """Bytes from the link; after a failed fetch, the end of the file (the failure is
        kept in `error`: an exception raised into PyAV's read callback is printed on
        stderr for every retry it makes, which would scribble over the dashboard)."""
        if self.error is not None:
            return 0
        try:
            return self._readinto(buffer)
        except FrameError as exc:
            self.error = exc
            return 0

    def _readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        end = min(self._pos + len(view), self.size)
        if self._pos >= end:
            return 0
        first, last = self._pos // self.block, (end - 1) // self.block
        index = first
        while index <= last:
            if index in self._blocks:
                index += 1
                continue
            run_end = index
            while run_end + 1 <= last and run_end + 1 not in self._blocks:
                run_end += 1
            start = index * self.block
            length = min((run_end + 1) * self.block, self.size) - start
            if self.fetched + length > self.cap:
                raise FrameError(
                    f"the first frame needs more than {self.cap // 2**20} MiB of the video: "
                    "save it first (d), then its frame is taken from the file"
                )
            data = self._fetch(start, length)
            self.requests += 1
            self.fetched += len(data)
            if len(data) < length:
                raise FrameError("the media server sent less than asked for")
            self._store(start, data)
            index = run_end + 1
        done = 0
        pos = self._pos
        while pos < end:
            block = self._blocks[pos // self.block]
            inner = pos % self.block
            piece = block[inner : inner + (end - pos)]
            view[done : done + len(piece)] = piece
            done += len(piece)
            pos += len(piece)
        self._pos = pos
        return done


class _LoopFetcher:
    """`fetch(start, length)` for a LinkFile: runs `read_span` on the loop and waits.

    `cancel()` (from the loop) makes a waiting or later fetch fail at once, so a decoder
    thread whose caller went away ends instead of waiting out its timeout."""

    def __init__(self, loop: asyncio.AbstractEventLoop, media: MediaClient, url: str) -> None:
        self.loop = loop
        self.media = media
        self.url = url
        self.cancelled = False
        self._current: concurrent.futures.Future | None = None

    def __call__(self, start: int, length: int) -> bytes:
        if self.cancelled:
            raise FrameError("cancelled")
        future = asyncio.run_coroutine_threadsafe(
            read_span(self.media, self.url, start, length), self.loop
        )
        self._current = future
        try:
            data, _ = future.result(FETCH_TIMEOUT)
        except concurrent.futures.CancelledError:
            raise FrameError("cancelled") from None
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise FrameError("the media server stopped answering") from None
        return data

    def cancel(self) -> None:
        self.cancelled = True
        if self._current is not None:
            self._current.cancel()


async def poster_from_link(media: MediaClient, url: str) -> tuple[Image, LinkFile]:
    """The poster of the video at `url`, reading only what the decoder needs."""
    first, size = await read_span(media, url, 0, LINK_BLOCK)
    fetcher = _LoopFetcher(asyncio.get_running_loop(), media, url)
    link = LinkFile(fetcher, size, first=first)
    try:
        image = await asyncio.to_thread(extract_poster, link)
    except asyncio.CancelledError:
        fetcher.cancel()
        raise
    except FrameError:
        if link.error is not None:
            raise link.error from None  # what went wrong, not what the decoder made of it
        raise
    return image, link


# -- one task's poster -----------------------------------------------------------------


async def make_poster(task: Task, settings: Settings, media: MediaClient) -> Path:
    """The task's cached poster, made now if needed (from the file, else the link)."""
    cached = cached_poster(settings, task)
    if cached is not None:
        return cached
    reason = no_video_reason(task, settings)
    if reason is not None:
        raise NoVideo(reason)
    video = library.saved_file(task)
    if video is not None:
        return await asyncio.to_thread(_cache_from_file, settings, task, video)
    image, _ = await poster_from_link(media, task.video_urls[0])
    small = await asyncio.to_thread(thumbnail, image)
    return await asyncio.to_thread(save_png, small, poster_path(settings, task.id))


async def write_frame(
    task: Task,
    store: Store,
    settings: Settings,
    *,
    media: MediaClient,
    output: Path | None = None,
    on_progress: library.Progress | None = None,
) -> Path:
    """`seedance-tui frame`: save the render first if needed, then write its poster.

    With `output`, the frame at the video's full size goes there as PNG; either way the
    library's small poster is (re)made. Returns the path written. Raises NoVideo when
    there is no video to take it from, FrameError when it could not be read."""
    if task.status is not TaskStatus.COMPLETED:
        raise NoVideo(f"task {task.short_id} is {task.status.value}: it has no video")
    video = library.saved_file(task)
    if video is None:
        if not task.video_urls:
            raise NoVideo(f"task {task.short_id} completed without a video link")
        expired = no_video_reason(task, settings)
        try:
            video = await library.download_task(
                task, store, settings, media=media, on_progress=on_progress
            )
        except library.DownloadError as exc:
            if expired is not None:
                raise NoVideo(f"{expired} ({exc})") from None
            raise FrameError(f"the video could not be saved: {exc}") from None
    image = await asyncio.to_thread(extract_poster, video)
    cache = await asyncio.to_thread(
        lambda: save_png(thumbnail(image), poster_path(settings, task.id))
    )
    if output is None:
        return cache
    return await asyncio.to_thread(save_png, image, output)


# -- the dashboard's loader ------------------------------------------------------------


def _retrieved(done: asyncio.Task) -> None:
    if not done.cancelled():
        done.exception()


class FrameLoader:
    """Posters for the dashboard: shared extractions, bounded concurrency, failures kept.

    `poster(task)` returns the cached PNG's path, making it if needed. Several callers
    asking for the same task wait for one extraction, which finishes even when they stop
    waiting (the next look at the task finds it cached). A failure is remembered for the
    task in its current library state: asking again answers at once with the same error
    until the task changes (saved, say).
    """

    def __init__(self, settings: Settings, *, concurrency: int = 2) -> None:
        self.settings = settings
        self.concurrency = concurrency
        self._media: MediaClient | None = None
        self._semaphore: asyncio.Semaphore | None = None
        self._running: dict[str, asyncio.Task[Path]] = {}
        self._failures: dict[tuple[str, str | None], FrameError] = {}
        self.extracted = 0  # posters made by this loader (tests read it)

    def _key(self, task: Task) -> tuple[str, str | None]:
        return task.id, task.local_path

    def known_failure(self, task: Task) -> FrameError | None:
        return self._failures.get(self._key(task))

    async def poster(self, task: Task) -> Path:
        cached = cached_poster(self.settings, task)
        if cached is not None:
            return cached
        failure = self._failures.get(self._key(task))
        if failure is not None:
            raise failure
        running = self._running.get(task.id)
        if running is None:
            running = asyncio.get_running_loop().create_task(self._make(task))
            # Its failure is kept in _failures; when every caller stopped waiting, nobody
            # else reads it, and asyncio would log it as never retrieved.
            running.add_done_callback(_retrieved)
            self._running[task.id] = running
        return await asyncio.shield(running)

    async def _make(self, task: Task) -> Path:
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.concurrency)
        try:
            async with self._semaphore:
                if self._media is None:
                    from .client import MediaClient

                    self._media = MediaClient()
                path = await make_poster(task, self.settings, self._media)
                self.extracted += 1
                return path
        except FrameError as exc:
            self._failures[self._key(task)] = exc
            raise
        except OSError as exc:  # the library folder is not writable, say
            failure = FrameError(f"the frame could not be saved: {exc}")
            self._failures[self._key(task)] = failure
            raise failure from None
        finally:
            self._running.pop(task.id, None)

    async def aclose(self) -> None:
        for running in list(self._running.values()):
            running.cancel()
        await asyncio.gather(*self._running.values(), return_exceptions=True)
        if self._media is not None:
            await self._media.aclose()
