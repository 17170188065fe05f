"""The rendered videos: a small real MP4 per task, served with HTTP Range support.

Each video is H.264 in MP4 (PyAV's libx264, which its wheels carry), 3 s at 12 frames
a second: a flat background in the task's own colour (`media_colour`), a
pattern in a second colour and a white ball rolling across, so that every task looks
different in a gallery and a test can tell one video's frame from another's. About one
video in four fades in from black over its first half second, as real renders
sometimes do (the poster frame is then taken at 1 s). The moov box is at the end of the
file (PyAV's default, and a common layout), so a reader that wants the first frame
without the whole file must seek.

The encoded video is 15-45 KB; a `free` box (see `_padded`) brings the file to 100-450
KB, the size of a short real render's first seconds. Videos are made once per (task id,
shape) and kept in memory (`media_bytes` is an LRU cache): encoding one takes 10-50 ms,
serving it again nothing. The bytes depend on the
id and shape alone, so the simulator and a test compute the same file.
"""

from __future__ import annotations

import colorsys
import functools
import hashlib
import io
import random

# What the video looks like, by the shape of the task's aspect ratio.
SHAPES = {"landscape": (320, 180), "portrait": (180, 320), "square": (240, 240)}
FPS = 12
SECONDS = 3
FADE_FRAMES = FPS // 2  # the black start of a video that fades in
PATTERNS = ("stripes", "rings", "checks")
MEDIA_CACHE = 64  # videos kept in memory (each 100-450 KB)
PAD_MIN_BYTES = 100_000
PAD_SPAN_BYTES = 300_000


class RangeNotSatisfiable(Exception):
    """The Range header asks for bytes beyond the end of the file (answer 416)."""


def shape_of(aspect_ratio: object) -> str:
    """The video shape of a task's aspect ratio, in either provider's words."""
    if aspect_ratio in ("portrait", "9:16"):
        return "portrait"
    if aspect_ratio == "1:1":
        return "square"
    return "landscape"


def _digest(task_id: str) -> bytes:
    return hashlib.sha256(task_id.encode()).digest()


def _rgb(hue: float, saturation: float, value: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(hue % 1.0, saturation, value)
    return round(r * 255), round(g * 255), round(b * 255)


def media_colour(task_id: str) -> tuple[int, int, int]:
    """The background colour of the task's video (its top-left corner is always this)."""
    return _rgb(_digest(task_id)[0] / 256, 0.7, 0.85)


def media_accent(task_id: str) -> tuple[int, int, int]:
    digest = _digest(task_id)
    return _rgb(digest[0] / 256 + 0.3 + digest[1] / 1024, 0.55, 0.55)


def media_pattern(task_id: str) -> str:
    return PATTERNS[_digest(task_id)[2] % len(PATTERNS)]


def media_fades_in(task_id: str) -> bool:
    """Does the video start black (its first half second)?"""
    return _digest(task_id)[3] % 4 == 0


def _frame(task_id: str, shape: str, index: int):
    from PIL import Image, ImageDraw

    width, height = SHAPES[shape]
    if media_fades_in(task_id) and index < FADE_FRAMES:
        return Image.new("RGB", (width, height), (0, 0, 0))
    image = Image.new("RGB", (width, height), media_colour(task_id))
    draw = ImageDraw.Draw(image)
    accent = media_accent(task_id)
    # The pattern keeps clear of the top-left quarter: that corner is the plain colour.
    left, top = width // 4, height // 4
    pattern = media_pattern(task_id)
    if pattern == "stripes":
        step = max(12, width // 8)
        for x in range(-height, width, step * 2):
            draw.polygon(
                [(x, height), (x + step, height), (x + step + height, 0), (x + height, 0)],
                fill=accent,
            )
        draw.rectangle((0, 0, left, top), fill=media_colour(task_id))
    elif pattern == "rings":
        cx, cy = width * 5 // 8, height * 5 // 8
        for radius in range(max(width, height), 0, -max(10, height // 9)):
            colour = accent if (radius // max(10, height // 9)) % 2 else media_colour(task_id)
            draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=colour)
        draw.rectangle((0, 0, left, top), fill=media_colour(task_id))
    else:
        size = max(16, min(width, height) // 6)
        for y in range(top, height, size):
            for x in range(left, width, size):
                if (x // size + y // size) % 2:
                    draw.rectangle((x, y, x + size - 1, y + size - 1), fill=accent)
    frames = FPS * SECONDS
    radius = max(8, min(width, height) // 9)
    x = left + radius + (width - left - 2 * radius) * index // (frames - 1)
    y = height * 2 // 3
    draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=(255, 255, 255))
    return image


@functools.lru_cache(maxsize=MEDIA_CACHE)
def media_bytes(task_id: str, shape: str = "landscape") -> bytes:
    """The task's video: an MP4 (H.264, yuv420p) of SECONDS seconds, made from its id."""
    import av
    from av.codec.context import Flags

    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}")
    width, height = SHAPES[shape]
    buffer = io.BytesIO()
    # bitexact: no encoder version string in the file, so the bytes depend on the id only.
    with av.open(buffer, "w", format="mp4", options={"fflags": "+bitexact"}) as container:
        stream = container.add_stream(
            "libx264", rate=FPS, options={"preset": "ultrafast", "crf": "26", "threads": "1"}
        )
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.flags |= Flags.bitexact
        for index in range(FPS * SECONDS):
            frame = av.VideoFrame.from_image(_frame(task_id, shape, index))
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return _padded(buffer.getvalue(), task_id)


def _boxes(data: bytes) -> list[tuple[bytes, int, int]]:
    """The top-level boxes of an MP4: (type, start, end)."""
    boxes, offset = [], 0
    while offset + 8 <= len(data):
        size, kind = int.from_bytes(data[offset : offset + 4], "big"), data[offset + 4 : offset + 8]
        if size == 1:
            size = int.from_bytes(data[offset + 8 : offset + 16], "big")
        elif size == 0:
            size = len(data) - offset
        if size < 8:
            break
        boxes.append((kind, offset, offset + size))
        offset += size
    return boxes


def _padded(data: bytes, task_id: str) -> bytes:
    """The video with a `free` box of 100-400 KB just before its moov box.

    It stands for the bulk of a real render (megabytes of samples): a reader after the
    first frame must read the start, seek to the moov box at the end and back, and
    need not read the rest. Nothing in moov points past the samples, so the file plays
    as it did; players skip `free` boxes.
    """
    moov = next((start for kind, start, _ in _boxes(data) if kind == b"moov"), None)
    if moov is None:
        return data
    digest = _digest(task_id)
    size = PAD_MIN_BYTES + int.from_bytes(digest[4:8], "big") % PAD_SPAN_BYTES
    free = (size + 8).to_bytes(4, "big") + b"free" + random.Random(digest).randbytes(size)
    return data[:moov] + free + data[moov:]


def media_etag(task_id: str, shape: str = "landscape") -> str:
    return '"' + hashlib.sha256(media_bytes(task_id, shape)).hexdigest()[:20] + '"'


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive byte range a `Range` header asks for; None to send the whole file.

    Only a single `bytes=` range is honoured; anything else (several ranges, another
    unit, a malformed header) is ignored, as RFC 9110 allows.
    """
    if not header:
        return None
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash:
        return None
    try:
        if first == "":  # suffix: the last N bytes
            length = int(last)
            if length <= 0:
                raise RangeNotSatisfiable
            return max(0, size - length), size - 1
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        return None
    if start >= size:
        raise RangeNotSatisfiable
    if end < start:
        return None
    return start, min(end, size - 1)
