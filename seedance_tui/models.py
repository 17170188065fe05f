"""Provider-agnostic domain: what a job is, what a task is, what it costs.

Nothing here performs I/O or knows a wire format; the provider modules translate
between these types and each API's JSON.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Any


class Provider(enum.StrEnum):
    NANOPHOTO = "nanophoto"
    SEEDANCE15PRO = "seedance15pro"


@dataclass(frozen=True, slots=True)
class BudgetKey:
    """One request budget: a provider and the fingerprint of the key (never the key).

    A provider's rate limit belongs to the API key, so requests made with two keys of
    one provider are counted apart; `fingerprint` None is "no key known".
    """

    provider: Provider
    fingerprint: str | None = None

    def __str__(self) -> str:
        return f"{self.provider.value}:{self.fingerprint or '-'}"


class TaskStatus(enum.StrEnum):
    """Normalised task statuses (part of the public contract)."""

    QUEUED = "queued"  # a batch job waiting its turn: nothing sent, nothing charged
    SUBMITTING = "submitting"  # intent committed, `generate` not yet answered
    PROCESSING = "processing"  # the provider accepted it and is rendering
    COMPLETED = "completed"
    FAILED = "failed"  # the provider accepted it, then the render failed (refunded)
    REJECTED = "rejected"  # the provider refused the submission: nothing charged
    CANCELLED = "cancelled"  # stopped before its request left: nothing sent, nothing charged
    ORPHANED = "orphaned"  # sent, and no trustworthy answer: the outcome is unknown, may be charged

    @property
    def is_pending(self) -> bool:
        """Not finished: queued, being submitted or rendering."""
        return self in (TaskStatus.QUEUED, TaskStatus.SUBMITTING, TaskStatus.PROCESSING)

    @property
    def is_terminal(self) -> bool:
        return not self.is_pending


# Sent (or being sent) and not finished: what is polled. Queued jobs are not in it.
PENDING_STATUSES = (TaskStatus.SUBMITTING, TaskStatus.PROCESSING)


class Mode(enum.StrEnum):
    TEXT_TO_VIDEO = "text-to-video"
    IMAGE_TO_VIDEO = "image-to-video"


@dataclass(frozen=True, slots=True)
class JobSpec:
    """What the user asked for, in the provider's own vocabulary.

    Fields a provider does not have are None. `ProviderAdapter.validate` checks a
    spec against its provider and returns the normalised spec that is stored and sent.
    """

    provider: Provider
    prompt: str
    mode: Mode = Mode.TEXT_TO_VIDEO
    image_urls: tuple[str, ...] = ()
    aspect_ratio: str | None = None
    resolution: str | None = None  # nanophoto only
    duration: str | None = None  # always a string on the wire
    audio: bool = False
    fixed_lens: bool | None = None  # nanophoto only

    def params(self) -> dict[str, Any]:
        """Every parameter but the prompt, as stored in the history's `params` column."""
        out: dict[str, Any] = {"mode": self.mode.value}
        if self.image_urls:
            out["image_urls"] = list(self.image_urls)
        for name in ("aspect_ratio", "resolution", "duration"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        out["audio"] = self.audio
        if self.fixed_lens is not None:
            out["fixed_lens"] = self.fixed_lens
        return out

    @classmethod
    def from_params(cls, provider: str, prompt: str, params: dict[str, Any] | str) -> JobSpec:
        if isinstance(params, str):
            params = json.loads(params)
        return cls(
            provider=Provider(provider),
            prompt=prompt,
            mode=Mode(params.get("mode", Mode.TEXT_TO_VIDEO.value)),
            image_urls=tuple(params.get("image_urls", ())),
            aspect_ratio=params.get("aspect_ratio"),
            resolution=params.get("resolution"),
            duration=params.get("duration"),
            audio=bool(params.get("audio", False)),
            fixed_lens=params.get("fixed_lens"),
        )

    def summary(self) -> str:
        """Short human label of the parameters, e.g. '720p 8s 16:9 audio'."""
        parts = [
            p
            for p in (
                self.resolution,
                f"{self.duration}s" if self.duration else None,
                self.aspect_ratio,
            )
            if p
        ]
        if self.mode is Mode.IMAGE_TO_VIDEO:
            parts.append(f"img×{len(self.image_urls)}")
        if self.audio:
            parts.append("audio")
        if self.fixed_lens:
            parts.append("fixed")
        return " ".join(parts)


@dataclass(frozen=True, slots=True)
class CreditQuote:
    """The price of a job from the provider's published table: an estimate, not a charge."""

    provider: Provider
    credits: int
    basis: str  # how it was computed, e.g. "720p 8s ×2 audio"


@dataclass(frozen=True, slots=True)
class PreparedJob:
    """A job checked and priced once, by its provider's adapter (`prepare`): the spec is
    the validated one (defaults filled in, aliases resolved), the one recorded and sent."""

    spec: JobSpec
    quote: CreditQuote

    @property
    def provider(self) -> Provider:
        return self.spec.provider


@dataclass(frozen=True, slots=True)
class TaskUpdate:
    """A provider's answer about one task, normalised."""

    task_id: str
    status: TaskStatus
    credits_charged: int | None = None  # what the server says it deducted (None: not said)
    video_urls: tuple[str, ...] = ()
    error: str | None = None
    generation_time: float | None = None  # seconds, as the server reports it
    summary: str = ""  # a one-line digest of the answer, for the events table
    # Fields of the answer that were unusable (wrong type, out of range) and dropped.
    oddities: tuple[str, ...] = ()


class JobValidationError(ValueError):
    """A job field is invalid; raised before anything is sent."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(slots=True)
class Task:
    """One row of the history's `tasks` table."""

    id: str  # ours: time-ordered, unique across providers
    provider: Provider
    status: TaskStatus
    prompt: str
    params: dict[str, Any]
    created_at: float  # epoch seconds
    task_id: str | None = None  # the provider's
    key_fingerprint: str | None = None
    credits_estimated: int | None = None
    credits_charged: int | None = None
    credits_refunded: int = 0
    video_urls: tuple[str, ...] = ()
    error: str | None = None
    submitted_at: float | None = None  # when the provider accepted it
    completed_at: float | None = None
    generation_time: float | None = None
    updated_at: float | None = None
    last_polled_at: float | None = None
    local_path: str | None = None
    group: str | None = None  # shared by the tasks of one compare (`submit --compare`)

    @property
    def spec(self) -> JobSpec:
        return JobSpec.from_params(self.provider, self.prompt, self.params)

    @property
    def short_id(self) -> str:
        return self.id[-8:]

    @property
    def credits_net(self) -> int:
        return (self.credits_charged or 0) - (self.credits_refunded or 0)

    @property
    def credits_mismatch(self) -> bool:
        """The server charged something other than our estimate (refunds aside)."""
        return (
            self.credits_charged is not None
            and self.credits_estimated is not None
            and self.credits_charged not in (0, self.credits_estimated)
        )

    def to_public(self) -> dict[str, Any]:
        """The task as `--json` prints it and exports write it (no secrets)."""
        return {
            "id": self.id,
            "provider": self.provider.value,
            "task_id": self.task_id,
            "status": self.status.value,
            "prompt": self.prompt,
            "params": self.params,
            "credits_estimated": self.credits_estimated,
            "credits_charged": self.credits_charged,
            "credits_refunded": self.credits_refunded,
            "video_urls": list(self.video_urls),
            "error": self.error,
            "created_at": iso(self.created_at),
            "submitted_at": iso(self.submitted_at),
            "completed_at": iso(self.completed_at),
            "generation_time": self.generation_time,
            "local_path": self.local_path,
            "group": self.group,
        }


def iso(ts: float | None) -> str | None:
    """Epoch seconds as an ISO 8601 UTC string with milliseconds (sorts as text)."""
    if ts is None:
        return None
    import datetime as _dt

    # isoformat truncates to milliseconds as "%f"[:-3] would, in two thirds of the time
    # (an export formats three times per task).
    return _dt.datetime.fromtimestamp(ts, tz=_dt.UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def from_iso(text: str | None) -> float | None:
    if text is None:
        return None
    import datetime as _dt

    return _dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def js_length(text: str) -> int:
    """Length as JavaScript counts it (UTF-16 code units): what the servers most likely check."""
    return len(text.encode("utf-16-le")) // 2
