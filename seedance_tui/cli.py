"""Entry point `seedance-tui`: the dashboard by default, plus headless commands.

Exit codes: 0 ok, 1 the job or request failed, 2 bad usage or input; 141 when the reader
of the output went away (`| head`), 130 when interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import itertools
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__, providers
from .config import ConfigError, MissingKeyError, Settings, load_settings
from .models import JobSpec, JobValidationError, Provider, Task, TaskStatus, iso
from .session import Session
from .store import Filter, StoreBackend, StoreError, StoreFullError
from .store.locations import is_url
from .store.locations import open_store as open_history
from .text import inert, one_line, span, to_json, to_json_array

if TYPE_CHECKING:
    from .engine import Engine

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
# The reader of the output went away (`| head`): 128 + SIGPIPE, as any Unix tool ends.
EXIT_PIPE_CLOSED = 141
# The largest number SQLite stores (a LIMIT beyond it overflows).
MAX_COUNT = 2**63 - 1


class UsageError(Exception):
    """Bad input from the user: exit 2 with the message."""


# -- argument parsing ------------------------------------------------------------------


def _provider_defaults_help() -> str:
    nano = providers.nanophoto.defaults()
    seed = providers.seedance15pro.defaults()
    return (
        f"defaults — nanophoto: {nano['resolution']}, {nano['duration']}s, {nano['aspect_ratio']}; "
        f"seedance15pro: {seed['duration']}s, {seed['aspect_ratio']}"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="seedance-tui",
        description="A terminal dashboard for Seedance 1.5 Pro video generation. "
        "With no command, opens the dashboard.",
        epilog="Exit codes: 0 ok, 1 the job or request failed, 2 bad usage or input.",
    )
    parser.add_argument("--version", action="version", version=f"seedance-tui {__version__}")
    parser.add_argument(
        "--db",
        metavar="PATH|URL",
        help="the history file, or a postgresql://USER@HOST/DB database shared by many "
        "machines (env SEEDANCE_TUI_DB)",
    )
    parser.add_argument(
        "--key",
        action="append",
        default=[],
        metavar="PROVIDER=KEY",
        type=_key_flag,
        help="an API key for this run, ahead of env, keyring and keys file (repeatable); "
        "other users may see it in the process list: prefer `key set` or the env",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="open the dashboard against the built-in simulator with a demo history (no key, no network)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("submit", help="submit a job", description=_provider_defaults_help())
    p.add_argument("--provider", choices=[x.value for x in Provider],
                   help="default: the config's `provider`, else nanophoto")  # fmt: skip
    p.add_argument(
        "--prompt",
        help="what to generate (≤1000 characters); - reads stdin (required unless --batch)",
    )
    p.add_argument("--batch", metavar="FILE",
                   help="queue every job of a JSONL or CSV file (fields as these flags: provider, "
                   "prompt, image, mode, aspect, resolution, duration, audio, fixed_lens)")  # fmt: skip
    p.add_argument("--yes", "-y", action="store_true",
                   help="with --batch: don't ask to confirm the estimated cost")  # fmt: skip
    p.add_argument("--detach", action="store_true",
                   help="with --batch: queue and exit; `watch` or the dashboard sends them")  # fmt: skip
    p.add_argument("--image", action="append", default=[], metavar="URL",
                   help="a public image URL (repeatable); given means image-to-video")  # fmt: skip
    p.add_argument("--mode", choices=["text", "image"],
                   help="default: image when --image is given, else text")  # fmt: skip
    p.add_argument("--aspect", help="nanophoto: landscape|portrait (or 16:9|9:16), default landscape; "
                   "seedance15pro: 16:9|9:16|1:1, default 16:9 (not with images)")  # fmt: skip
    p.add_argument("--resolution", help="nanophoto only: 480p|720p|1080p, default 720p")
    p.add_argument(
        "--duration", help="seconds — nanophoto: 4|8|12, default 4; seedance15pro: 5|10, default 5"
    )
    p.add_argument("--audio", "--sound", action=argparse.BooleanOptionalAction, dest="audio",
                   help="generate audio (doubles the price); --no-audio overrides a config default")  # fmt: skip
    p.add_argument("--fixed-lens", action=argparse.BooleanOptionalAction,
                   help="nanophoto only: a fixed camera")  # fmt: skip
    p.add_argument("--wait", action="store_true", help="poll until the job ends")
    p.add_argument("--json", action="store_true", help="print the task as JSON")

    p = sub.add_parser(
        "status", help="show one task (our id, its last 8 characters, or the provider's task id)"
    )
    p.add_argument("id")
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--no-refresh", action="store_true", help="don't ask the provider, show the history only"
    )

    p = sub.add_parser("list", help="list tasks, newest first")
    p.add_argument("--status", choices=[s.value for s in TaskStatus], action="append")
    p.add_argument("--provider", choices=[x.value for x in Provider])
    p.add_argument("--limit", type=_positive_int, default=20, help="default: 20 (0: all)")
    p.add_argument("--search", metavar="TEXT", help="words the prompt contains")
    p.add_argument("--since", metavar="DATE", help="YYYY-MM-DD or an ISO time")
    p.add_argument(
        "--by", metavar="WHO",
        help="submitted by USER@HOST, USER (on any machine) or @HOST (anyone there)",
    )  # fmt: skip
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("credits", help="credits spent per provider (as the servers reported them)")
    p.add_argument("--json", action="store_true")

    sub.add_parser("watch", help="poll every pending task until none is left")

    p = sub.add_parser(
        "download",
        help="save finished videos in the local library (result links expire)",
        description="Save finished videos to the library folder (config `library`), resuming "
        "an interrupted download. Prints each saved file's path.",
    )
    p.add_argument("ids", nargs="*", metavar="ID", help="tasks to save (ids as in `list`)")
    p.add_argument("--all", action="store_true", help="every completed task not saved yet")
    p.add_argument("--force", action="store_true", help="download again even if saved")
    p.add_argument("--json", action="store_true", help="print the results as JSON")

    p = sub.add_parser(
        "frame", help="write a render's poster frame as PNG (saving the video first if needed)"
    )
    p.add_argument("id", help="our id, its last 8 characters, or the provider's task id")
    p.add_argument(
        "--output",
        "-o",
        metavar="FILE.png",
        help="write the frame here at the video's size (default: print the library's poster)",
    )
    p = sub.add_parser("sheet", help="a PNG contact sheet of renders' frames, with captions")
    p.add_argument(
        "--since", metavar="DATE", help="renders created since: YYYY-MM-DD or an ISO time"
    )
    p.add_argument("--search", metavar="TEXT", help="words the prompt contains")
    p.add_argument(
        "--limit", type=_positive_int, default=100, help="newest N renders (default 100; 0: all)"
    )
    p.add_argument(
        "--output", "-o", metavar="FILE.png", required=True, help="where to write the sheet"
    )

    p = sub.add_parser(
        "open",
        help="open a task's saved file (or its link) with the system's opener",
        description="Over SSH or without a desktop there is no opener: the path or URL is "
        "printed instead, to copy.",
    )
    p.add_argument("id")

    p = sub.add_parser(
        "key",
        help="store, list or delete API keys (OS keyring, else a 0600 file)",
        description="Lookup order when a command runs: the environment (NANOPHOTO_API_KEY, "
        "SEEDANCE15PRO_API_KEY), the OS keyring, the keys file (0600) in the config dir. "
        "SEEDANCE_TUI_KEYRING=0 turns the keyring off.",
    )
    key_sub = p.add_subparsers(dest="key_command", metavar="ACTION", required=True)
    k = key_sub.add_parser("set", help="store a key (asked for with a hidden prompt)")
    k.add_argument("provider", choices=[x.value for x in Provider])
    k.add_argument("--stdin", action="store_true", help="read the key from standard input")
    k = key_sub.add_parser(
        "list", help="which providers have a key, and from where (never the key)"
    )
    k.add_argument("--json", action="store_true")
    k = key_sub.add_parser("delete", help="remove a stored key (keyring and file)")
    k.add_argument("provider", choices=[x.value for x in Provider])

    p = sub.add_parser("config", help="the TOML config file: where it is, what is in force")
    config_sub = p.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    config_sub.add_parser("path", help="print the config file's path")
    c = config_sub.add_parser("show", help="the settings in force, as TOML (never any key)")
    c.add_argument("--json", action="store_true")
    c = config_sub.add_parser(
        "set",
        help="set one setting, e.g. `config set theme nord` or `config set keymap.submit ctrl+s`",
    )
    c.add_argument("name", help="a dotted name: theme, providers.nanophoto.defaults.duration, ...")
    c.add_argument("value", help='a TOML value (true, 8, "text"); bare words are text')
    c = config_sub.add_parser("unset", help="remove one setting (back to its default)")
    c.add_argument("name")

    p = sub.add_parser(
        "export",
        help="write the history as CSV, JSON or JSON Lines (no secrets)",
        description="Oldest first. In CSV, params and video_urls are JSON text in their cell.",
    )
    p.add_argument("--format", choices=["csv", "json", "jsonl"], default="jsonl",
                   help="default: jsonl")  # fmt: skip
    p.add_argument("--since", metavar="DATE", help="tasks created since: YYYY-MM-DD or an ISO time")
    p.add_argument("--status", choices=[s.value for s in TaskStatus], action="append")
    p.add_argument("--provider", choices=[x.value for x in Provider])
    p.add_argument("--output", "-o", metavar="FILE", help="write to FILE (default: stdout)")

    p = sub.add_parser(
        "import",
        help="add the tasks of an export file, or of another history file (a backup, a "
        "SQLite history moving into a postgresql:// one), to the history",
    )
    p.add_argument("file")
    p.add_argument("--format", choices=["csv", "json", "jsonl"],
                   help="default: from the file's suffix")  # fmt: skip

    p = sub.add_parser("history", help="the history file: path, stats, backup")
    history_sub = p.add_subparsers(dest="history_command", metavar="ACTION", required=True)
    history_sub.add_parser("path", help="print the history file's path")
    h = history_sub.add_parser("stats", help="its size and counts")
    h.add_argument("--json", action="store_true")
    h = history_sub.add_parser(
        "backup", help="a consistent copy (SQLite backup API; safe while the app runs)"
    )
    h.add_argument("dest", nargs="?", metavar="DEST",
                   help="default: backups/history-<time>.db in the data dir")  # fmt: skip

    p = sub.add_parser("queue", help="the batch queue: status, pause, resume (persisted)")
    queue_sub = p.add_subparsers(dest="queue_command", metavar="ACTION", required=True)
    q = queue_sub.add_parser("status", help="queued jobs per provider and whether paused")
    q.add_argument("--json", action="store_true")
    queue_sub.add_parser("pause", help="send no queued job until resumed")
    queue_sub.add_parser("resume", help="send queued jobs again")

    p = sub.add_parser(
        "serve",
        help="the dashboard in a browser tab (textual-serve, on 127.0.0.1 only)",
        description="Each browser tab runs its own dashboard process. Loopback only: reach it "
        "from elsewhere through an SSH tunnel (ssh -L 8000:127.0.0.1:8000 HOST).",
    )
    p.add_argument("--port", type=_port, default=8000, help="default: 8000")

    p = sub.add_parser("simulator", help="serve the fake provider APIs on loopback")
    p.add_argument("--port", type=_port, default=8765, help="default: 8765")
    p.add_argument("--host", default="127.0.0.1", help="a loopback address (default 127.0.0.1)")
    p.add_argument("--generation-time", type=float, nargs=2, metavar=("MIN", "MAX"), default=(20.0, 60.0),
                   help="seconds a render takes (default: 20 60)")  # fmt: skip
    p.add_argument(
        "--failure-rate", type=float, default=0.1, help="share of renders that fail (default 0.1)"
    )
    p.add_argument(
        "--fault-rate", type=float, default=0.0, help="share of answers that are faults (default 0)"
    )
    p.add_argument("--seed", type=int)
    return parser


def _key_flag(text: str) -> tuple[Provider, str]:
    provider, sep, key = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError("expected PROVIDER=KEY")
    try:
        return Provider(provider.strip()), key.strip()
    except ValueError:
        names = ", ".join(p.value for p in Provider)
        raise argparse.ArgumentTypeError(f"unknown provider (one of {names})") from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    if value > MAX_COUNT:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_COUNT} (0 means all)")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError("must be between 1 and 65535")
    return value


def _parse_since(text: str | None) -> float | None:
    if not text:
        return None
    import datetime as dt

    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--since: {text!r} is not a date (YYYY-MM-DD) or ISO time") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.timestamp()


# -- shared plumbing -------------------------------------------------------------------


def out(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def err(text: str) -> None:
    sys.stderr.write(text + "\n")


def open_store(settings: Settings) -> StoreBackend:
    return open_history(settings.db_target)


def _read_stdin() -> str:
    try:
        return sys.stdin.read()
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"--prompt -: standard input is not UTF-8 text (byte {exc.start + 1}); "
            "check the file's encoding"
        ) from None


def spec_from_args(args: argparse.Namespace, settings: Settings | None = None) -> JobSpec:
    """The job the flags describe (`jobs.build_spec`: what is not given comes from the
    config's `[providers.NAME.defaults]`, then the provider's own defaults)."""
    from .jobs import JobFields, build_spec

    prompt = _read_stdin() if args.prompt == "-" else args.prompt
    fields = JobFields(
        prompt=prompt,
        provider=args.provider,
        images=tuple(args.image),
        mode=args.mode,
        aspect=args.aspect,
        resolution=args.resolution,
        duration=args.duration,
        audio=args.audio,
        fixed_lens=args.fixed_lens,
    )
    return build_spec(fields, settings)


def task_line(task: Task, now: float) -> str:
    credits = task.credits_charged if task.credits_charged is not None else task.credits_estimated
    credits_text = f"{task.credits_net}" if task.credits_charged is not None else f"~{credits or 0}"
    return (
        f"{task.short_id}  {task.provider.value:<13} {task.status.value:<10} "
        f"{credits_text:>5}  {span(now - task.created_at):>7}  {one_line(task.prompt, 48)}"
    )


def task_detail(task: Task, events: list[dict[str, Any]]) -> str:
    lines = [
        f"id            {task.id}",
        f"provider      {task.provider.value}",
        f"task id       {inert(task.task_id) or '—'}",
        f"status        {task.status.value}",
        f"parameters    {task.spec.summary() or '—'}",
        f"credits       estimated {task.credits_estimated}, charged "
        f"{'—' if task.credits_charged is None else task.credits_charged}"
        + (f", refunded {task.credits_refunded}" if task.credits_refunded else "")
        + ("  (differs from the estimate)" if task.credits_mismatch else ""),
        f"created       {iso(task.created_at)}",
    ]
    if task.completed_at:
        lines.append(f"completed     {iso(task.completed_at)}")
    if task.generation_time is not None:
        lines.append(f"generation    {task.generation_time:g}s")
    for url in task.video_urls:
        lines.append(f"video         {inert(url, newlines=False)}")
    if task.local_path:
        lines.append(f"saved         {inert(task.local_path)}")
    if task.error:
        lines.append(f"error         {inert(task.error)}")
    lines.append(f"prompt        {inert(task.prompt)}")
    if events:
        lines.append("events")
        for event in events:
            lines.append(
                f"  {iso(event['at'])}  {event['kind']:<9} {event['status'] or '':<10} "
                f"{one_line(event['detail'], 60)}"
            )
    return "\n".join(lines)


def print_notice(event: object) -> None:
    """An engine listener: each notice (what a wait is for, trouble) as a line on stderr."""
    from .events import Notice

    if isinstance(event, Notice):
        err(f"{event.level}: {inert(event.message)}")


def _describe_outcome(task: Task) -> str:
    if task.status is TaskStatus.COMPLETED:
        text = f"completed: {', '.join(inert(u, newlines=False) for u in task.video_urls)}"
        if task.local_path:
            text += f"\nsaved: {inert(task.local_path, newlines=False)}"
        return text
    if task.status is TaskStatus.PROCESSING:
        return f"submitted as {inert(task.task_id)} (id {task.short_id}); check with `seedance-tui status {task.short_id}`"
    return f"{task.status.value}: {inert(task.error)}"


# -- commands --------------------------------------------------------------------------


async def cmd_submit(args: argparse.Namespace, settings: Settings) -> int:
    if args.batch:
        return await cmd_submit_batch(args, settings)
    if args.prompt is None:
        raise UsageError("submit needs --prompt (or --batch FILE)")
    from .jobs import prepare

    job = prepare(spec_from_args(args, settings))  # JobValidationError: nothing written
    spec, quote = job.spec, job.quote
    settings.require_key(spec.provider)
    async with Session(settings, with_engine=True) as session:
        engine, store = session.engine, session.store
        assert engine is not None
        engine.subscribe(print_notice)
        if not args.json:
            err(
                f"submitting to {spec.provider.value}: estimated {quote.credits} credits ({quote.basis})"
            )
        task = await engine.submit(job)
        if engine.unsaved():
            # Accepted, but not recorded yet (a full disk): wait for space, saying so.
            try:
                await engine.flush_unsaved()
            except (KeyboardInterrupt, asyncio.CancelledError):
                for kept in engine.unsaved():
                    err(f"not recorded: {kept.provider.value} task id {inert(kept.task_id)}")
                raise
            task = store.get(task.id)
        if args.wait and task.status is TaskStatus.PROCESSING:
            task = await _wait_for(engine, task, quiet=args.json)
            waiting = engine.waiting_reason(task.id)
            if waiting:
                err(f"error: {task.short_id} cannot be checked: {inert(waiting)}")
                return EXIT_FAILED
            if session.downloads is not None:
                await session.downloads.wait()  # the auto-download of this render
                task = store.get(task.id)
        if args.json:
            out(to_json(task.to_public()))
        else:
            out(_describe_outcome(task))
        return (
            EXIT_OK if task.status in (TaskStatus.PROCESSING, TaskStatus.COMPLETED) else EXIT_FAILED
        )


async def _wait_for(engine: Engine, task: Task, *, quiet: bool) -> Task:
    """Run the poll loop until this task ends."""
    from .events import TaskChanged

    done = asyncio.Event()
    final: dict[str, Task] = {}

    def listen(event: object) -> None:
        if isinstance(event, TaskChanged) and event.task.id == task.id:
            if not quiet:
                err(f"  {event.task.status.value}  ({span(time.time() - task.created_at)})")
            if event.task.status.is_terminal:
                final["task"] = event.task
                done.set()
        if engine.waiting_reason(task.id):
            done.set()  # it cannot be checked (its key was refused): nothing left to wait for

    engine.subscribe(listen)
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
    return final.get("task") or engine.store.get(task.id)


async def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    async with Session(settings) as session:
        store = session.store
        task = store.find(args.id)
        if task is None:
            raise UsageError(f"no task matches {args.id!r} (use an id from `seedance-tui list`)")
        if (
            task.status is TaskStatus.PROCESSING
            and not args.no_refresh
            and settings.key(task.provider)
        ):
            engine = session.start_engine()
            engine.subscribe(print_notice)
            task = await engine.poll(task.id)
            waiting = engine.waiting_reason(task.id)
            if waiting:
                err(f"not checked: {inert(waiting)}")
        if args.json:
            public = task.to_public()
            public["events"] = [{**e, "at": iso(e["at"])} for e in store.events(task.id)]
            out(to_json(public))
        else:
            out(task_detail(task, store.events(task.id)))
        return (
            EXIT_FAILED
            if task.status
            in (TaskStatus.FAILED, TaskStatus.REJECTED, TaskStatus.CANCELLED, TaskStatus.ORPHANED)
            else EXIT_OK
        )


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    store = open_store(settings)
    try:
        flt = Filter(
            status=tuple(args.status or ()),
            provider=args.provider,
            search=args.search,
            since=_parse_since(args.since),
            submitted_by=args.by,
        )
        tasks: Iterator[Task]
        if args.limit:
            tasks = iter(store.list(flt, limit=args.limit))
        else:
            tasks = store.iter_tasks(flt, sort="newest")  # all of them, streamed
        if args.json:
            for piece in to_json_array(task.to_public() for task in tasks):
                sys.stdout.write(piece)
            out()
            return EXIT_OK
        first = next(tasks, None)
        if first is None:
            err(
                "no tasks"
                + (
                    " match"
                    if any((args.status, args.provider, args.search, args.since, args.by))
                    else " yet"
                )
            )
            return EXIT_OK
        now = time.time()
        out(f"{'id':<8}  {'provider':<13} {'status':<10} {'cred':>5}  {'age':>7}  prompt")
        for task in itertools.chain((first,), tasks):
            out(task_line(task, now))
        return EXIT_OK
    finally:
        store.close()


def cmd_credits(args: argparse.Namespace, settings: Settings) -> int:
    store = open_store(settings)
    try:
        summary = store.credits_summary(time.time())
        providers_summary = {
            p.value: summary["providers"].get(p.value, {
                "today": 0, "last_7_days": 0, "all": 0, "refunded": 0, "held_by_pending": 0,
                "at_risk_orphaned": 0, "tasks": 0, "completed": 0, "failed": 0,
            })
            for p in Provider
        }  # fmt: skip
        if args.json:
            out(to_json({"providers": providers_summary, "per_day": summary["per_day"]}))
            return EXIT_OK
        out(f"{'provider':<14}{'today':>7}{'7 days':>8}{'all':>8}{'refunded':>10}{'held':>7}")
        for name, row in providers_summary.items():
            out(
                f"{name:<14}{row['today']:>7}{row['last_7_days']:>8}{row['all']:>8}"
                f"{row['refunded']:>10}{row['held_by_pending']:>7}"
            )
        out(
            "Credits are what the servers reported (failed renders refunded); 'held' is pending work."
        )
        return EXIT_OK
    finally:
        store.close()


async def cmd_submit_batch(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from .batch import load_batch, queue_batch

    path = Path(args.batch).expanduser()
    if not path.is_file():
        raise UsageError(f"no file {path}")
    if args.prompt is not None:
        raise UsageError("--batch takes its prompts from the file; drop --prompt")
    batch = load_batch(path, settings)
    if batch.problems:
        for problem in batch.problems:
            err(f"{path}:{problem.line}: {inert(problem.message, newlines=False)}")
        err(f"error: {len(batch.problems)} bad row(s); nothing was queued")
        return EXIT_USAGE
    for name in batch.by_provider():
        provider = Provider(name)
        if not settings.key(provider):
            raise MissingKeyError(provider, providers.get(provider).env_key)
    parts = [
        f"{name} {count} (~{credits} credits)"
        for name, (count, credits) in batch.by_provider().items()
    ]
    err(f"{len(batch.jobs)} job(s): {', '.join(parts)}")
    err(f"total estimated cost: ~{batch.total_credits} credits (the servers' charges are final)")
    if not args.yes:
        if not sys.stdin.isatty():
            raise UsageError("not a terminal to confirm on: pass --yes to queue the batch")
        answer = input(f"Queue {len(batch.jobs)} job(s) for ~{batch.total_credits} credits? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            err("nothing queued")
            return EXIT_OK
    store = open_store(settings)
    try:
        tasks = queue_batch(batch, store, settings, time.time())
    finally:
        store.close()
    if args.json:
        out(to_json([t.to_public() for t in tasks]))
    err(f"queued {len(tasks)} job(s); they are sent within each key's rate budget")
    if args.detach:
        err(
            "`seedance-tui watch` or the dashboard sends them; `seedance-tui queue status` shows them"
        )
        return EXIT_OK
    return await cmd_watch(args, settings)


def cmd_queue(args: argparse.Namespace, settings: Settings) -> int:
    from .batch_queue import is_paused, set_paused

    store = open_store(settings)
    try:
        if args.queue_command == "pause":
            set_paused(store, True)
            err("queue paused: no queued job is sent until `seedance-tui queue resume`")
        elif args.queue_command == "resume":
            set_paused(store, False)
            err("queue resumed: a running dashboard or `watch` sends the jobs")
        counts = store.count_queued()
        paused = is_paused(store)
        if args.queue_command == "status":
            if getattr(args, "json", False):
                out(to_json({"paused": paused, "queued": counts, "total": sum(counts.values())}))
            else:
                out(
                    f"queue {'paused' if paused else 'running'}: {sum(counts.values())} job(s) waiting"
                )
                for name, count in sorted(counts.items()):
                    out(f"  {name:<14}{count:>6}")
        return EXIT_OK
    finally:
        store.close()


async def cmd_watch(args: argparse.Namespace, settings: Settings) -> int:
    async with Session(settings, with_engine=True) as session:
        engine, store, queue = session.engine, session.store, session.queue
        assert engine is not None and queue is not None
        engine.start()
        watched = {t.id: t for t in store.pending()}
        queued = store.list(Filter(status=(TaskStatus.QUEUED.value,)), limit=None)
        if queued and queue.paused():
            err(
                f"{len(queued)} queued job(s) wait: the queue is paused (`seedance-tui queue resume`)"
            )
        elif queued:
            watched.update((t.id, t) for t in queued if settings.key(t.provider))
        held = engine.held()
        for reason, count in _reasons(held).items():
            err(f"{count} task(s) cannot be checked: {inert(reason)}")
        if not engine.has_pending():
            if held:
                err("nothing else to do: every pending task waits for a key (see above)")
                return EXIT_FAILED
            err("nothing pending")
            return EXIT_OK
        display = WatchDisplay(engine, watched)
        engine.subscribe(display.on_event)
        display.start()
        try:
            await engine.run(until_idle=True)
        finally:
            display.stop()
        finished = [store.get(i) for i in watched]
        held = engine.held()
        failed = [t for t in finished if t.status is not TaskStatus.COMPLETED and t.id not in held]
        left = [t for t in finished if t.id in held]
        err(f"{len(finished) - len(failed) - len(left)} completed, {len(failed)} not")
        if left:
            err(f"{len(left)} task(s) left processing that this run cannot check:")
            for reason, count in _reasons({t.id: held[t.id] for t in left}).items():
                err(f"  {count} × {inert(reason)}")
        return EXIT_FAILED if failed or left else EXIT_OK


def _reasons(held: dict[str, str]) -> dict[str, int]:
    """How many tasks wait for each reason."""
    counts: dict[str, int] = {}
    for reason in held.values():
        counts[reason] = counts.get(reason, 0) + 1
    return counts


class WatchDisplay:
    """Progress of `watch`: a live table on a terminal, one line per change otherwise."""

    def __init__(self, engine: Engine, watched: dict[str, Task]) -> None:
        self.engine = engine
        self.tasks = dict(watched)
        self.live: Any = None
        self.tty = sys.stderr.isatty()

    def start(self) -> None:
        if not self.tty:
            err(f"watching {len(self.tasks)} pending task(s)")
            return
        from rich.console import Console
        from rich.live import Live

        self.live = Live(self.render(), console=Console(stderr=True), refresh_per_second=2,
                         get_renderable=self.render)  # fmt: skip
        self.live.start()

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()

    def on_event(self, event: object) -> None:
        from .events import Notice, TaskChanged

        if isinstance(event, TaskChanged):
            self.tasks[event.task.id] = event.task
            if not self.tty:
                err(f"{task_line(event.task, time.time())}")
        elif isinstance(event, Notice):
            line = f"{event.level}: {inert(event.message)}"
            if self.live is not None:
                self.live.console.print(line, markup=False, highlight=False)
            else:
                err(line)

    def render(self) -> Any:
        from rich.table import Table
        from rich.text import Text

        now = time.time()
        done = sum(1 for t in self.tasks.values() if t.status.is_terminal)
        table = Table(title=Text(f"watching: {done}/{len(self.tasks)} done"), expand=False)
        for column in ("id", "provider", "status", "elapsed", "next check", "prompt"):
            table.add_column(column)
        for task in sorted(self.tasks.values(), key=lambda t: t.created_at):
            next_at = self.engine.next_check(task.id)
            waiting = self.engine.waiting_reason(task.id)
            if waiting:
                when = one_line(waiting, 40)
            else:
                when = "—" if next_at is None else f"in {max(0, next_at - now):.0f}s"
            table.add_row(
                task.short_id,
                task.provider.value,
                task.status.value,
                span(now - (task.submitted_at or task.created_at)),
                Text(when),
                Text(one_line(task.prompt, 40)),
            )
        return table


async def cmd_download(args: argparse.Namespace, settings: Settings) -> int:
    from .client import MediaClient
    from .library import DownloadError, download_task, downloadable

    if bool(args.ids) == bool(args.all):
        raise UsageError("give task ids or --all (not both)")
    store = open_store(settings)
    media = MediaClient()
    try:
        if args.all:
            tasks = downloadable(store)
            if args.force:
                flt = Filter(status=(TaskStatus.COMPLETED.value,))
                tasks = [t for t in store.list(flt, limit=None) if t.video_urls]
        else:
            tasks = []
            for ref in args.ids:
                task = store.find(ref)
                if task is None:
                    raise UsageError(
                        f"no task matches {ref!r} (use an id from `seedance-tui list`)"
                    )
                if task.status is not TaskStatus.COMPLETED or not task.video_urls:
                    raise UsageError(
                        f"task {task.short_id} is {task.status.value}: no video to save"
                    )
                tasks.append(task)
        if not tasks:
            err("nothing to download: every completed task is saved")
            return EXIT_OK
        results: list[dict[str, Any]] = []
        with DownloadDisplay(len(tasks), quiet=args.json) as display:
            for task in tasks:
                try:
                    path = await download_task(
                        task, store, settings, media=media, force=args.force,
                        on_progress=display.progress_for(task),
                    )  # fmt: skip
                except DownloadError as exc:
                    display.failed(task, str(exc))
                    results.append({"id": task.id, "ok": False, "error": str(exc)})
                    continue
                display.saved(task, str(path))
                results.append({"id": task.id, "ok": True, "path": str(path)})
                if not args.json:
                    out(str(path))
        if args.json:
            out(to_json(results))
        failed = sum(1 for r in results if not r["ok"])
        if failed:
            err(f"{len(results) - failed} saved, {failed} failed")
        return EXIT_FAILED if failed else EXIT_OK
    finally:
        await media.aclose()
        store.close()


class DownloadDisplay:
    """Download progress on stderr: rich progress bars on a terminal, plain lines otherwise."""

    def __init__(self, count: int, *, quiet: bool = False) -> None:
        self.count = count
        self.quiet = quiet
        self.tty = sys.stderr.isatty() and not quiet
        self.progress: Any = None
        self._bars: dict[str, Any] = {}

    def __enter__(self) -> DownloadDisplay:
        if self.tty:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )  # fmt: skip

            self.progress = Progress(
                TextColumn("{task.description}", markup=False), BarColumn(), DownloadColumn(),
                TransferSpeedColumn(), TimeRemainingColumn(), console=Console(stderr=True),
            )  # fmt: skip
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def progress_for(self, task: Task) -> Callable[[int, int | None], None]:
        label = f"{task.short_id} {one_line(task.prompt, 30)}"
        if self.progress is not None:
            bar = self.progress.add_task(label, total=None)
            self._bars[task.id] = bar

            def update(done: int, total: int | None) -> None:
                self.progress.update(bar, completed=done, total=total)

            return update
        if not self.quiet:
            err(f"downloading {label}")
        marks: set[int] = set()

        def plain(done: int, total: int | None) -> None:
            if self.quiet or not total:
                return
            step = min(100, done * 100 // total) // 25 * 25
            if step and step not in marks:
                marks.add(step)
                err(f"  {step:>3}%  {done}/{total} bytes")

        return plain

    def saved(self, task: Task, path: str) -> None:
        if self.progress is None and not self.quiet:
            err(f"  saved {task.short_id} → {inert(path)}")

    def failed(self, task: Task, message: str) -> None:
        if self.progress is not None:
            self.progress.console.print(f"failed {task.short_id}: {inert(message)}", markup=False)
        elif not self.quiet:
            err(f"  failed {task.short_id}: {inert(message)}")


def _png_output(text: str | None) -> Path | None:
    if text is None:
        return None
    path = Path(text).expanduser()
    if path.suffix.lower() != ".png":
        raise UsageError(f"{text}: the output is a PNG file, name it *.png")
    if not path.parent.is_dir():
        raise UsageError(f"{text}: no such folder {str(path.parent)!r}")
    return path


async def cmd_frame(args: argparse.Namespace, settings: Settings) -> int:
    from . import library
    from .client import MediaClient
    from .frames import FrameError, write_frame

    output = _png_output(args.output)
    store = open_store(settings)
    try:
        task = store.find(args.id)
        if task is None:
            raise UsageError(f"no task matches {args.id!r} (use an id from `seedance-tui list`)")
        saving = task.status is TaskStatus.COMPLETED and library.saved_file(task) is None
        async with MediaClient() as media:
            with DownloadDisplay(1, quiet=not saving) as display:
                try:
                    path = await write_frame(task, store, settings, media=media, output=output,
                                             on_progress=display.progress_for(task))  # fmt: skip
                except FrameError as exc:
                    err(f"error: no frame: {inert(str(exc))}")
                    return EXIT_FAILED
        out(str(path))
        return EXIT_OK
    finally:
        store.close()


async def cmd_sheet(args: argparse.Namespace, settings: Settings) -> int:
    from .client import MediaClient
    from .frames import FrameError
    from .sheet import write_sheet

    output = _png_output(args.output)
    assert output is not None
    since = _parse_since(args.since)
    store = open_store(settings)

    def progress(done: int, total: int) -> None:
        if done == total or done % 10 == 0:
            err(f"  {done}/{total} frames")

    try:
        async with MediaClient() as media:
            try:
                tiles = await write_sheet(store, settings, output, since=since, search=args.search,
                                          limit=args.limit, media=media, on_progress=progress)  # fmt: skip
            except FrameError as exc:
                err(f"error: {inert(str(exc))}")
                return EXIT_FAILED
        missing = sum(1 for tile in tiles if tile.image is None)
        if missing:
            err(f"{missing} of {len(tiles)} renders had no frame to show (see their tiles)")
        out(str(output))
        return EXIT_OK
    finally:
        store.close()


def cmd_open(args: argparse.Namespace, settings: Settings) -> int:
    from .library import UnsafeTarget, open_target, open_with_system

    store = open_store(settings)
    try:
        task = store.find(args.id)
        if task is None:
            raise UsageError(f"no task matches {args.id!r} (use an id from `seedance-tui list`)")
        try:
            target = open_target(task)
        except UnsafeTarget as exc:
            err(f"error: {exc} (task {task.short_id})")
            return EXIT_FAILED
        if target is None:
            raise UsageError(f"task {task.short_id} has neither a saved file nor a link")
        if open_with_system(target):
            err(f"opened {inert(target, newlines=False)}")
        else:
            err("no system opener here (SSH or no desktop): copy this instead")
            out(inert(target, newlines=False))
        return EXIT_OK
    finally:
        store.close()


def cmd_key(args: argparse.Namespace) -> int:
    from .keys import delete_key, key_status, keyring_backend, keyring_name, store_key

    if args.key_command == "list":
        statuses = key_status()
        if args.json:
            out(to_json([s.to_public() for s in statuses]))
            return EXIT_OK
        backend = keyring_backend()
        for status in statuses:
            where = status.source or "none"
            also = [s for s in status.sources if s != status.source]
            extra = f" (also in: {', '.join(also)}, not used)" if also else ""
            if status.source == "env":
                where = f"env {status.env_var}"
            out(f"{status.provider.value:<14} {where}{extra}")
        out(
            "keyring: "
            + (
                keyring_name(backend)
                if backend is not None
                else "none usable (keys go to the file)"
            )
        )
        return EXIT_OK
    provider = Provider(args.provider)
    if args.key_command == "delete":
        removed = delete_key(provider)
        if not removed:
            err(f"no stored key for {provider.value}")
            return EXIT_FAILED
        err(f"removed the {provider.value} key from {', '.join(removed)}")
        return EXIT_OK
    # set
    if args.stdin:
        key = sys.stdin.readline().strip()
    elif sys.stdin.isatty():
        import getpass

        key = getpass.getpass(f"{provider.value} API key (hidden): ").strip()
    else:
        raise UsageError("no terminal to ask for the key on: pipe it with --stdin")
    if not key:
        raise UsageError("no key given; nothing stored")
    where = store_key(provider, key)
    del key
    err(
        f"stored the {provider.value} key "
        + ("in the OS keyring" if where == "keyring" else f"in {where} (mode 0600)")
    )
    env_key = providers.get(provider).env_key
    if os.environ.get(env_key):
        err(f"note: {env_key} is set in the environment and takes precedence over it")
    return EXIT_OK


def cmd_config(args: argparse.Namespace) -> int:
    from .config import save_setting
    from .paths import config_path

    if args.config_command == "path":
        out(str(config_path()))
        return EXIT_OK
    if args.config_command in ("set", "unset"):
        value: Any = None
        if args.config_command == "set":
            import tomllib

            try:
                value = tomllib.loads(f"v = {args.value}")["v"]
            except tomllib.TOMLDecodeError:
                value = args.value
        path = save_setting(args.name, value)
        err(f"{'set' if value is not None else 'removed'} {args.name} in {path}")
        return EXIT_OK
    settings = load_settings()
    shown = effective_config(settings)
    if args.json:
        out(to_json(shown))
    else:
        import tomlkit

        sources = {name: section.pop("key_source") for name, section in shown["providers"].items()}
        out(f"# settings in force (file: {config_path()}); keys are never shown")
        out(tomlkit.dumps(shown).rstrip())
        out("")
        for name, source in sources.items():
            out(f"# {name} key: {source}  (see `seedance-tui key list`)")
    return EXIT_OK


def effective_config(settings: Settings) -> dict[str, Any]:
    """The settings in force, in the config file's shape, plus where each key comes from."""
    from .paths import default_library_dir

    return {
        "db": settings.db_location,
        "library": str(settings.library or default_library_dir()),
        "auto_download": settings.auto_download,
        "bell": settings.bell,
        "theme": settings.theme or "textual-dark",
        "provider": settings.default_provider.value,
        "images": settings.images,
        "keymap": dict(settings.keymap),
        "polling": {k: list(v) if isinstance(v, tuple) else v for k, v in settings.polling.items()},
        "providers": {
            p.value: {
                "base_url": s.base_url,
                "requests_per_hour": s.requests_per_hour or 0,
                "link_ttl_hours": s.link_ttl_hours,
                "key_source": s.key_source or "none",
                "defaults": {**providers.get(p).defaults(), **s.defaults},
            }
            for p, s in settings.providers.items()
        },
    }


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from .exporting import iter_tasks, write_export

    flt = Filter(
        status=tuple(args.status or ()), provider=args.provider, since=_parse_since(args.since)
    )
    store = open_store(settings)
    try:
        tasks = iter_tasks(store, flt)
        if args.output:
            from pathlib import Path

            path = Path(args.output).expanduser()
            tmp = path.with_name(path.name + ".tmp")
            with open(tmp, "w", encoding="utf-8", newline="") as fh:
                count = write_export(tasks, args.format, fh)
            tmp.replace(path)
            err(f"wrote {count} task(s) to {path}")
        else:
            count = write_export(tasks, args.format, sys.stdout, terminal=sys.stdout.isatty())
        return EXIT_OK
    finally:
        store.close()


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from .exporting import ImportError_, import_file

    path = Path(args.file).expanduser()
    if not path.is_file():
        raise UsageError(f"no file {path}")
    store = open_store(settings)
    try:
        imported, skipped = import_file(store, path, args.format)
    except ImportError_ as exc:
        raise UsageError(str(exc)) from None
    finally:
        store.close()
    err(f"imported {imported} task(s), skipped {skipped} already in the history")
    return EXIT_OK


