"""seedance1-5pro.com's API (`api-docs/seedance1-5pro-com.txt`): its job fields,
defaults, prices and limits. The wire format (pydantic models of the generate body and
of the answers) is `seedance15pro_wire.py`, imported when a request is built or an
answer read."""

from __future__ import annotations

import dataclasses
from typing import Any

from ..hosts import HOSTS
from ..models import CreditQuote, JobSpec, JobValidationError, PreparedJob, Provider, TaskUpdate
from .base import RequestSpec, SubmitAnswer, check_choice, check_images, check_prompt

NAME = Provider.SEEDANCE15PRO
ASPECTS = ("16:9", "9:16", "1:1")
DURATIONS = ("5", "10")
PRICES = {"5": 65, "10": 130}  # silent; sound doubles


class Seedance15Pro:
    name = NAME
    requests_per_hour: int | None = HOSTS[NAME].requests_per_hour  # undocumented: polite

    # -- jobs --------------------------------------------------------------------------

    def defaults(self) -> dict[str, Any]:
        return {"aspect_ratio": "16:9", "duration": "5", "audio": False}

    def choices(self) -> dict[str, tuple[str, ...]]:
        return {"aspect_ratio": ASPECTS, "duration": DURATIONS}

    def validate(self, spec: JobSpec) -> JobSpec:
        if spec.provider is not NAME:
            raise JobValidationError("provider", f"expected {NAME.value}")
        check_prompt(spec.prompt)
        if spec.resolution is not None:
            raise JobValidationError("resolution", "seedance15pro has no resolution setting")
        if spec.fixed_lens:
            raise JobValidationError("fixed_lens", "seedance15pro has no fixed-lens setting")
        urls = check_images(spec)
        if urls and spec.aspect_ratio is not None:
            raise JobValidationError(
                "aspect_ratio",
                "seedance15pro ignores the aspect ratio when image URLs are given; leave it unset",
            )
        aspect = None
        if not urls:
            aspect = check_choice("aspect_ratio", spec.aspect_ratio or "16:9", ASPECTS)
        duration = check_choice("duration", str(spec.duration or "5"), DURATIONS)
        return dataclasses.replace(
            spec, image_urls=urls, aspect_ratio=aspect, duration=duration, fixed_lens=None
        )

    def prepare(self, spec: JobSpec) -> PreparedJob:
        """Validate once and price the validated spec (JobValidationError if invalid)."""
        valid = self.validate(spec)
        base = PRICES[valid.duration]  # type: ignore[index]
        credits = base * 2 if valid.audio else base
        basis = f"{valid.duration}s = {base}" + (" ×2 audio" if valid.audio else "")
        return PreparedJob(valid, CreditQuote(NAME, credits, basis))

    def quote(self, spec: JobSpec) -> CreditQuote:
        return self.prepare(spec).quote

    # -- wire --------------------------------------------------------------------------

    def submit_request(self, job: PreparedJob | JobSpec) -> RequestSpec:
        """The generate request of a prepared job (a plain spec is prepared first)."""
        from . import seedance15pro_wire

        spec = job.spec if isinstance(job, PreparedJob) else self.prepare(job).spec
        return RequestSpec(
            "POST", "/api/generate", "generate", json=seedance15pro_wire.generate_body(spec)
        )

    def status_request(self, task_id: str) -> RequestSpec:
        return RequestSpec("GET", "/api/status", "status", params={"task_id": task_id})

    def parse_submit(self, status: int, body: bytes, headers: dict[str, str]) -> SubmitAnswer:
        from . import seedance15pro_wire

        return seedance15pro_wire.parse_submit(status, body, headers)

    def parse_status(self, status: int, body: bytes, headers: dict[str, str]) -> TaskUpdate:
        from . import seedance15pro_wire

        return seedance15pro_wire.parse_status(status, body, headers)


adapter = Seedance15Pro()
