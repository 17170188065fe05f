"""`status`, `list`, `credits`, `settle`, `watch`: the history's tasks, their credits
against the spending caps, and following them."""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import click

from ..models import Provider, Task, TaskStatus, iso
from ..session import Session
from ..store import Filter
from ..text import inert, to_json, to_json_array
from .common import (
    COUNT,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    Options,
    UsageError,
    check_search,
    err,
    find_task,
    json_option,
    out,
    parse_since,
    pass_options,
    provider_option,
    run_async,
    status_option,
)
from .display import (
    LINK_MARKS,
    LIST_HEADER,
    LIST_LEGEND,
    WatchDisplay,
    print_notice,
    prompt_cells,
    reasons,
    start_notifier,
    task_detail,
    task_line,
)

if TYPE_CHECKING:
    from ..caps import CapStatus
    from ..config import Settings
    from ..store import Store

ENDED_BADLY = (TaskStatus.FAILED, TaskStatus.REJECTED, TaskStatus.CANCELLED, TaskStatus.ORPHANED)


@click.command(short_help="show one task")
@click.argument("ref", metavar="ID")
@json_option
@click.option("--no-refresh", is_flag=True, help="don't ask the provider, show the history only")
@pass_options
def status(options: Options, ref: str, as_json: bool, no_refresh: bool) -> int:
    """Show one task: ID is our id, its last 8 characters, or the provider's task id. A
    task still processing is checked with the provider first (if its key is here)."""
    settings = options.settings()
    with Session(settings) as session:
        task = find_task(session.store, ref)
        events = session.store.events(task.id)
    if task.status is TaskStatus.PROCESSING and not no_refresh and settings.key(task.provider):
        # Only now the engine, its HTTP stack and an event loop: a finished task's status
        # is read from the history alone.
        import asyncio

        task, events = asyncio.run(_refreshed(settings, task))
    if as_json:
        public = task.to_public()
        public["events"] = [{**e, "at": iso(e["at"])} for e in events]
        out(to_json(public))
    else:
        out(task_detail(task, events))
    return EXIT_FAILED if task.status in ENDED_BADLY else EXIT_OK


async def _refreshed(settings: Settings, task: Task) -> tuple[Task, list[dict]]:
    """Ask the provider about a processing task (with its own key); the task and its
    events as the history holds them afterwards."""
    async with Session(settings) as session:
        engine = session.start_engine()
        engine.subscribe(print_notice)
        task = await engine.poll(task.id)
        waiting = engine.waiting_reason(task.id)
        if waiting:
            err(f"not checked: {inert(waiting)}")
        return task, session.store.events(task.id)


@click.command("list", short_help="list tasks, newest first")
@status_option
@provider_option("only this provider's tasks")
@click.option("--limit", type=COUNT, default=20, show_default=True, help="0: all")
@click.option("--search", metavar="TEXT", help="words the prompt contains")
@click.option("--since", metavar="DATE", help="YYYY-MM-DD or an ISO time")
@click.option("--group", metavar="ID", help="the tasks of one compare (`submit --compare`)")
@click.option("--by", "by", metavar="WHO",
              help="submitted by USER@HOST, USER (on any machine) or @HOST (anyone there)")  # fmt: skip
