"""A contact sheet: the poster frames of a selection of renders on one PNG, with captions.

`seedance-tui sheet [--since DATE] [--search TEXT] [--limit N] -o sheet.png`: completed
renders, newest first, four to a row. Each tile is the poster (`frames.make_poster`: from
the cache, the saved file, or the live link) fitted into TILE_SIZE, under it the prompt
(two lines at most), then provider, credits, duration and the short id. A render with no
frame to show (its link expired and it was never saved, or its video could not be read)
keeps its place with the reason written in it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import frames
from .models import Task, TaskStatus
from .store import Filter, Store
from .text import one_line

if TYPE_CHECKING:
    from PIL.Image import Image
    from PIL.ImageFont import FreeTypeFont, ImageFont

    from .client import MediaClient
    from .config import Settings

TILE_SIZE = (320, 180)
PADDING = 14
FONT_SIZE = 14
LINE_GAP = 4
CAPTION_LINES = 3  # two of prompt, one of facts
MAX_COLUMNS = 4
BACKGROUND = (24, 24, 28)
TILE_BACKGROUND = (44, 44, 52)
TEXT = (232, 232, 236)
DIM = (150, 150, 160)
CONCURRENCY = 3  # posters made at once (links are read while others decode)


@dataclass
class Tile:
    task: Task
    image: Image | None
    note: str | None = None  # why there is no image


def facts(task: Task) -> str:
    """provider · credits · duration · short id, as under each tile (and in the gallery)."""
    credits = task.credits_net if task.credits_charged is not None else task.credits_estimated
    parts = [task.provider.value]
    if credits is not None:
        parts.append(f"{credits} cr")
    duration = task.params.get("duration")
    if duration:
        parts.append(f"{duration}s")
    parts.append(task.short_id)
    return " · ".join(parts)


def select(store: Store, *, since: float | None, search: str | None, limit: int) -> list[Task]:
    """The completed renders a sheet shows, newest first."""
    selection = Filter(status=(TaskStatus.COMPLETED.value,), search=search, since=since)
    return store.list(selection, limit=limit or None)


async def gather_tiles(
    tasks: list[Task],
    settings: Settings,
    media: MediaClient,
    *,
    on_progress: Callable[[int, int], None] | None = None,
) -> list[Tile]:
    """Each task's poster (made where missing, CONCURRENCY at a time), in order."""
    from PIL import Image as PILImage

    semaphore = asyncio.Semaphore(CONCURRENCY)
    done = 0

    async def one(task: Task) -> Tile:
        nonlocal done
        async with semaphore:
            try:
                path = await frames.make_poster(task, settings, media)
                image = await asyncio.to_thread(lambda: PILImage.open(path).convert("RGB"))
                tile = Tile(task, image)
            except frames.NoVideo:
                tile = Tile(task, None, "link expired, never saved")
            except frames.FrameError as exc:
                tile = Tile(task, None, one_line(str(exc), 80))
            done += 1
            if on_progress:
                on_progress(done, len(tasks))
            return tile

    return list(await asyncio.gather(*(one(task) for task in tasks)))


def _font(size: int) -> FreeTypeFont | ImageFont:
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def _fit(text: str, font, width: int) -> str:
    """`text` cut with an ellipsis to fit `width` pixels."""
    if font.getlength(text) <= width:
        return text
    while text and font.getlength(text + "…") > width:
        text = text[:-1]
    return text.rstrip() + "…"


def _wrap(text: str, font, width: int, lines: int) -> list[str]:
    """Up to `lines` lines of `text` at word boundaries; the last one cut with an ellipsis."""
    words = one_line(text, 2000).split()
    out: list[str] = []
    current = ""
    for index, word in enumerate(words):
        candidate = f"{current} {word}".strip()
        if font.getlength(candidate) <= width or not current:
            current = candidate
            continue
        out.append(current)
        current = word
        if len(out) == lines - 1:
            current = " ".join([word, *words[index + 1 :]])
            break
    if current:
        out.append(current)
    if len(out) > lines:
        out = out[:lines]
    out[-1:] = [_fit(out[-1], font, width)] if out else []
    return out


def render_sheet(tiles: list[Tile], *, title: str | None = None) -> Image:
    """The PNG-ready sheet of `tiles` (at least one)."""
    from PIL import Image as PILImage
    from PIL import ImageDraw

    font = _font(FONT_SIZE)
    small = _font(FONT_SIZE - 2)
    line = FONT_SIZE + LINE_GAP
    columns = max(1, min(MAX_COLUMNS, len(tiles)))
    rows = (len(tiles) + columns - 1) // columns
    tile_w, tile_h = TILE_SIZE
    cell_h = tile_h + PADDING // 2 + CAPTION_LINES * line
    header = line + PADDING if title else 0
    width = PADDING + columns * (tile_w + PADDING)
    height = PADDING + header + rows * (cell_h + PADDING)
    sheet = PILImage.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((PADDING, PADDING), _fit(title, font, width - 2 * PADDING), TEXT, font=font)
    for index, tile in enumerate(tiles):
        row, column = divmod(index, columns)
        x = PADDING + column * (tile_w + PADDING)
        y = PADDING + header + row * (cell_h + PADDING)
        draw.rectangle((x, y, x + tile_w - 1, y + tile_h - 1), fill=TILE_BACKGROUND)
        if tile.image is not None:
            picture = frames.thumbnail(tile.image, TILE_SIZE)
            sheet.paste(
                picture, (x + (tile_w - picture.width) // 2, y + (tile_h - picture.height) // 2)
            )
        else:
            note = _wrap(tile.note or "no frame", small, tile_w - 24, 3)
            top = y + (tile_h - len(note) * line) // 2
            for offset, text in enumerate(note):
                left = x + (tile_w - int(small.getlength(text))) // 2
                draw.text((left, top + offset * line), text, DIM, font=small)
        caption_y = y + tile_h + PADDING // 2
        prompt = _wrap(tile.task.prompt, font, tile_w, CAPTION_LINES - 1)
        for offset, text in enumerate(prompt):
            draw.text((x, caption_y + offset * line), text, TEXT, font=font)
        facts_y = caption_y + (CAPTION_LINES - 1) * line
        draw.text((x, facts_y), _fit(facts(tile.task), small, tile_w), DIM, font=small)
    return sheet


async def write_sheet(
    store: Store,
    settings: Settings,
    output,
    *,
    since: float | None = None,
    search: str | None = None,
    limit: int = 100,
    media: MediaClient,
    on_progress: Callable[[int, int], None] | None = None,
) -> list[Tile]:
    """Select, gather and write the sheet to `output` (PNG); returns its tiles.

    Raises frames.NoVideo when the selection holds no completed render."""
    tasks = select(store, since=since, search=search, limit=limit)
    if not tasks:
        raise frames.NoVideo("no completed render matches: nothing to put on a sheet")
    tiles = await gather_tiles(tasks, settings, media, on_progress=on_progress)
    parts = [f"seedance-tui · {len(tiles)} render{'s' if len(tiles) != 1 else ''}"]
    if search:
        parts.append(f"search “{one_line(search, 60)}”")
    title = " · ".join(parts)
    image = await asyncio.to_thread(render_sheet, tiles, title=title)
    await asyncio.to_thread(frames.save_png, image, output)
    return tiles
