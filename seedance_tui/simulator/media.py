"""The rendered "videos": deterministic bytes per task, served with HTTP Range support."""

from __future__ import annotations

import functools
import hashlib
import random

MEDIA_MIN_BYTES = 200_000
MEDIA_SPAN_BYTES = 200_000


class RangeNotSatisfiable(Exception):
    """The Range header asks for bytes beyond the end of the file (answer 416)."""


def _box(kind: bytes, payload: bytes) -> bytes:
    return (8 + len(payload)).to_bytes(4, "big") + kind + payload


@functools.lru_cache(maxsize=32)
def media_bytes(task_id: str) -> bytes:
    """A few hundred KB seeded from the task id: an MP4 `ftyp` box, then an `mdat` box."""
    digest = hashlib.sha256(task_id.encode()).digest()
    size = MEDIA_MIN_BYTES + int.from_bytes(digest[:4], "big") % MEDIA_SPAN_BYTES
    ftyp = _box(b"ftyp", b"isom" + (0x200).to_bytes(4, "big") + b"isomiso2avc1mp41")
    payload_len = size - len(ftyp) - 8
    mdat = _box(b"mdat", random.Random(digest).randbytes(payload_len))
    return ftyp + mdat


def media_etag(task_id: str) -> str:
    return '"' + hashlib.sha256(media_bytes(task_id)).hexdigest()[:20] + '"'


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