@json_option
@pass_options
def list_tasks(
    options: Options,
    statuses: tuple[str, ...],
    provider: str | None,
    limit: int,
    search: str | None,
    since: str | None,
    group: str | None,
    by: str | None,
    as_json: bool,
) -> int:
    """The history, newest first. With --json, a task of a compare carries its `group`
    and the group's credits (`group_credits`: estimated and net, per provider and in
    all)."""
    flt = Filter(
        status=statuses,
        provider=provider,
        search=check_search(search),
        since=parse_since(since),
        group=group,
        submitted_by=by,
    )
    with Session(options.settings()) as session:
        store = session.store
        tasks: Iterator[Task]
        if limit:
            tasks = iter(store.list(flt, limit=limit))
        else:
            tasks = store.iter_tasks(flt, sort="newest")  # all of them, streamed
        if as_json:
            groups: dict[str, dict[str, Any]] = {}

            def public(task: Task) -> dict[str, Any]:
                row = task.to_public()
                if task.group:
                    if task.group not in groups:
                        groups[task.group] = group_credits(store, task.group)
                    row["group_credits"] = groups[task.group]
                return row

            for piece in to_json_array(public(task) for task in tasks):
                sys.stdout.write(piece)
            out()
            return EXIT_OK
        first = next(tasks, None)
        if first is None:
            filtered = any((statuses, provider, search, since, group, by))
            err("no tasks" + (" match" if filtered else " yet"))
            return EXIT_OK
        from ..links import link_state

        now = time.time()
        settings = options.settings()
        out(LIST_HEADER)
        marked = False
        cells = prompt_cells()
        for task in itertools.chain((first,), tasks):
            link = link_state(task, settings, now)
            marked = marked or link in LINK_MARKS
            out(task_line(task, now, link, cells))
        if marked:
            err(LIST_LEGEND)
        return EXIT_OK


def group_credits(store: Store, group: str) -> dict[str, Any]:
    """A compare group's credits: estimated and net (as charged) per provider and in all."""
    members = store.list(Filter(group=group), limit=None)
    per_provider = {
        t.provider.value: {"estimated": t.credits_estimated or 0, "net": t.credits_net}
        for t in members
    }
    return {
        "tasks": len(members),
        "estimated": sum(t.credits_estimated or 0 for t in members),
        "net": sum(t.credits_net for t in members),
        "providers": per_provider,
    }


def cap_statuses(store: Store, settings: Settings, now: float) -> dict[str, dict[str, CapStatus]]:
    """provider → period → caps.CapStatus, for the providers with caps."""
    from ..caps import statuses

    found: dict[str, dict[str, CapStatus]] = {}
    for provider in Provider:
        windows = settings.cap_windows([provider], now)
        usages = {w.period: store.spending(provider, w.start, w.end) for w in windows}
        found[provider.value] = statuses(windows, usages)
    return found


EMPTY_CREDITS = {
    "today": 0, "last_7_days": 0, "all": 0, "refunded": 0, "held_by_pending": 0,
    "at_risk_orphaned": 0, "tasks": 0, "completed": 0, "failed": 0,
}  # fmt: skip


@click.command(short_help="credits spent per provider (as the servers reported them)")
@json_option
@pass_options
def credits(options: Options, as_json: bool) -> int:
    """Credits per provider: today, the last 7 days, all time, refunded, and held by
    pending work — as the servers reported them; and each spending cap (daily_cap,
    monthly_cap) with what is spent, held, at risk in orphans, and left, a gauge, and a
    warning past 80 % of it."""
    settings = options.settings()
    now = time.time()
    with Session(settings) as session:
        summary = session.store.credits_summary(now)
        capped = cap_statuses(session.store, settings, now)
    per_provider = {
        p.value: summary["providers"].get(p.value, dict(EMPTY_CREDITS)) for p in Provider
    }
    for name, row in per_provider.items():
        row["caps"] = {period: s.to_public() for period, s in capped[name].items()}
    if as_json:
        out(to_json({"providers": per_provider, "per_day": summary["per_day"]}))
        return EXIT_OK
    out(f"{'provider':<14}{'today':>7}{'7 days':>8}{'all':>8}{'refunded':>10}{'held':>7}")
    for name, row in per_provider.items():
        out(
            f"{name:<14}{row['today']:>7}{row['last_7_days']:>8}{row['all']:>8}"
            f"{row['refunded']:>10}{row['held_by_pending']:>7}"
        )
    out("Credits are what the servers reported (failed renders refunded); 'held' is pending work.")
    from ..caps import gauge

    for name, statuses_ in capped.items():
        for period, cap in statuses_.items():
            usage = cap.usage
            risk = f", {usage.at_risk} at risk" if usage.at_risk else ""
            warn = "  warning: past 80 % of the cap" if cap.warning else ""
            out(
                f"{name} {period} cap {cap.cap}: {gauge(cap.share)} {usage.total} used "
                f"(spent {usage.spent}, held {usage.held}{risk}), {cap.left} left{warn}"
            )
    return EXIT_OK


