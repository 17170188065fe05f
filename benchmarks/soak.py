"""Fault soak: the real engine against the simulator with ~20% of answers faulty, and
~10% more hostile (issue #10): absurd numbers, wrong types, escape sequences and bad
video URLs in otherwise good answers, answers dripped past the client's deadline,
answers declaring 50 MB, and connections refused before anything is sent.

Everything runs in accelerated time: the simulator and the engine share one scaled
clock (one real second is `--scale` clock seconds), so renders of 1-3 minutes, the
100-requests-per-hour limit of nanophoto and Retry-After pauses all behave as in
production, only faster. Faults that the simulator serves in real time (slow answers,
answers that never come) are paired with a short client read timeout.

Jobs arrive at random, alternating providers; each gets a unique prompt so that a
task the simulator created can be matched to our history row without trusting ids.

Checked at the end (the invariants of issue 5):
  * every task the simulator created is in our history with its task id (lost 0);
  * no job created more than one task (duplicated 0);
  * each such row ends in the simulator's terminal state (state mismatches 0);
  * our credits per provider equal the simulator's net charges (credit mismatches 0),
    apart from orphans the simulator accepted (only with --fault-after-accept);
  * the simulator refused no request for exceeding the limit (over-limit 0);
  * no unhandled exception in the engine (tracebacks 0).
A completed task whose every answer gave an unusable credit figure has no charge the
server reported: it is counted apart ("charge never reported"), with what the
simulator charged for it, as orphans are.
Jobs whose `generate` answer was lost (a timeout, a reset, a body that is not JSON) end
`orphaned`: the client never resends them, since that could charge twice. With the
simulator's default `fault_after_accept=False` it created nothing for them.

Run: python benchmarks/soak.py [--jobs 200] [--fault-rate 0.2] [--hostile-rate 0.1]
     [--fault-after-accept]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from seedance_tui.client import Client  # noqa: E402
from seedance_tui.config import load_settings  # noqa: E402
from seedance_tui.engine import Engine  # noqa: E402
from seedance_tui.models import JobSpec, Mode, Provider, TaskStatus  # noqa: E402
from seedance_tui.simulator import SimConfig, SimulatorServer  # noqa: E402
from seedance_tui.simulator.config import FAULT_KINDS, HOSTILE_KINDS  # noqa: E402
from seedance_tui.store import Store  # noqa: E402

NANO_KEY = "sk-soak-nano-4c1d"
SEED_KEY = "sk-soak-seed-9e2b"
SIM_STATUS = {"completed": TaskStatus.COMPLETED, "failed": TaskStatus.FAILED}


class ScaledClock:
    """Epoch seconds that run `scale` times faster than the wall clock from now on."""

    def __init__(self, scale: float) -> None:
        self.scale = scale
        self.origin = time.time()

    def __call__(self) -> float:
        return self.origin + (time.time() - self.origin) * self.scale

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.scale)


class RefusingTransport(httpx.AsyncBaseTransport):
    """Refuses a share of connections before anything is sent (a server or network that
    is briefly gone), as the operating system would: httpx.ConnectError."""

    def __init__(self, rate: float, rng: random.Random) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.rate = rate
        self.rng = rng
        self.refused = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.rng.random() < self.rate:
            self.refused += 1
            raise httpx.ConnectError("connection refused (soak)", request=request)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


class ErrorLog(logging.Handler):
    """Collects every ERROR (or worse) record: an unhandled exception in the engine."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(self.format(record))


