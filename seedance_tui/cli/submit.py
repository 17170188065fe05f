"""`submit`: one job from flags (optionally waiting for it), the same prompt on both
providers (`--compare`), or a batch file queued. Every path is held to the spending caps
(`caps.py`; the store checks them with the intent rows, `--over-cap` lets one past)."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from ..jobs import JobFields, build_spec, compare_jobs, prepare
from ..models import PreparedJob, Provider, Task, TaskStatus
from ..providers import nanophoto, seedance15pro
from ..session import Session
from ..text import inert, to_json
from .common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    Options,
    UsageError,
    err,
    existing_file,
    out,
    pass_options,
    provider_names,
    run_async,
)
from .display import (
    Relay,
    WaitDisplay,
    describe_outcome,
    print_notice,
    start_notifier,
    waiting_hint,
)

if TYPE_CHECKING:
    from ..config import Settings
    from ..engine import Engine


def _defaults_help() -> str:
    nano, seed = nanophoto.defaults(), seedance15pro.defaults()
    return (
        "Submit a job (nothing is written or sent unless every field is valid), or queue "
        "every job of a batch file (--batch).\n\n"
        f"Defaults — nanophoto: {nano['resolution']}, {nano['duration']}s, "
        f"{nano['aspect_ratio']}; seedance15pro: {seed['duration']}s, {seed['aspect_ratio']} "
        "(the config's [providers.NAME.defaults] override them)."
    )


@click.command(help=_defaults_help(), short_help="submit a job")
@click.option("--provider", type=click.Choice(provider_names()),
              help="default: the config's `provider`, else nanophoto")  # fmt: skip
@click.option("--prompt", help="what to generate (≤1000 characters); - reads stdin "
              "(required unless --batch)")  # fmt: skip
@click.option("--batch", "batch_file", metavar="FILE",
              help="queue every job of a JSONL or CSV file (fields as these flags: provider, "
              "prompt, image, mode, aspect, resolution, duration, audio, fixed_lens)")  # fmt: skip
@click.option("--yes", "-y", is_flag=True,
              help="with --batch or --compare: don't ask to confirm the estimated cost")  # fmt: skip
@click.option("--detach", is_flag=True,
              help="with --batch: queue and exit; `watch` or the dashboard sends them")  # fmt: skip
@click.option("--image", "images", multiple=True, metavar="URL",
              help="a public image URL (repeatable); given means image-to-video")  # fmt: skip
@click.option("--mode", type=click.Choice(["text", "image"]),
              help="default: image when --image is given, else text")  # fmt: skip
@click.option("--aspect", help="nanophoto: landscape|portrait (or 16:9|9:16), default "
              "landscape; seedance15pro: 16:9|9:16|1:1, default 16:9 (not with images)")  # fmt: skip
@click.option("--resolution", help="nanophoto only: 480p|720p|1080p, default 720p")
@click.option("--duration",
              help="seconds — nanophoto: 4|8|12, default 4; seedance15pro: 5|10, default 5")  # fmt: skip
@click.option("--audio/--no-audio", "--sound/--no-sound", default=None,
              help="generate audio (doubles the price); --no-audio overrides a config default")  # fmt: skip
@click.option("--fixed-lens/--no-fixed-lens", default=None,
              help="nanophoto only: a fixed camera")  # fmt: skip
@click.option("--compare", is_flag=True,
              help="the same prompt on both providers, each field mapped to the other's "
              "nearest (landscape/portrait = 16:9/9:16, 4/8/12 s = 5/10 s, audio = sound); "
              "shown with both prices before it is sent (--yes: don't ask)")  # fmt: skip
@click.option("--over-cap", is_flag=True,
              help="let this job (or batch, or compare pair) past the spending caps "
              "(daily_cap, monthly_cap), this once")  # fmt: skip
@click.option("--wait", is_flag=True, help="poll until the job ends")
@click.option("--json", "as_json", is_flag=True, help="print the task as JSON")
@pass_options
@run_async
async def submit(options: Options, **flags: Any) -> int:
    settings = options.settings()
    if flags["batch_file"]:
        if flags["compare"]:
            raise UsageError("--compare takes one prompt: drop --batch (or --compare)")
        return await submit_batch(options, settings, **flags)
    if flags["prompt"] is None:
        raise UsageError("submit needs --prompt (or --batch FILE)")
    if flags["compare"]:
        return await submit_compare(settings, **flags)
    job = prepare(build_spec(fields_from_flags(flags), settings))  # nothing written if invalid
    spec, quote = job.spec, job.quote
    settings.require_key(spec.provider)
    as_json = flags["as_json"]
    async with Session(settings, with_engine=True) as session:
        engine, store = session.engine, session.store
        assert engine is not None
        notices = Relay(print_notice)
        engine.subscribe(notices)
        if not as_json:
            err(f"submitting to {spec.provider.value}: estimated {quote.credits} credits "
                f"({quote.basis})")  # fmt: skip
        task = await engine.submit(job, over_cap=flags["over_cap"])  # CapExceeded: exit 2
        if engine.unsaved():
            # Accepted, but not recorded yet (a full disk): wait for space, saying so.
            try:
                await engine.flush_unsaved()
            except (KeyboardInterrupt, asyncio.CancelledError):
                for kept in engine.unsaved():
                    err(f"not recorded: {kept.provider.value} task id {inert(kept.task_id)}")
                raise
            task = store.get(task.id)
        if flags["wait"] and task.status is TaskStatus.PROCESSING:
            err(waiting_hint(task))  # before any wait: the id survives a Ctrl+C
            display = WaitDisplay(engine, task, quiet=as_json)
            notices.target = display.on_event
            notifier = start_notifier(settings, engine)
            try:
                task = await wait_for(engine, task, display)
            finally:
                await notifier.aclose()  # the notify_command's run ends with ours
            waiting = engine.waiting_reason(task.id)
            if waiting:
                err(f"error: {task.short_id} cannot be checked: {inert(waiting)}")
                return EXIT_FAILED
            if session.downloads is not None:
                await session.downloads.wait()  # the auto-download of this render
                task = store.get(task.id)
        out(to_json(task.to_public()) if as_json else describe_outcome(task))
        return EXIT_OK if task.status in (TaskStatus.PROCESSING, TaskStatus.COMPLETED) else (
            EXIT_FAILED
        )  # fmt: skip


def fields_from_flags(flags: dict[str, Any]) -> JobFields:
    """The job `submit`'s flags describe (`--prompt -` reads standard input)."""
    prompt = flags["prompt"]
    if prompt == "-":
        prompt = read_stdin()
    return JobFields(
        prompt=prompt,
        provider=flags["provider"],
        images=tuple(flags["images"]),
        mode=flags["mode"],
        aspect=flags["aspect"],
        resolution=flags["resolution"],
        duration=flags["duration"],
        audio=flags["audio"],
        fixed_lens=flags["fixed_lens"],
    )