def cmd_history(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from .exporting import backup_history, history_stats
    from .paths import backups_dir

    if args.history_command == "path":
        out(settings.db_location)
        return EXIT_OK
    store = open_store(settings)
    try:
        if args.history_command == "stats":
            stats = history_stats(store)
            if args.json:
                out(to_json(stats))
                return EXIT_OK
            out(f"path        {stats['path']}")
            if stats["bytes"] is not None:
                out(f"size        {stats['bytes']:,} bytes")
            out(f"tasks       {stats['tasks']}")
            for status, count in sorted(stats["by_status"].items()):
                out(f"  {status:<10}{count:>8}")
            out(f"events      {stats['events']}")
            out(f"requests    {stats['requests']}")
            out(f"oldest      {stats['oldest'] or '—'}")
            out(f"newest      {stats['newest'] or '—'}")
            out(f"schema      {stats['schema_version']}")
            return EXIT_OK
        if args.dest:
            dest = Path(args.dest).expanduser()
        else:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            dest = backups_dir() / f"history-{stamp}.db"
        try:
            path = backup_history(store, dest)
        except FileExistsError as exc:
            raise UsageError(str(exc)) from None
        out(str(path))
        return EXIT_OK
    finally:
        store.close()


def serve_command(args: argparse.Namespace) -> str:
    """The shell command each browser session runs: this dashboard with the same options."""
    import shlex

    parts = [sys.executable, "-m", "seedance_tui"]
    if args.db and is_url(args.db):
        os.environ["SEEDANCE_TUI_DB"] = args.db  # inherited: no password on a command line
    elif args.db:
        parts += ["--db", os.path.abspath(os.path.expanduser(args.db))]
    if args.demo:
        parts.append("--demo")
    return shlex.join(parts)


def cmd_serve(args: argparse.Namespace) -> int:
    import logging
    import socket

    from textual_serve.server import Server

    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", args.port))
        except OSError:
            raise UsageError(
                f"port {args.port} on 127.0.0.1 is taken; choose another with --port"
            ) from None
    logging.getLogger("textual_serve").setLevel(logging.WARNING)
    err(f"dashboard on http://127.0.0.1:{args.port} (loopback only); Ctrl+C stops it")
    server = Server(serve_command(args), host="127.0.0.1", port=args.port, title="seedance-tui")

    with contextlib.suppress(KeyboardInterrupt):
        server.serve()
    return EXIT_OK


def cmd_simulator(args: argparse.Namespace) -> int:
    from .simulator import SimConfig, serve

    try:
        config = SimConfig(
            generation_time=tuple(args.generation_time), failure_rate=args.failure_rate,
            fault_rate=args.fault_rate, seed=args.seed,
        )  # fmt: skip
        err(f"simulator on http://{args.host}:{args.port} — point NANOPHOTO_BASE_URL and "
            f"SEEDANCE15PRO_BASE_URL at it; Ctrl+C stops it")  # fmt: skip
        serve(args.host, args.port, config)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    except KeyboardInterrupt:
        pass
    return EXIT_OK


def cmd_tui(args: argparse.Namespace, settings: Settings) -> int:
    from .tui import run_app

    return run_app(settings, demo=args.demo)


# -- main ------------------------------------------------------------------------------

ASYNC_COMMANDS: dict[str, Callable[..., Any]] = {
    "submit": cmd_submit, "status": cmd_status, "watch": cmd_watch, "download": cmd_download,
    "frame": cmd_frame, "sheet": cmd_sheet,
}  # fmt: skip
SYNC_COMMANDS: dict[str, Callable[..., int]] = {
    "list": cmd_list, "credits": cmd_credits, "open": cmd_open, "export": cmd_export,
    "import": cmd_import, "history": cmd_history, "queue": cmd_queue,
}  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    try:
        try:
            return _main(argv)
        finally:
            sys.stdout.flush()  # a reader that went away shows here, not at the exit
    except BrokenPipeError:
        # Nothing left to tell anyone (`seedance-tui list | head`): end quietly, and point
        # the standard streams at /dev/null so the interpreter's last flush has nowhere to
        # fail.
        devnull = os.open(os.devnull, os.O_WRONLY)
        for stream in (sys.stdout, sys.stderr):
            # A stream that is not a file descriptor (a test's capture) is left as it is.
            with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
                os.dup2(devnull, stream.fileno())
        os.close(devnull)
        return EXIT_PIPE_CLOSED


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    settings: Settings | None = None
    try:
        if args.command == "simulator":
            return cmd_simulator(args)
        if args.command == "key":
            return cmd_key(args)
        if args.command == "serve":
            return cmd_serve(args)
        if args.command == "config":
            return cmd_config(args)
        settings = load_settings(db=args.db, keys=dict(args.key) or None)
        if args.command is None:
            return cmd_tui(args, settings)
        if args.command in ASYNC_COMMANDS:
            return asyncio.run(ASYNC_COMMANDS[args.command](args, settings))
        return SYNC_COMMANDS[args.command](args, settings)
    except JobValidationError as exc:
        err(f"error: {exc.field}: {exc.message}")
        return EXIT_USAGE
    except (UsageError, MissingKeyError, ConfigError) as exc:
        err(f"error: {exc}")
        return EXIT_USAGE
    except StoreFullError as exc:
        err(f"error: {exc}")
        return EXIT_FAILED
    except StoreError as exc:
        err(f"error: {exc}")
        return EXIT_USAGE
    except providers.ApiError as exc:
        err(f"error: {exc}" + (f" — {exc.hint}" if exc.hint else ""))
        return EXIT_FAILED
    except KeyboardInterrupt:
        err("interrupted")
        return 130


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    run()
