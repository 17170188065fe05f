"""`download`, `open`, `frame`, `sheet`: the saved renders and their frames."""

from __future__ import annotations

from typing import Any

import click

from ..models import TaskStatus
from ..session import Session
from ..store import Filter
from ..text import inert, to_json
from .common import (
    COUNT,
    EXIT_FAILED,
    EXIT_OK,
    Options,
    UsageError,
    check_search,
    err,
    find_task,
    out,
    parse_since,
    pass_options,
    png_output,
    run_async,
)
from .display import DownloadDisplay


@click.command(short_help="save finished videos in the local library (result links expire)")
@click.argument("refs", metavar="ID...", nargs=-1)
@click.option("--all", "every", is_flag=True, help="every completed task not saved yet")
@click.option("--force", is_flag=True, help="download again even if saved")
@click.option("--json", "as_json", is_flag=True, help="print the results as JSON")
@pass_options
@run_async
async def download(
    options: Options, refs: tuple[str, ...], every: bool, force: bool, as_json: bool
) -> int:
    """Save finished videos to the library folder (config `library`), resuming an
    interrupted download. Prints each saved file's path (IDs as in `list`)."""
    from ..client import MediaClient
    from ..library import DownloadError, download_task, downloadable

    if bool(refs) == every:
        raise UsageError("give task ids or --all (not both)")
    settings = options.settings()
    with Session(settings) as session:
        store = session.store
        if every:
            tasks = downloadable(store)
            if force:
                flt = Filter(status=(TaskStatus.COMPLETED.value,))
                tasks = [t for t in store.list(flt, limit=None) if t.video_urls]
        else:
            tasks = []
            for ref in refs:
                task = find_task(store, ref)
                if task.status is not TaskStatus.COMPLETED or not task.video_urls:
                    raise UsageError(
                        f"task {task.short_id} is {task.status.value}: no video to save"
                    )
                tasks.append(task)
        if not tasks:
            err("nothing to download: every completed task is saved")
            return EXIT_OK
        results: list[dict[str, Any]] = []
        async with MediaClient() as media:
            with DownloadDisplay(len(tasks), quiet=as_json) as display:
                for task in tasks:
                    try:
                        path = await download_task(
                            task, store, settings, media=media, force=force,
                            on_progress=display.progress_for(task),
                        )  # fmt: skip
                    except DownloadError as exc:
                        display.failed(task, str(exc))
                        results.append({"id": task.id, "ok": False, "error": str(exc)})
                        continue
                    display.saved(task, str(path))
                    results.append({"id": task.id, "ok": True, "path": str(path)})
                    if not as_json:
                        out(str(path))
    if as_json:
        out(to_json(results))
    failed = sum(1 for r in results if not r["ok"])
    if failed:
        err(f"{len(results) - failed} saved, {failed} failed")
    return EXIT_FAILED if failed else EXIT_OK


@click.command("open", short_help="open a task's saved file (or its link) with the system's opener")
@click.argument("ref", metavar="ID")
@pass_options
def open_task(options: Options, ref: str) -> int:
    """Open a task's saved file, else its link (https only), with the system's opener.
    Over SSH or without a desktop there is no opener: the path or URL is printed instead,
    to copy."""
    from ..library import UnsafeTarget, open_target, open_with_system

    with Session(options.settings()) as session:
        task = find_task(session.store, ref)
    try:
        target = open_target(task)
    except UnsafeTarget as exc:
        err(f"error: {exc} (task {task.short_id})")
        return EXIT_FAILED
    if target is None:
        raise UsageError(f"task {task.short_id} has neither a saved file nor a link")
    if open_with_system(target):
        err(f"opened {inert(target, newlines=False)}")
    else:
        err("no system opener here (SSH or no desktop): copy this instead")
        out(inert(target, newlines=False))
    return EXIT_OK


@click.command(short_help="write a render's poster frame as PNG (saving the video first if needed)")
@click.argument("ref", metavar="ID")
@click.option("--output", "-o", metavar="FILE.png",
              help="write the frame here at the video's size (default: print the library's "
              "poster)")  # fmt: skip
@pass_options
@run_async
async def frame(options: Options, ref: str, output: str | None) -> int:
    """The render's poster frame: saves the video first if needed (with progress), then
    prints the library's poster path, or writes the frame at the video's size to
    FILE.png. Exit 1 when there is no video. ID: our id, its last 8 characters, or the
    provider's task id."""
    from .. import library
    from ..client import MediaClient
    from ..frames import FrameError, write_frame

    target = png_output(output)
    settings = options.settings()
    with Session(settings) as session:
        store = session.store
        task = find_task(store, ref)
        saving = task.status is TaskStatus.COMPLETED and library.saved_file(task) is None
        async with MediaClient() as media:
            with DownloadDisplay(1, quiet=not saving) as display:
                try:
                    path = await write_frame(task, store, settings, media=media, output=target,
                                             on_progress=display.progress_for(task))  # fmt: skip
                except FrameError as exc:
                    err(f"error: no frame: {inert(str(exc))}")
                    return EXIT_FAILED
    out(str(path))
    return EXIT_OK


@click.command(short_help="a PNG contact sheet of renders' frames, with captions")
@click.option("--since", metavar="DATE", help="renders created since: YYYY-MM-DD or an ISO time")
@click.option("--search", metavar="TEXT", help="words the prompt contains")
@click.option(
    "--limit", type=COUNT, default=100, show_default=True, help="newest N renders; 0: all"
)
@click.option("--output", "-o", metavar="FILE.png", required=True, help="where to write the sheet")
@pass_options
@run_async
async def sheet(
    options: Options, since: str | None, search: str | None, limit: int, output: str
) -> int:
    """A PNG contact sheet of completed renders, newest first, four to a row, each with
    its prompt, provider, credits, duration and id; a render with no frame keeps its tile
    with the reason."""
    from ..client import MediaClient
    from ..frames import FrameError
    from ..sheet import write_sheet

    target = png_output(output)
    assert target is not None
    since_at = parse_since(since)
    search = check_search(search)
    settings = options.settings()

    def progress(done: int, total: int) -> None:
        if done == total or done % 10 == 0:
            err(f"  {done}/{total} frames")

    with Session(settings) as session:
        async with MediaClient() as media:
            try:
                tiles = await write_sheet(session.store, settings, target, since=since_at,
                                          search=search, limit=limit, media=media,
                                          on_progress=progress)  # fmt: skip
            except FrameError as exc:
                err(f"error: {inert(str(exc))}")
                return EXIT_FAILED
    missing = sum(1 for tile in tiles if tile.image is None)
    if missing:
        err(f"{missing} of {len(tiles)} renders had no frame to show (see their tiles)")
    out(str(target))
    return EXIT_OK
