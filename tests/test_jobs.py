"""One way to build a job: `submit`'s flags, batch rows and the form's fields all go
through `jobs.build_spec` with the config's defaults, and a submission is checked once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from seedance_tui import cli, jobs, providers
from seedance_tui.batch import load_batch, spec_from_row
from seedance_tui.config import Settings, load_settings
from seedance_tui.jobs import JobFields, build_spec, defaults_for, prepare
from seedance_tui.models import JobValidationError, Mode, PreparedJob, Provider
from seedance_tui.paths import config_path

CONFIG = """
provider = "seedance15pro"

[providers.nanophoto.defaults]
resolution = "1080p"
duration = 8
aspect = "portrait"
audio = true

[providers.seedance15pro.defaults]
duration = "10"
aspect = "9:16"
"""


@pytest.fixture
def configured(isolated_home: Path) -> Settings:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(CONFIG)
    return load_settings(env={})


def test_fields_not_given_take_the_configs_defaults(configured: Settings) -> None:
    spec = build_spec(JobFields(prompt="a fox", provider="nanophoto"), configured)
    assert (spec.resolution, spec.duration, spec.aspect_ratio, spec.audio) == (
        "1080p", "8", "portrait", True,
    )  # fmt: skip
    given = build_spec(
        JobFields(prompt="a fox", provider="nanophoto", duration="4", audio=False), configured
    )
    assert (given.duration, given.audio, given.resolution) == ("4", False, "1080p")
    # No provider given: the config's `provider`.
    assert build_spec(JobFields(prompt="a fox"), configured).provider is Provider.SEEDANCE15PRO


def test_a_default_fills_only_a_field_the_job_takes(configured: Settings) -> None:
    """seedance15pro takes no aspect ratio with images: the configured one is not forced
    on such a job (which its check would refuse), and one given is still reported."""
    with_images = build_spec(
        JobFields(prompt="a fox", provider="seedance15pro", images=("https://x/a.png",)),
        configured,
    )
    assert with_images.aspect_ratio is None and with_images.mode is Mode.IMAGE_TO_VIDEO
    assert prepare(with_images).spec.duration == "10"
    given = JobFields(
        prompt="a fox", provider="seedance15pro", images=("https://x/a.png",), aspect="9:16"
    )
    with pytest.raises(JobValidationError) as excinfo:
        prepare(build_spec(given, configured))
    assert excinfo.value.field == "aspect_ratio"


def test_defaults_for_is_what_the_form_starts_from(configured: Settings) -> None:
    assert defaults_for(Provider.NANOPHOTO, configured) == {
        "aspect_ratio": "portrait", "resolution": "1080p", "duration": "8", "audio": True,
        "fixed_lens": False,
    }  # fmt: skip
    assert defaults_for(Provider.SEEDANCE15PRO, None) == providers.seedance15pro.defaults()


def test_unknown_provider_and_mode_are_field_errors(configured: Settings) -> None:
    with pytest.raises(JobValidationError) as excinfo:
        build_spec(JobFields(prompt="x", provider="nope"), configured)
    assert excinfo.value.field == "provider" and "'nope' is not" in excinfo.value.message
    with pytest.raises(JobValidationError) as excinfo:
        build_spec(JobFields(prompt="x", mode="sound"), configured)
    assert excinfo.value.field == "mode"


def test_flags_and_a_batch_row_build_the_same_job(configured: Settings, tmp_path) -> None:
    from seedance_tui.cli.submit import fields_from_flags, submit

    flags = submit.make_context(
        "submit",
        ["--provider", "nanophoto", "--prompt", "a fox", "--image", "https://x/a.png",
         "--duration", "12", "--no-audio"],
    ).params  # fmt: skip
    from_flags = build_spec(fields_from_flags(flags), configured)
    row = {"provider": "nanophoto", "prompt": "a fox", "image": "https://x/a.png",
           "duration": "12", "audio": "no"}  # fmt: skip
    from_row = spec_from_row(row, configured)
    direct = build_spec(
        JobFields(prompt="a fox", provider="nanophoto", images=("https://x/a.png",),
                  duration="12", audio=False),
        configured,
    )  # fmt: skip
    assert from_flags == from_row == direct
    assert direct.resolution == "1080p" and direct.mode is Mode.IMAGE_TO_VIDEO
    batch_file = tmp_path / "jobs.jsonl"
    batch_file.write_text(json.dumps(row) + "\n")
    (loaded,) = load_batch(batch_file, configured).jobs
    assert loaded.job == prepare(direct)


def test_prepare_checks_once_and_prices_the_checked_spec(monkeypatch) -> None:
    adapter = providers.nanophoto
    calls: list[object] = []
    real = type(adapter).validate

    def counted(self, spec):
        calls.append(spec)
        return real(self, spec)

    monkeypatch.setattr(type(adapter), "validate", counted)
    spec = build_spec(JobFields(prompt="a fox", provider="nanophoto", aspect="16:9"), None)
    job = jobs.prepare(spec)
    assert isinstance(job, PreparedJob) and len(calls) == 1
    assert job.spec.aspect_ratio == "landscape"  # the alias resolved
    assert job.quote.credits == 4 and job.quote.basis == "720p 4s = 4"
    request = adapter.submit_request(job)  # a prepared job is sent as it is
    assert len(calls) == 1
    assert request.json["aspectRatio"] == "landscape" and request.json["duration"] == "4"


def test_a_cli_submission_is_checked_once(settings: Settings, monkeypatch, capsys) -> None:
    """Flags → spec → check and price → intent → request: one check (there were five)."""
    adapter = providers.nanophoto
    calls: list[object] = []
    real = type(adapter).validate

    def counted(self, spec):
        calls.append(spec)
        return real(self, spec)

    monkeypatch.setattr(type(adapter), "validate", counted)
    code = cli.main(["--db", str(settings.db_path), "submit", "--prompt", "a fox", "--json"])
    assert code == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out)["status"] == "processing"
    assert len(calls) == 1
