"""Batches: a JSONL or CSV file of jobs, checked whole, priced, then queued durably.

Each row is one job in the `submit` command's field names:

  provider     nanophoto | seedance15pro (default: the config's `provider`)
  prompt       required
  image        an image URL; in JSONL also a list; in CSV several separated by spaces
  mode         text | image (default: image when an image is given)
  aspect, resolution, duration, audio, fixed_lens   as the flags of `submit`

Fields a row leaves out come from the config's `[providers.NAME.defaults]`, then the
provider's defaults (`jobs.build_spec`, as for `submit` and the form). Every row is validated before anything is queued; a bad row is
reported with its line number. Queued jobs are tasks with status `queued`: the engine
(`watch`, the dashboard, or `submit --batch` itself) sends them within the rate budget.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import Settings
from .jobs import JobFields, build_spec, prepare, provider_of
from .models import JobSpec, JobValidationError, PreparedJob, Task
from .store import Store

FIELDS = {
    "provider", "prompt", "image", "images", "image_urls", "mode", "aspect", "aspect_ratio",
    "resolution", "duration", "audio", "sound", "fixed_lens",
}  # fmt: skip
TRUE = {"1", "true", "yes", "y", "on"}
FALSE = {"0", "false", "no", "n", "off", ""}


@dataclass(frozen=True, slots=True)
class BatchJob:
    line: int
    job: PreparedJob  # checked and priced once

    @property
    def spec(self) -> JobSpec:
        return self.job.spec

    @property
    def credits(self) -> int:
        return self.job.quote.credits


@dataclass(frozen=True, slots=True)
class BatchProblem:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass
class Batch:
    jobs: list[BatchJob]
    problems: list[BatchProblem]

    @property
    def total_credits(self) -> int:
        return sum(job.credits for job in self.jobs)

    def by_provider(self) -> dict[str, tuple[int, int]]:
        """provider → (jobs, estimated credits)."""
        out: dict[str, tuple[int, int]] = {}
        for job in self.jobs:
            count, credits = out.get(job.spec.provider.value, (0, 0))
            out[job.spec.provider.value] = (count + 1, credits + job.credits)
        return out


def _flag(value: Any, name: str) -> bool | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False if text else None
    raise JobValidationError(name, f"{value!r} is not true/false")


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip() if not isinstance(value, str) else value
    return text if text != "" else None


def fields_of_row(row: dict[str, Any]) -> JobFields:
    """A row's job as given (blank cells are not given); raises JobValidationError."""
    unknown = sorted(k for k in row if k not in FIELDS and k is not None)
    if unknown:
        raise JobValidationError(unknown[0], "unknown field")
    provider = _text(row.get("provider"))
    if provider is not None:
        provider_of(provider, None)  # an unknown provider is the row's first problem
    prompt = row.get("prompt")
    if not isinstance(prompt, str):
        raise JobValidationError("prompt", "required")
    images: Any = row.get("image") or row.get("images") or row.get("image_urls") or []
    if isinstance(images, str):
        images = images.split()
    if not isinstance(images, list) or not all(isinstance(i, str) for i in images):
        raise JobValidationError("image", "a URL or a list of URLs")

    def given(*names: str) -> str | None:
        for name in names:
            if name in row and _text(row[name]) is not None:
                return _text(row[name])
        return None

    return JobFields(
        prompt=prompt,
        provider=provider,
        images=tuple(images),
        mode=given("mode"),
        aspect=given("aspect", "aspect_ratio"),
        resolution=given("resolution"),
        duration=given("duration"),
        audio=_flag(row.get("audio", row.get("sound")), "audio"),
        fixed_lens=_flag(row.get("fixed_lens"), "fixed_lens"),
    )


def spec_from_row(row: dict[str, Any], settings: Settings) -> JobSpec:
    """A row's job, with the config's defaults (`jobs.build_spec`); raises
    JobValidationError."""
    return build_spec(fields_of_row(row), settings)


def read_rows(path: Path) -> list[tuple[int, Any]]:
    """(line number, row) of a JSONL or CSV file; the format from the suffix (.csv or not).

    A UTF-8 byte order mark (Excel and Notepad write one) is not part of the text. A CSV
    file's first row names its columns (in any case, spaces around them ignored)."""
    rows: list[tuple[int, Any]] = []
    with open(path, encoding="utf-8-sig", newline="") as fh:
        if path.suffix.lower() == ".csv":
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                return rows
            names = [name.strip().lower() for name in header]
            problem = _header_problem(header, names)
            if problem:
                return [(1, ValueError(problem))]
            for cells in reader:
                if len(cells) > len(names):
                    rows.append((reader.line_num, ValueError("more cells than header columns")))
                    continue
                row = {name: value for name, value in zip(names, cells, strict=False) if name}
                if any(value.strip() for value in row.values()):
                    rows.append((reader.line_num, row))
        else:
            for number, line in enumerate(fh, start=1):
                if not line.strip() or line.lstrip().startswith("#"):
                    continue
                try:
                    rows.append((number, json.loads(line)))
                except ValueError as exc:
                    rows.append((number, ValueError(f"not JSON ({exc.args[0]})")))
    return rows


def _header_problem(header: list[str], names: list[str]) -> str | None:
    """Why a CSV file's first row (`names`: its cells as field names) is not a usable
    header row, if it is not."""
    if not any(name in FIELDS for name in names):
        shown = ",".join(header)
        shown = shown if len(shown) <= 60 else shown[:59] + "…"
        return (
            f"no header row: the first row ({shown}) names no job field. A CSV batch "
            "starts with a row naming its columns, e.g. provider,prompt,duration"
        )
    if "prompt" not in names:
        return f"the header row has no prompt column (it has {', '.join(header)})"
    return None


def load_batch(path: Path, settings: Settings) -> Batch:
    """Read and check every row; the batch is usable only when `problems` is empty."""
    jobs: list[BatchJob] = []
    problems: list[BatchProblem] = []
    try:
        rows = read_rows(path)
    except UnicodeDecodeError:
        return Batch([], [BatchProblem(0, "the file is not UTF-8 text")])
    for line, row in rows:
        if isinstance(row, Exception):
            problems.append(BatchProblem(line, str(row)))
            continue
        if not isinstance(row, dict):
            problems.append(BatchProblem(line, "expected an object of job fields"))
            continue
        try:
            jobs.append(BatchJob(line, prepare(spec_from_row(row, settings))))
        except JobValidationError as exc:
            problems.append(BatchProblem(line, f"{exc.field}: {exc.message}"))
    if not jobs and not problems:
        problems.append(BatchProblem(0, "no jobs in the file"))
    return Batch(jobs, problems)


def queue_batch(
    batch: Batch, store: Store, settings: Settings, now: float, *, over_cap: bool = False
) -> list[Task]:
    """Queue every job of a checked batch in one transaction, only when its total passes
    none of the providers' spending caps (caps.CapExceeded: nothing queued); `over_cap`
    lets the whole batch past them, once."""
    if batch.problems:
        raise ValueError("a batch with problems cannot be queued")
    return store.enqueue(
        [(j.spec, j.credits, settings.key_fingerprint(j.spec.provider)) for j in batch.jobs],
        now,
        windows=settings.cap_windows((j.spec.provider for j in batch.jobs), now),
        over_cap=over_cap,
    )
