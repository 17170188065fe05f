"""nanophoto.ai's Seedance 1.5 Pro API (`api-docs/nanophoto-seedance-1-5-pro.txt`): its
job fields, defaults, prices and limits. The wire format (pydantic models of the
generate body and of the answers) is `nanophoto_wire.py`, imported when a request is
built or an answer read."""

from __future__ import annotations

import dataclasses
from typing import Any

from ..hosts import HOSTS
from ..models import CreditQuote, JobSpec, JobValidationError, PreparedJob, Provider, TaskUpdate
from .base import (
    RequestSpec,
    SubmitAnswer,
    check_choice,
    check_images,
    check_prompt,
)

NAME = Provider.NANOPHOTO
RESOLUTIONS = ("480p", "720p", "1080p")
DURATIONS = ("4", "8", "12")
ASPECTS = ("landscape", "portrait")
ASPECT_ALIASES = {"16:9": "landscape", "9:16": "portrait"}

# API prices (2× the web prices); audio doubles them. DESIGN.md, "credits (API)".
PRICES: dict[tuple[str, str], int] = {
    ("480p", "4"): 2, ("480p", "8"): 4, ("480p", "12"): 6,
    ("720p", "4"): 4, ("720p", "8"): 8, ("720p", "12"): 12,
    ("1080p", "4"): 8, ("1080p", "8"): 16, ("1080p", "12"): 22,
}  # fmt: skip


class Nanophoto:
    name = NAME
    requests_per_hour: int | None = HOSTS[NAME].requests_per_hour

    # -- jobs --------------------------------------------------------------------------

    def defaults(self) -> dict[str, Any]:
        return {"aspect_ratio": "landscape", "resolution": "720p", "duration": "4",
                "audio": False, "fixed_lens": False}  # fmt: skip

    def choices(self) -> dict[str, tuple[str, ...]]:
        return {"aspect_ratio": ASPECTS, "resolution": RESOLUTIONS, "duration": DURATIONS}

    def validate(self, spec: JobSpec) -> JobSpec:
        if spec.provider is not NAME:
            raise JobValidationError("provider", f"expected {NAME.value}")
        check_prompt(spec.prompt)
        urls = check_images(spec)
        defaults = self.defaults()
        aspect = spec.aspect_ratio or defaults["aspect_ratio"]
        aspect = check_choice(
            "aspect_ratio", ASPECT_ALIASES.get(aspect, aspect), ASPECTS + tuple(ASPECT_ALIASES)
        )
        resolution = check_choice(
            "resolution", spec.resolution or defaults["resolution"], RESOLUTIONS
        )
        duration = check_choice("duration", str(spec.duration or defaults["duration"]), DURATIONS)
        return dataclasses.replace(
            spec,
            image_urls=urls,
            aspect_ratio=aspect,
            resolution=resolution,
            duration=duration,
            fixed_lens=bool(spec.fixed_lens),
        )

    def prepare(self, spec: JobSpec) -> PreparedJob:
        """Validate once and price the validated spec (JobValidationError if invalid)."""
        valid = self.validate(spec)
        base = PRICES[(valid.resolution, valid.duration)]  # type: ignore[index]
        credits = base * 2 if valid.audio else base
        basis = f"{valid.resolution} {valid.duration}s = {base}" + (
            " ×2 audio" if valid.audio else ""
        )
        return PreparedJob(valid, CreditQuote(NAME, credits, basis))

    def quote(self, spec: JobSpec) -> CreditQuote:
        return self.prepare(spec).quote

    # -- wire --------------------------------------------------------------------------

    def submit_request(self, job: PreparedJob | JobSpec) -> RequestSpec:
        """The generate request of a prepared job (a plain spec is prepared first)."""
        from . import nanophoto_wire

        spec = job.spec if isinstance(job, PreparedJob) else self.prepare(job).spec
        return RequestSpec(
            "POST",
            "/api/seedance-1-5-pro/generate",
            "generate",
            json=nanophoto_wire.generate_body(spec),
        )

    def status_request(self, task_id: str) -> RequestSpec:
        return RequestSpec(
            "POST", "/api/seedance-1-5-pro/check-status", "status", json={"taskId": task_id}
        )

    def parse_submit(self, status: int, body: bytes, headers: dict[str, str]) -> SubmitAnswer:
        from . import nanophoto_wire

        return nanophoto_wire.parse_submit(status, body, headers)

    def parse_status(self, status: int, body: bytes, headers: dict[str, str]) -> TaskUpdate:
        from . import nanophoto_wire

        return nanophoto_wire.parse_status(status, body, headers)


adapter = Nanophoto()
