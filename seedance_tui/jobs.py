"""The one place a job is built from what the user gave: `submit`'s flags, a batch row,
the dashboard's form.

    fields = JobFields(provider="nanophoto", prompt="a fox", duration="8")
    spec = build_spec(fields, settings)     # the config's defaults fill what is not given
    job = prepare(spec)                     # checked and priced once: PreparedJob(spec, quote)
    await engine.submit(job)

A field left out (None) takes the config's `[providers.NAME.defaults]`, then the
provider's own default (filled in by the adapter's check). A default only fills a field
the job takes: seedance15pro has no resolution or fixed lens, and no aspect ratio once
images are given. A field given — even empty — is kept, so that the check reports it.
The form starts from `defaults_for(provider, settings)`, the same defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import providers
from .config import Settings
from .models import JobSpec, JobValidationError, Mode, PreparedJob, Provider

MODES = {
    "text": Mode.TEXT_TO_VIDEO,
    "image": Mode.IMAGE_TO_VIDEO,
    Mode.TEXT_TO_VIDEO.value: Mode.TEXT_TO_VIDEO,
    Mode.IMAGE_TO_VIDEO.value: Mode.IMAGE_TO_VIDEO,
}


@dataclass(frozen=True, slots=True)
class JobFields:
    """A job as the user gave it, in `submit`'s names; None: not given."""

    prompt: str
    provider: Provider | str | None = None
    images: tuple[str, ...] = ()
    mode: str | None = None  # text | image (or the API's names); default: image with images
    aspect: str | None = None
    resolution: str | None = None
    duration: str | None = None
    audio: bool | None = None
    fixed_lens: bool | None = None


def provider_of(name: Provider | str | None, settings: Settings | None) -> Provider:
    """A provider by name, else the config's `provider` (nanophoto without settings)."""
    if name is None or name == "":
        return settings.default_provider if settings else Provider.NANOPHOTO
    try:
        return Provider(name)
    except ValueError:
        names = " or ".join(p.value for p in Provider)
        raise JobValidationError("provider", f"{name!r} is not {names}") from None


def takes(provider: Provider, field: str, *, images: bool) -> bool:
    """Whether a job of `provider` has `field` (a JobSpec name), given whether it has
    images: a default fills only such a field."""
    if provider is Provider.SEEDANCE15PRO:
        if field in ("resolution", "fixed_lens"):
            return False
        if field == "aspect_ratio":
            return not images
    return True


def defaults_for(provider: Provider, settings: Settings | None) -> dict[str, Any]:
    """What a new job of `provider` starts from, in JobSpec names: the provider's own
    defaults with the config's `[providers.NAME.defaults]` over them."""
    values = dict(providers.get(provider).defaults())
    if settings is not None:
        values.update(settings.providers[provider].defaults)
    return values


def build_spec(fields: JobFields, settings: Settings | None) -> JobSpec:
    """The job `fields` describe, defaults filled in (see the module's docstring). Not
    checked yet: `prepare` does that. Raises JobValidationError for an unknown provider
    or mode."""
    provider = provider_of(fields.provider, settings)
    images = tuple(fields.images)
    mode_name = fields.mode or ("image" if images else "text")
    mode = MODES.get(mode_name)
    if mode is None:
        raise JobValidationError("mode", "text or image")
    configured = settings.providers[provider].defaults if settings else {}

    def pick(field: str, given: Any) -> Any:
        if given is not None:
            return given
        if takes(provider, field, images=bool(images)):
            return configured.get(field)
        return None

    audio = pick("audio", fields.audio)
    fixed = pick("fixed_lens", fields.fixed_lens)
    return JobSpec(
        provider=provider,
        prompt=fields.prompt,
        mode=mode,
        image_urls=images,
        aspect_ratio=pick("aspect_ratio", fields.aspect),
        resolution=pick("resolution", fields.resolution),
        duration=pick("duration", fields.duration),
        audio=bool(audio),
        fixed_lens=True if fixed else None,
    )


def prepare(spec: JobSpec) -> PreparedJob:
    """Check and price a job once, by its provider's rules (JobValidationError names the
    field that is wrong and why)."""
    return providers.get(spec.provider).prepare(spec)


# -- compare: one prompt on both providers ------------------------------------------------

# Each provider's nearest value of the other's field. nanophoto has no square: 1:1 is
# closest to its landscape. A duration between two takes the shorter (and cheaper).
ASPECT_NEAREST = {
    Provider.SEEDANCE15PRO: {"landscape": "16:9", "portrait": "9:16"},
    Provider.NANOPHOTO: {"16:9": "landscape", "9:16": "portrait", "1:1": "landscape"},
}
DURATION_NEAREST = {
    Provider.SEEDANCE15PRO: {"4": "5", "8": "10", "12": "10"},
    Provider.NANOPHOTO: {"5": "4", "10": "8"},
}


def counterpart(spec: JobSpec, provider: Provider) -> JobFields:
    """The job `spec` (checked, defaults filled in) describes, for `provider`, each field
    mapped to that provider's nearest: landscape ↔ 16:9, portrait ↔ 9:16 (1:1 →
    landscape), 4/8/12 s ↔ 5/10 s, audio ↔ sound, the same images (image-to-video on
    both). A field the provider does not have (resolution, fixed lens) is left to its
    defaults; seedance15pro takes no aspect ratio with images."""
    if provider is spec.provider:
        return JobFields(
            prompt=spec.prompt, provider=provider, images=spec.image_urls,
            mode=spec.mode.value, aspect=spec.aspect_ratio, resolution=spec.resolution,
            duration=spec.duration, audio=spec.audio, fixed_lens=spec.fixed_lens,
        )  # fmt: skip
    images = bool(spec.image_urls)
    aspect = None
    if spec.aspect_ratio is not None and takes(provider, "aspect_ratio", images=images):
        aspect = ASPECT_NEAREST[provider].get(spec.aspect_ratio, spec.aspect_ratio)
    duration = None
    if spec.duration is not None:
        duration = DURATION_NEAREST[provider].get(spec.duration, spec.duration)
    return JobFields(
        prompt=spec.prompt, provider=provider, images=spec.image_urls, mode=spec.mode.value,
        aspect=aspect, duration=duration, audio=spec.audio,
    )  # fmt: skip


def compare_jobs(fields: JobFields, settings: Settings | None) -> list[PreparedJob]:
    """The same prompt on every provider, in the providers' order: the job `fields`
    describe for its provider, and its counterpart (mapped fields, `counterpart`) for
    each other one, each checked and priced."""
    return compare_with(prepare(build_spec(fields, settings)), settings)


def compare_with(first: PreparedJob, settings: Settings | None) -> list[PreparedJob]:
    """A prepared job and its counterparts on the other providers, in the providers'
    order (see `compare_jobs`)."""
    return [
        first
        if provider is first.provider
        else prepare(build_spec(counterpart(first.spec, provider), settings))
        for provider in Provider
    ]


__all__ = [
    "JobFields",
    "compare_jobs",
    "compare_with",
    "counterpart",
    "build_spec",
    "defaults_for",
    "prepare",
    "provider_of",
    "takes",
]