def read_stdin() -> str:
    try:
        return sys.stdin.read()
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"--prompt -: standard input is not UTF-8 text (byte {exc.start + 1}); "
            "check the file's encoding"
        ) from None


async def wait_for(engine: Engine, task: Task, display: WaitDisplay) -> Task:
    """Run the poll loop until this task ends (or cannot be checked); `display` (an
    engine listener already) redraws its live line meanwhile."""
    from ..events import TaskChanged

    done = asyncio.Event()
    final: dict[str, Task] = {}

    def listen(event: object) -> None:
        if (
            isinstance(event, TaskChanged)
            and event.task.id == task.id
            and event.task.status.is_terminal
        ):
            final["task"] = event.task
            done.set()
        if engine.waiting_reason(task.id):
            done.set()  # it cannot be checked (its key was refused): nothing left to wait for

    engine.subscribe(listen)
    loop = asyncio.create_task(engine.run())
    ticker = asyncio.create_task(display.run())
    try:
        waiter = asyncio.create_task(done.wait())
        await asyncio.wait({loop, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if loop.done():
            loop.result()  # surface a crash of the loop
        waiter.cancel()
    except (KeyboardInterrupt, asyncio.CancelledError):
        display.finish()
        err(
            f"stopped waiting; {task.short_id} keeps rendering: `seedance-tui status {task.short_id}`"
        )
        raise
    finally:
        ticker.cancel()
        loop.cancel()
        await asyncio.gather(loop, ticker, return_exceptions=True)
    return final.get("task") or engine.store.get(task.id)


def look_at_caps(settings: Settings, jobs: Sequence[PreparedJob]) -> None:
    """CapExceeded before the user is asked to confirm jobs a cap would refuse (the
    store checks again when it writes them)."""
    from ..caps import check_all

    if not any(settings.caps(j.provider) for j in jobs):
        return
    costs: dict[Provider, tuple[int, int]] = {}
    for job in jobs:
        cost, count = costs.get(job.provider, (0, 0))
        costs[job.provider] = (cost + job.quote.credits, count + 1)
    with Session(settings) as session:
        check_all(settings.cap_windows(costs, time.time()), costs, session.store.spending)


def compare_table(jobs: Sequence[PreparedJob]) -> str:
    """The jobs of a compare side by side: parameters, estimate, and the total."""
    width = 30
    lines = [
        "compare: the same prompt on both providers",
        f"{'':<12}" + "".join(f"{j.provider.value:<{width}}" for j in jobs),
        f"{'parameters':<12}" + "".join(f"{j.spec.summary():<{width}}" for j in jobs),
        f"{'estimate':<12}"
        + "".join(f"{'~' + str(j.quote.credits) + ' credits':<{width}}" for j in jobs),
        f"{'total':<12}~{sum(j.quote.credits for j in jobs)} credits "
        "(the servers' charges are final)",
    ]
    return "\n".join(line.rstrip() for line in lines)


async def submit_compare(settings: Settings, **flags: Any) -> int:
    """`submit --compare`: both providers, one group, shown and confirmed first."""
    jobs = compare_jobs(fields_from_flags(flags), settings)  # JobValidationError: nothing sent
    for job in jobs:
        settings.require_key(job.provider)
    err(compare_table(jobs))
    over_cap, as_json = flags["over_cap"], flags["as_json"]
    if not over_cap:
        look_at_caps(settings, jobs)
    if not flags["yes"]:
        if not sys.stdin.isatty():
            raise UsageError("not a terminal to confirm on: pass --yes to send the compare")
        total = sum(j.quote.credits for j in jobs)
        answer = input(f"Send both for ~{total} credits? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            err("nothing sent")
            return EXIT_OK
    async with Session(settings, with_engine=True) as session:
        engine, store = session.engine, session.store
        assert engine is not None
        engine.subscribe(print_notice)
        tasks = await engine.submit_group(jobs, over_cap=over_cap)  # CapExceeded: exit 2
        if flags["wait"]:
            tasks = await wait_for_all(engine, tasks, quiet=as_json)
            if session.downloads is not None:
                await session.downloads.wait()
        tasks = [store.get(t.id) for t in tasks]
        if as_json:
            out(to_json([t.to_public() for t in tasks]))
        else:
            out(f"group {tasks[0].group}")
            for task in tasks:
                out(f"{task.provider.value}: {describe_outcome(task)}")
        ok = (TaskStatus.PROCESSING, TaskStatus.COMPLETED)
        return EXIT_OK if all(t.status in ok for t in tasks) else EXIT_FAILED


async def wait_for_all(engine: Engine, tasks: list[Task], *, quiet: bool) -> list[Task]:
    """Run the poll loop until each of these tasks ends (or cannot be checked)."""
    from ..events import TaskChanged

    ids = {t.id for t in tasks}
    done = asyncio.Event()

    def settled() -> bool:
        return all(engine.store.get(i).status.is_terminal or engine.waiting_reason(i) for i in ids)

    def listen(event: object) -> None:
        if isinstance(event, TaskChanged) and event.task.id in ids:
            if not quiet:
                err(f"  {event.task.provider.value}  {event.task.status.value}")
            if settled():
                done.set()

    engine.subscribe(listen)
    if settled():
        return [engine.store.get(t.id) for t in tasks]
    loop = asyncio.create_task(engine.run())
    try:
        waiter = asyncio.create_task(done.wait())
        await asyncio.wait({loop, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if loop.done():
            loop.result()  # surface a crash of the loop
        waiter.cancel()
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
    return [engine.store.get(t.id) for t in tasks]


async def submit_batch(options: Options, settings: Settings, **flags: Any) -> int:
    """Check every row, show the cost, confirm once, queue durably; then send them
    (as `watch` does) unless --detach."""
    from ..batch import load_batch, queue_batch

    path = existing_file(flags["batch_file"])
    if flags["prompt"] is not None:
        raise UsageError("--batch takes its prompts from the file; drop --prompt")
    batch = load_batch(path, settings)
    if batch.problems:
        for problem in batch.problems:
            err(f"{path}:{problem.line}: {inert(problem.message, newlines=False)}")
        err(f"error: {len(batch.problems)} bad row(s); nothing was queued")
        return EXIT_USAGE
    for name in batch.by_provider():
        settings.require_key(Provider(name))
    parts = [
        f"{name} {count} (~{credits} credits)"
        for name, (count, credits) in batch.by_provider().items()
    ]
    err(f"{len(batch.jobs)} job(s): {', '.join(parts)}")
    err(f"total estimated cost: ~{batch.total_credits} credits (the servers' charges are final)")
    if not flags["over_cap"]:
        look_at_caps(settings, [j.job for j in batch.jobs])  # CapExceeded: nothing queued
    if not flags["yes"]:
        if not sys.stdin.isatty():
            raise UsageError("not a terminal to confirm on: pass --yes to queue the batch")
        answer = input(f"Queue {len(batch.jobs)} job(s) for ~{batch.total_credits} credits? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            err("nothing queued")
            return EXIT_OK
    with Session(settings) as session:
        tasks = queue_batch(batch, session.store, settings, time.time(), over_cap=flags["over_cap"])
    if flags["as_json"]:
        out(to_json([t.to_public() for t in tasks]))
    err(f"queued {len(tasks)} job(s); they are sent within each key's rate budget")
    if flags["detach"]:
        err("`seedance-tui watch` or the dashboard sends them; `seedance-tui queue status` "
            "shows them")  # fmt: skip
        return EXIT_OK
    from .tasks import watch_pending

    return await watch_pending(options)
