"""The local library: finished renders saved as files, because result links expire.

A download goes to `<name>.mp4.part` first, resumes with an HTTP Range request after an
interruption (a 206 must start where the part file ends; a 200 starts over), is checked
against the size the server declared, and is renamed into place atomically; then the
path is recorded in the history (`tasks.local_path`). HTTP goes through
`client.MediaClient`, which never sends an API key.

Files are named `YYYY-MM-DD_<short id>_<prompt slug>.mp4` (the task's creation date in
local time; the slug is ASCII letters, digits and dashes, at most 40 characters), so a
name is valid on every filesystem and sorts by date.

For the TUI: `download_task(..., on_progress=cb)` with `cb(done_bytes, total_bytes)`;
`link_state(task, settings, now)` → "saved" | "missing" | "expired" | "remote" | None;
`AutoDownloader` saves each completed render when `settings.auto_download` is on (the
session builds it beside the engine).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import errno
import logging
import os
import re
import time
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from .config import Settings
from .events import DownloadProgress, Emit, EngineEvent, Notice, TaskChanged
from .links import likely_expired, link_state, saved_file  # noqa: F401 (re-exported)
from .models import Task, TaskStatus
from .store import Store, StoreError
from .text import inert
from .urls import web_link_problem

if TYPE_CHECKING:
    # The HTTP stack is imported where a download starts: the dashboard only needs the
    # library's file and link helpers before its first frame.
    from .client import MediaClient

log = logging.getLogger(__name__)

Progress = Callable[[int, int | None], None]
SLUG_MAX = 40
DEFAULT_ATTEMPTS = 3
RETRY_PAUSE = 1.0


class DownloadError(Exception):
    """A download could not be completed; the `.part` file is kept when resuming may help."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


# -- names -----------------------------------------------------------------------------