@dataclass
class SoakResult:
    jobs: int
    seconds: float
    faults: dict[str, int]
    requests: dict[str, int]
    sim_tasks: int
    statuses: dict[str, int]
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    state_mismatches: list[str] = field(default_factory=list)
    credit_mismatches: dict[str, tuple[int, int]] = field(default_factory=dict)
    over_limit: int = 0
    orphans: int = 0
    orphans_created_by_sim: int = 0
    orphan_credits_at_sim: dict[str, int] = field(default_factory=dict)
    unreported: int = 0  # completed, and no answer gave a usable credit figure
    unreported_credits_at_sim: dict[str, int] = field(default_factory=dict)
    not_terminal: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    credits: dict[str, tuple[int, int]] = field(default_factory=dict)  # ours, sim's

    @property
    def ok(self) -> bool:
        return not (
            self.lost
            or self.duplicated
            or self.state_mismatches
            or self.credit_mismatches
            or self.over_limit
            or self.not_terminal
            or self.errors
        )

    @property
    def tracebacks(self) -> int:
        return len(self.errors)

    def report(self) -> str:
        faults = ", ".join(f"{k} {v}" for k, v in self.faults.items() if v)
        hostile = sum(v for k, v in self.faults.items() if k in (*HOSTILE_KINDS, "refused"))
        lines = [
            f"jobs                 {self.jobs} ({self.seconds:.1f} s wall clock)",
            f"requests (sim)       {self.requests.get('total', 0)} "
            f"(nanophoto {self.requests.get('nanophoto', 0)}, "
            f"seedance15pro {self.requests.get('seedance15pro', 0)})",
            f"faults injected      {sum(self.faults.values())} ({faults})",
            f"  of which hostile   {hostile} (absurd, drip, huge, refused)",
            f"tasks created (sim)  {self.sim_tasks}",
            f"our final statuses   {dict(sorted(self.statuses.items()))}",
            f"lost                 {len(self.lost)}",
            f"duplicated           {len(self.duplicated)}",
            f"state mismatches     {len(self.state_mismatches)}",
            f"credit mismatches    {len(self.credit_mismatches)}",
        ]
        for provider, (ours, theirs) in sorted(self.credits.items()):
            lines.append(f"  credits {provider:<13} ours {ours:>6}  simulator net {theirs:>6}")
        lines += [
            f"tracebacks           {self.tracebacks}",
            f"over-limit refusals  {self.over_limit}",
            f"not terminal         {len(self.not_terminal)}",
            f"orphaned             {self.orphans} (generate answer lost; never resent)",
            f"  of which the simulator created  {self.orphans_created_by_sim}"
            + (
                f" (credits it charged for them: {self.orphan_credits_at_sim})"
                if self.orphans_created_by_sim
                else ""
            ),
            f"charge never reported {self.unreported} (every credit figure unusable"
            + (
                f"; the simulator charged {self.unreported_credits_at_sim})"
                if self.unreported
                else ")"
            ),
        ]
        for label, items in (
            ("lost", self.lost),
            ("duplicated", self.duplicated),
            ("state", self.state_mismatches),
            ("not terminal", self.not_terminal),
            ("error", self.errors),
        ):
            for item in items[:5]:
                lines.append(f"  {label}: {item}")
        lines.append("RESULT               " + ("ok" if self.ok else "FAILED"))
        return "\n".join(lines)


def job_specs(count: int, rng: random.Random) -> list[JobSpec]:
    specs = []
    for i in range(count):
        provider = Provider.NANOPHOTO if i % 2 == 0 else Provider.SEEDANCE15PRO
        prompt = f"soak job #{i:04d}: a lighthouse in a storm"
        image = rng.random() < 0.2
        urls = (f"https://example.com/img/{i}.png",) if image else ()
        mode = Mode.IMAGE_TO_VIDEO if image else Mode.TEXT_TO_VIDEO
        if provider is Provider.NANOPHOTO:
            spec = JobSpec(
                provider,
                prompt,
                mode=mode,
                image_urls=urls,
                resolution=rng.choice(["480p", "720p", "1080p"]),
                duration=rng.choice(["4", "8", "12"]),
                audio=rng.random() < 0.3,
            )
        else:
            spec = JobSpec(
                provider,
                prompt,
                mode=mode,
                image_urls=urls,
                duration=rng.choice(["5", "10"]),
                audio=rng.random() < 0.3,
            )
        specs.append(spec)
    return specs


def sim_config(
    clock: ScaledClock,
    *,
    fault_rate: float,
    fault_after_accept: bool,
    seed: int,
    timeout_seconds: float,
    hostile_rate: float = 0.0,
) -> SimConfig:
    """`fault_rate` of the answers are today's faults (each kind alike), `hostile_rate`
    more are hostile ones (half absurd, a quarter dripped, a quarter huge)."""
    classic = [k for k in FAULT_KINDS if k not in HOSTILE_KINDS]
    kinds = dict.fromkeys(classic, fault_rate / len(classic))
    kinds.update(absurd=hostile_rate / 2, drip=hostile_rate / 4, huge=hostile_rate / 4)
    if fault_after_accept:
        # A 429 comes from the provider's rate limiter, before any work: the client treats
        # it as a certain refusal and resends. A limiter that charged first is not modelled.
        kinds["rate_limit"] = 0.0
    return SimConfig(
        generation_time=(60.0, 180.0),
        fault_kinds=kinds,
        failure_rate=0.15,
        seed=seed,
        fault_rate=min(1.0, sum(kinds.values())),
        fault_after_accept=fault_after_accept,
        slow_seconds=timeout_seconds / 4,  # slow, but within the client's read timeout
        timeout_seconds=timeout_seconds,  # longer than the client's read timeout
        drip_seconds=timeout_seconds * 5,  # every read in time, the whole past the deadline
        fault_retry_after=30,  # clock seconds
        nanophoto_rate_limit=100,
        rate_window=3600.0,
        clock=clock,
    )