@click.command(short_help="say what an orphaned task was charged")
@click.argument("ref", metavar="ID")
@click.option("--charged", type=COUNT, metavar="N",
              help="the credits it was charged (from the provider's dashboard)")  # fmt: skip
@click.option("--none", "not_charged", is_flag=True, help="it was not charged")
@pass_options
def settle(options: Options, ref: str, charged: int | None, not_charged: bool) -> int:
    """Say what an orphaned task (sent, no trustworthy answer) was charged: ID is our id,
    its last 8 characters, or the provider's task id. Until it is settled an orphan
    counts at its estimate against the spending caps; then it counts what you say."""
    if (charged is None) == (not not_charged):
        raise UsageError("settle takes one of --charged N or --none")
    with Session(options.settings()) as session:
        task = find_task(session.store, ref)
        settled = session.store.settle(task.id, None if not_charged else charged, time.time())
    err(
        f"settled {settled.short_id} ({settled.provider.value}): "
        + ("not charged" if not_charged else f"charged {settled.credits_charged}")
        + f"; it counts {settled.credits_net} credits against the caps, not its estimate"
    )
    return EXIT_OK


@click.command(short_help="poll every pending task until none is left")
@pass_options
@run_async
async def watch(options: Options) -> int:
    """Poll every pending task (and send queued batch jobs) until none is left, with the
    same engine as the dashboard. Exit 1 if any failed, or if tasks are left that this run
    cannot check (a refused key, a task that needs the key it was submitted with); exit 2
    if a spending cap stopped the queue (its jobs stay queued)."""
    return await watch_pending(options)


def ended_summary(finished: list[Task]) -> str:
    """`watch`'s last line: how its tasks ended, each outcome named ("2 completed,
    1 failed"; "all 3 completed"). Tasks it could not check are told after it."""
    counts: dict[str, int] = {}
    for task in finished:
        counts[task.status.value] = counts.get(task.status.value, 0) + 1
    order = [s.value for s in TaskStatus]
    parts = [f"{counts[name]} {name}" for name in sorted(counts, key=order.index)]
    if not parts:
        return "no task ended"
    return ("all " if len(parts) == 1 and len(finished) > 1 else "") + ", ".join(parts)


async def watch_pending(options: Options) -> int:
    """`watch`'s work (also what `submit --batch` does after queueing, unless --detach)."""
    settings = options.settings()
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
        for reason, count in reasons(held).items():
            err(f"{count} task(s) cannot be checked: {inert(reason)}")
        if not engine.has_pending():
            if held:
                err("nothing else to do: every pending task waits for a key (see above)")
                return EXIT_FAILED
            err("nothing pending")
            return EXIT_OK
        display = WatchDisplay(engine, watched)
        engine.subscribe(display.on_event)
        notifier = start_notifier(settings, engine)
        display.start()
        try:
            await engine.run(until_idle=True)
            await notifier.aclose()  # a failing notify_command is told before the summary
        finally:
            display.stop()
        finished = [store.get(i) for i in watched]
        held = engine.held()
        failed = [t for t in finished if t.status is not TaskStatus.COMPLETED and t.id not in held]
        left = [t for t in finished if t.id in held]
        err(ended_summary([t for t in finished if t.id not in held]))
        if left:
            err(f"{len(left)} task(s) left processing that this run cannot check:")
            for reason, count in reasons({t.id: held[t.id] for t in left}).items():
                err(f"  {count} × {inert(reason)}")
        capped = queue.capped()
        for name, exc in capped.items():
            waiting = sum(
                1 for t in finished if t.status is TaskStatus.QUEUED and t.provider.value == name
            )
            err(f"error: {waiting} {name} job(s) stay queued: {exc}")
        if capped:
            return EXIT_USAGE
        return EXIT_FAILED if failed or left else EXIT_OK