def slugify(text: str, limit: int = SLUG_MAX) -> str:
    """ASCII letters, digits and single dashes; cut at a word boundary; never empty."""
    flat = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    slug = re.sub(r"[^a-z0-9]+", "-", flat).strip("-")
    if len(slug) > limit:
        cut = slug[:limit]
        slug = cut.rsplit("-", 1)[0] if "-" in cut[limit // 2 :] else cut
        slug = slug.strip("-")
    return slug or "video"


def file_name(task: Task) -> str:
    day = dt.datetime.fromtimestamp(task.created_at).strftime("%Y-%m-%d")
    return f"{day}_{task.short_id}_{slugify(task.prompt)}.mp4"


def target_path(task: Task, folder: Path) -> Path:
    return folder / file_name(task)


# -- downloading -----------------------------------------------------------------------


async def download_url(
    media: MediaClient,
    url: str,
    dest: Path,
    *,
    on_progress: Progress | None = None,
    attempts: int = DEFAULT_ATTEMPTS,
    retry_pause: float = RETRY_PAUSE,
    record: Callable[[], None] | None = None,
) -> int:
    """Download `url` to `dest` (resuming `dest.part`); returns the file's size.

    `record` is called once the part file is complete, before it is renamed into place:
    a finished file is never at its final name unless the history knows it. If `record`
    fails (a full disk under the history), the complete `.part` stays for the next
    download to finish."""
    from .client import MediaError

    part = dest.with_name(dest.name + ".part")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(
            f"cannot create the library folder {dest.parent}: {exc.strerror}", retryable=False
        ) from None
    last_error: Exception | None = None
    for attempt in range(1, max(1, attempts) + 1):
        try:
            size = await _fetch_once(media, url, part, on_progress)
        except MediaError as exc:
            last_error = exc
            if not exc.retryable:
                raise DownloadError(str(exc), retryable=False) from None
        except DownloadError as exc:
            last_error = exc
            if not exc.retryable:
                raise
        else:
            if record is not None:
                try:
                    record()
                except StoreError as exc:
                    raise DownloadError(
                        f"the video is complete in {part}, but the history could not record "
                        f"it ({exc}); the next download of this task finishes it"
                    ) from None
            os.replace(part, dest)
            return size
        if attempt < attempts:
            await asyncio.sleep(retry_pause)
    assert last_error is not None
    raise DownloadError(
        f"{last_error} (after {attempts} attempt{'s' if attempts != 1 else ''}; "
        f"{part.name} is kept and the next download resumes it)"
    )


async def _fetch_once(
    media: MediaClient, url: str, part: Path, on_progress: Progress | None
) -> int:
    offset = part.stat().st_size if part.exists() else 0
    async with media.open(url, offset) as stream:
        if stream.start == 0 and offset:
            offset = 0  # the server sent the whole file: start over
        total = stream.total
        done = offset
        if on_progress:
            on_progress(done, total)
        mode = "r+b" if offset else "wb"
        if not part.exists():
            mode = "wb"
        try:
            with open(part, mode) as fh:
                fh.seek(offset)
                fh.truncate()
                async for chunk in stream.chunks:
                    fh.write(chunk)
                    done += len(chunk)
                    if on_progress:
                        on_progress(done, total)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                # The part file would hold the space the history needs: let it go (the
                # link can be downloaded again while it lives).
                part.unlink(missing_ok=True)
                raise DownloadError(
                    f"the disk holding {part.parent} is full; the partial download was "
                    "removed. Free some space and download it again",
                    retryable=False,
                ) from None
            raise DownloadError(f"cannot write {part}: {exc.strerror}", retryable=False) from None
        if total is None and stream.framed:
            total = done  # chunked: the last chunk marks the end, and it came
    if total is None:
        raise DownloadError(
            "the server did not say how large the file is, so it cannot be checked",
            retryable=False,
        )
    if done < total:
        raise DownloadError(f"the download stopped at {done} of {total} bytes")
    if done > total:
        part.unlink(missing_ok=True)
        raise DownloadError(f"the server sent {done} bytes but declared {total}; discarded")
    return done


async def download_task(
    task: Task,
    store: Store,
    settings: Settings,
    *,
    media: MediaClient | None = None,
    on_progress: Progress | None = None,
    attempts: int = DEFAULT_ATTEMPTS,
    retry_pause: float = RETRY_PAUSE,
    force: bool = False,
    clock: Callable[[], float] = time.time,
) -> Path:
    """Save a completed task's video in the library and record its path; returns the path.

    An already saved file is returned as it is unless `force`. Raises DownloadError.
    """
    if task.status is not TaskStatus.COMPLETED or not task.video_urls:
        raise DownloadError(f"task {task.short_id} has no finished video", retryable=False)
    existing = saved_file(task)
    if existing is not None and not force:
        return existing
    dest = target_path(task, settings.library_dir())

    def record() -> None:
        store.set_local_path(task.id, str(dest), clock())

    owned = media is None
    if media is None:
        from .client import MediaClient

        media = MediaClient()
    try:
        await download_url(
            media,
            task.video_urls[0],
            dest,
            on_progress=on_progress,
            attempts=attempts,
            retry_pause=retry_pause,
            record=record,
        )
    finally:
        if owned:
            await media.aclose()
    with contextlib.suppress(StoreError):  # the path is recorded; the event is a nicety
        store.add_event(task.id, "saved", str(dest), clock())
    return dest


def downloadable(store: Store, *, limit: int | None = None) -> list[Task]:
    """Completed tasks with a link and no local file, newest first."""
    from .store import Filter

    tasks = store.list(Filter(status=(TaskStatus.COMPLETED.value,)), limit=None)
    out = [t for t in tasks if t.video_urls and saved_file(t) is None]
    return out[:limit] if limit else out


# -- auto-download ---------------------------------------------------------------------


class AutoDownloader:
    """Saves each render as it completes (on when `auto_download`).

    An engine listener (`on_event`) and a `Background` worker of the engine (`busy`,
    `kick`): the session builds it with the engine's `emit` and `wake`, so it tells the
    engine's listeners what it saved (`TaskChanged`, `Notice`) and how far it got
    (`DownloadProgress`), and wakes the loop when a download ends."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        emit: Emit,
        wake: Callable[[], None],
        media: MediaClient | None = None,
        clock: Callable[[], float] = time.time,
        attempts: int = DEFAULT_ATTEMPTS,
    ) -> None:
        if media is None:
            from .client import MediaClient

            media = MediaClient()
        self.store = store
        self.settings = settings
        self.emit = emit
        self.wake = wake
        self.media = media
        self.clock = clock
        self.attempts = attempts
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.progress: dict[str, tuple[int, int | None]] = {}  # task id → (done, total)

    @property
    def active(self) -> bool:
        return bool(self._tasks)

    def busy(self) -> bool:
        return self.active

    def kick(self) -> None:
        """Nothing to start on a turn of the loop: downloads start from `on_event`."""

    def on_event(self, event: EngineEvent) -> None:
        if not isinstance(event, TaskChanged):
            return
        task = event.task
        if (
            task.status is TaskStatus.COMPLETED
            # Only a transition this engine saw: another instance sharing the history
            # saves the renders it finished itself.
            and event.previous in (TaskStatus.PROCESSING, TaskStatus.SUBMITTING)
            and task.video_urls
            and not task.local_path
            and task.id not in self._tasks
        ):
            self.start(task)

    def start(self, task: Task) -> None:
        try:
            loop_task = asyncio.get_running_loop().create_task(self._run(task))
        except RuntimeError:
            return  # no loop (a synchronous caller): `download --all` saves it later
        self._tasks[task.id] = loop_task

    def _progress(self, id: str, done: int, total: int | None) -> None:
        self.progress[id] = (done, total)
        self.emit(DownloadProgress(id, done, total))

    async def _run(self, task: Task) -> None:
        try:
            path = await download_task(
                task,
                self.store,
                self.settings,
                media=self.media,
                on_progress=lambda d, t: self._progress(task.id, d, t),
                attempts=self.attempts,
                clock=self.clock,
            )
            self.emit(TaskChanged(self.store.get(task.id), TaskStatus.COMPLETED))
            self.emit(
                Notice("information", f"saved {task.short_id} to {path}", topic=f"saved:{task.id}")
            )
        except DownloadError as exc:
            self.emit(Notice("warning", f"could not save {task.short_id}: {exc}"))
        except Exception as exc:  # never let a download crash the engine
            log.exception("auto-download of %s failed", task.id)
            self.emit(Notice("error", f"saving {task.short_id} failed: {type(exc).__name__}"))
        finally:
            self._tasks.pop(task.id, None)
            self.progress.pop(task.id, None)
            self.wake()

    async def wait(self) -> None:
        """Until every download started so far has ended."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)

    async def aclose(self) -> None:
        """Stop downloads in progress (their `.part` files stay for a resume)."""
        for loop_task in list(self._tasks.values()):
            loop_task.cancel()
        await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)
        await self.media.aclose()