async def _soak(
    db: Path,
    jobs: int,
    *,
    fault_rate: float,
    fault_after_accept: bool,
    scale: float,
    seed: int,
    read_timeout: float,
    arrival_gap: float,
    hostile_rate: float,
) -> SoakResult:
    rng = random.Random(seed)
    clock = ScaledClock(scale)
    errors = ErrorLog()
    root = logging.getLogger("seedance_tui")
    root.addHandler(errors)
    # The simulator answers a "timeout" fault this long after the client gave up.
    config = sim_config(
        clock,
        fault_rate=fault_rate,
        fault_after_accept=fault_after_accept,
        seed=seed,
        timeout_seconds=read_timeout * 2,
        hostile_rate=hostile_rate,
    )
    # A fifth of the hostile share: connections refused before anything is sent.
    refusing = RefusingTransport(hostile_rate / 5, random.Random(f"{seed}:refused"))
    started = time.monotonic()
    with SimulatorServer(config) as sim:
        env = {
            "NANOPHOTO_BASE_URL": sim.base_url,
            "SEEDANCE15PRO_BASE_URL": sim.base_url,
            "NANOPHOTO_API_KEY": NANO_KEY,
            "SEEDANCE15PRO_API_KEY": SEED_KEY,
        }
        settings = load_settings(db=db, env=env)
        # Our side's limits match the simulator's: 100/h for nanophoto, none documented
        # for seedance15pro.
        assert settings.providers[Provider.NANOPHOTO].requests_per_hour == 100
        store = Store.open(db)
        client = Client(
            {p: s.base_url for p, s in settings.providers.items()},
            {p: settings.key(p) for p in settings.providers},
            transport=refusing,
            timeout=httpx.Timeout(connect=2.0, read=read_timeout, write=2.0, pool=5.0),
            deadline=read_timeout * 3,
        )
        engine = Engine(
            settings, store, client=client, clock=clock, monotonic=clock, sleep=clock.sleep
        )
        engine.start()
        submissions: list[asyncio.Task[Any]] = []

        async def arrivals() -> None:
            for spec in job_specs(jobs, rng):
                submissions.append(asyncio.create_task(engine.submit(spec)))
                await clock.sleep(rng.expovariate(1.0 / arrival_gap))

        loop = asyncio.create_task(engine.run(max_wait=0.05))
        try:
            await arrivals()
            outcomes = await asyncio.gather(*submissions, return_exceptions=True)
            for outcome in outcomes:
                if isinstance(outcome, BaseException):
                    errors.records.append(f"submit raised {outcome!r}")
            while store.pending():
                if loop.done():
                    loop.result()
                await asyncio.sleep(0.1)
        finally:
            loop.cancel()
            await asyncio.gather(loop, return_exceptions=True)
            await engine.aclose()
        seconds = time.monotonic() - started
        sim_tasks = httpx.get(sim.base_url + "/_sim/tasks").json()["tasks"]
        ledger = httpx.get(sim.base_url + "/_sim/ledger").json()
    root.removeHandler(errors)

    ours = store.list(limit=None)
    summary = store.credits_summary(clock())
    store.close()
    ledger["faults"]["refused"] = refusing.refused
    return check(jobs, seconds, ours, summary, sim_tasks, ledger, errors.records)