# -- opening ---------------------------------------------------------------------------


class UnsafeTarget(ValueError):
    """A link the desktop's opener must not be given; the message says why."""


def open_target(task: Task) -> str | None:
    """What "open" shows for a task: its local file (an absolute path), else its first
    link, if that is an https link (plain http only to loopback); None when it has
    neither. A link from the server that is anything else raises UnsafeTarget."""
    path = saved_file(task)
    if path is not None:
        return os.path.abspath(path)
    if not task.video_urls:
        return None
    url = task.video_urls[0]
    problem = web_link_problem(url)
    if problem is not None:
        raise UnsafeTarget(f'refusing to open the link "{inert(url, newlines=False)}": {problem}')
    return url


def system_opener(env: dict[str, str] | None = None) -> list[str] | None:
    """The command that opens a file or URL on this desktop; None over SSH or headless."""
    import shutil
    import sys

    env = dict(os.environ if env is None else env)
    if env.get("SSH_CONNECTION") or env.get("SSH_TTY"):
        return None
    if sys.platform == "darwin":
        return ["open"]
    if sys.platform == "win32":
        return ["explorer"]
    if not (env.get("DISPLAY") or env.get("WAYLAND_DISPLAY")):
        return None
    for name in ("xdg-open", "gio"):
        found = shutil.which(name)
        if found:
            return [found, "open"] if name == "gio" else [found]
    return None


def open_with_system(target: str, env: dict[str, str] | None = None) -> bool:
    """Open a saved file or a link (as `open_target` gives them) with the desktop's
    opener; False when there is none (copy instead).

    The opener gets one argument that cannot be read as an option: an absolute path
    (starting with "/", or a drive on Windows) or a link starting with its scheme. xdg-open
    takes no "--", so this is what keeps "--help" or "-x" from being an option; anything
    else raises UnsafeTarget."""
    import subprocess

    if not (os.path.isabs(target) or web_link_problem(target) is None):
        raise UnsafeTarget(
            f'refusing to open "{inert(target, newlines=False)}": not a saved file or an https link'
        )
    command = system_opener(env)
    if command is None:
        return False
    try:
        subprocess.Popen(
            [*command, target],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError:
        return False
    return True