def check(
    jobs: int,
    seconds: float,
    ours: list[Any],
    summary: dict[str, Any],
    sim_tasks: list[dict[str, Any]],
    ledger: dict[str, Any],
    errors: list[str],
) -> SoakResult:
    result = SoakResult(
        jobs=jobs,
        seconds=seconds,
        faults={k: v for k, v in ledger["faults"].items() if k != "media_reset"},
        requests={
            "total": ledger["totals"]["requests"],
            **{p: row["requests"] for p, row in ledger["providers"].items()},
        },
        sim_tasks=len(sim_tasks),
        statuses=dict(Counter(t.status.value for t in ours)),
        errors=list(errors),
    )
    by_task_id = {(t.provider.value, t.task_id): t for t in ours if t.task_id}
    by_prompt = {t.prompt: t for t in ours}
    if len(by_prompt) != len(ours):
        result.duplicated.append("two history rows share a prompt")
    sim_by_prompt: Counter[str] = Counter(t["request"]["prompt"] for t in sim_tasks)
    for prompt, count in sim_by_prompt.items():
        if count > 1:
            result.duplicated.append(f"{prompt!r} created {count} tasks")
    for sim_task in sim_tasks:
        mine = by_task_id.get((sim_task["provider"], sim_task["task_id"]))
        if mine is None:
            row = by_prompt.get(sim_task["request"]["prompt"])
            if row is not None and row.status is TaskStatus.ORPHANED:
                result.orphans_created_by_sim += 1
                provider = sim_task["provider"]
                result.orphan_credits_at_sim[provider] = (
                    result.orphan_credits_at_sim.get(provider, 0) + sim_task["net"]
                )
            else:
                result.lost.append(f"{sim_task['task_id']} ({sim_task['request']['prompt']})")
            continue
        if mine.status is TaskStatus.COMPLETED and mine.credits_charged is None:
            result.unreported += 1
            provider = sim_task["provider"]
            result.unreported_credits_at_sim[provider] = (
                result.unreported_credits_at_sim.get(provider, 0) + sim_task["net"]
            )
        expected = SIM_STATUS.get(sim_task["status"])
        if mine.status is not expected:
            result.state_mismatches.append(
                f"{mine.task_id}: ours {mine.status.value}, simulator {sim_task['status']}"
            )
    for task in ours:
        if task.status.is_pending:
            result.not_terminal.append(f"{task.id} {task.status.value}")
        if task.status is TaskStatus.ORPHANED:
            result.orphans += 1
    for provider in ("nanophoto", "seedance15pro"):
        mine = summary["providers"].get(provider, {}).get("all", 0)
        theirs = ledger["providers"][provider]["net"]
        result.credits[provider] = (mine, theirs)
        apart = result.orphan_credits_at_sim.get(provider, 0)
        apart += result.unreported_credits_at_sim.get(provider, 0)
        if mine + apart != theirs:
            result.credit_mismatches[provider] = (mine, theirs)
    result.over_limit = ledger["totals"]["rate_limited"]
    return result


def run_soak(
    jobs: int = 200,
    *,
    fault_rate: float = 0.2,
    hostile_rate: float = 0.1,
    fault_after_accept: bool = False,
    scale: float = 120.0,
    seed: int = 5,
    read_timeout: float = 0.2,
    arrival_gap: float = 15.0,
    db: Path | None = None,
) -> SoakResult:
    with tempfile.TemporaryDirectory(prefix="seedance-soak-") as tmp:
        # No config or keys file of the user's is read: all state lives in `tmp`.
        os.environ.setdefault("SEEDANCE_TUI_HOME", tmp)
        return asyncio.run(
            _soak(
                db or Path(tmp) / "history.db",
                jobs,
                fault_rate=fault_rate,
                fault_after_accept=fault_after_accept,
                scale=scale,
                seed=seed,
                read_timeout=read_timeout,
                arrival_gap=arrival_gap,
                hostile_rate=hostile_rate,
            )
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--fault-rate", type=float, default=0.2)
    parser.add_argument(
        "--hostile-rate", type=float, default=0.1, help="share of hostile answers on top"
    )
    parser.add_argument("--fault-after-accept", action="store_true")
    parser.add_argument("--scale", type=float, default=120.0, help="clock seconds per second")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = run_soak(
        args.jobs,
        fault_rate=args.fault_rate,
        hostile_rate=args.hostile_rate,
        fault_after_accept=args.fault_after_accept,
        scale=args.scale,
        seed=args.seed,
    )
    print(
        f"soak: {args.jobs} jobs, fault rate {args.fault_rate:.0%} + hostile "
        f"{args.hostile_rate:.0%}, "
        f"fault_after_accept={args.fault_after_accept}, time x{args.scale:g}"
    )
    print(result.report())
    if args.json:
        print(json.dumps(result.__dict__, default=str, indent=2))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
