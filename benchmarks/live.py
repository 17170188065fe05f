"""The dashboard at rest: CPU of the dashboard's process while it watches pending work.

The dashboard (`python -m seedance_tui`, no command) runs in a pseudo-terminal of
160x48 against the simulator on loopback, like a user's session; its CPU time is read
from `/proc/PID/stat` (user + system, every thread) at the start and the end of a
measured window, and divided by the window's wall time: the share of one core.

Three scenarios, each in a fresh home folder with its own history and simulator:
  * idle     — 1,000 finished tasks, nothing pending;
  * pending  — the same plus `--pending` (200) tasks submitted just before the
               dashboard starts, whose renders take hours (and the history's took as
               long, so the scheduler expects that): the engine checks them at the
               providers' default budgets and nothing changes;
  * answers  — the same 200 pending tasks, but their renders end at `--rate` (3) a
               second, evenly spaced in a shuffled order (the history's renders took as
               long, and the budgets let the scheduler see each end soon after it
               happens). The window opens once the dashboard has caught up with the
               ends (at most CAUGHT_UP seconds of them not seen yet: the first sweep
               over 200 tasks sees a backlog at once, which would count answers twice
               as fast as they arrive) and lies inside the stretch where answers
               arrive. Both the renders that ended in it and the answers the dashboard
               took in, per second, are printed beside the CPU.
Each scenario runs the dashboard of this checkout ("ours") and, side by side in the
same run, the dashboard of `--baseline` (a git revision, extracted with `git archive`;
default: this branch's base, before the dashboard got its Screen and rested) — today's
behaviour — and `seedance-tui watch` ("watch": the same engine polling the same tasks
with no dashboard, its output to a pipe), the floor under any dashboard's CPU. The
machine is shared and noisy, so compare the ratios of a run, not figures of two runs.

In `answers` a fourth run, "floor", is the lower bound of any engine: a bare asyncio +
httpx loop (one kept-alive client) that sends as many status requests a second as ours
did, spread evenly over the same pending tasks of the same simulator, and parses each
JSON answer — no store, no scheduler, no events. Each run's CPU per request (ms) is
printed, and ours/floor.

Besides CPU it prints the bytes the dashboard wrote to its terminal per second (what a
slow SSH link carries) and the status requests the simulator served per second.

The harness waits for states (the dashboard's ready file, watch's first line, the
answers starting), not for guessed durations; the measured windows and the warm-up
after the ready file are the benchmark's design. Every process it starts is killed when
it ends, however it ends.

Run: python benchmarks/live.py [--seconds 30] [--pending 200] [--rate 3]
     [--baseline REV] [--no-baseline] [--no-floor] [--scenarios idle,pending,answers]
(`--floor-client` is the floor's own process, started by the harness.)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import importlib.util
import io
import json
import os
import pty
import signal
import struct
import subprocess
import sys
import tarfile
import tempfile
import termios
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from seedance_tui.models import JobSpec, Provider, TaskStatus  # noqa: E402
from seedance_tui.simulator import SimConfig, SimulatorServer  # noqa: E402
from seedance_tui.store import Filter, Store  # noqa: E402

NANO_KEY = "sk-live-bench-nano-3c1d"
SEED_KEY = "sk-live-bench-seed-8e2f"
COLUMNS, ROWS = 160, 48
FINISHED = 1_000  # finished tasks in every scenario's history
PENDING_RENDERS = (36_000.0, 72_000.0)  # seconds a render takes while nothing changes
WARM_UP = 5.0  # seconds after the ready file before a window opens (engine, credits, frames)
ANSWERS_START = 25.0  # seconds after the submissions before the first render ends
CAUGHT_UP = 10.0  # seconds of ends not seen yet, at most, when the answers' window opens
CATCH_UP_MAX = 30.0  # seconds after the first answers to wait for that, at most
DEADLINE = 120.0  # for any state the harness waits for
POLL_INTERVAL = 0.05  # between two looks at a state
BASELINE = "42a2b4d"  # main before the dashboard got its Screen and rested (#12, #13)

# The providers' default budgets (nanophoto 100/h, seedance15pro 600/h) for `pending`;
# for `answers`, budgets and a prior that let the scheduler see each end soon after it
# happens (the point is the dashboard's cost per answer, not the scheduler's thrift).
CONFIG_PENDING = "auto_download = false\n"
CONFIG_ANSWERS = """auto_download = false

[polling]
prior = [{lo}, {hi}]

[providers.nanophoto]
requests_per_hour = 100000

[providers.seedance15pro]
requests_per_hour = 100000
"""


def load_history_benchmark():
    """benchmarks/history.py, whose synthetic histories this one reuses."""
    path = Path(__file__).resolve().parent / "history.py"
    spec = importlib.util.spec_from_file_location("history_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class HarnessError(Exception):
    """A state the harness waited for did not come within its deadline."""


def wait_for(predicate, what: str, seconds: float = DEADLINE) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise HarnessError(f"not within {seconds:g} s: {what}")
        time.sleep(POLL_INTERVAL)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


class Dashboard:
    """`python -m seedance_tui` in a pseudo-terminal; its output is read and counted."""

    def __init__(self, source: Path, env: dict[str, str], ready_file: Path) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
        ready_file.unlink(missing_ok=True)
        self.ready_file = ready_file
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "seedance_tui"],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env={
                **env,
                "TERM": "xterm-256color",
                "PYTHONPATH": str(source),
                "SEEDANCE_TUI_READY_FILE": str(ready_file),
            },  # fmt: skip
            # `python -m` puts the working folder first on sys.path: run in the source tree
            # measured, or a baseline run would import this checkout's package.
            cwd=source,
            start_new_session=True,
        )
        os.close(slave)
        self.master = master
        self.written = 0  # bytes the dashboard wrote to its terminal
        self.tail = bytearray()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            self.written += len(data)
            self.tail = (self.tail + data)[-2000:]

    def check_running(self) -> None:
        if self.proc.poll() is not None:
            tail = bytes(self.tail[-400:]).decode("utf-8", "replace")
            raise HarnessError(f"the dashboard exited ({self.proc.returncode}): {tail!r}")

    def wait_ready(self) -> None:
        def ready() -> bool:
            self.check_running()
            with contextlib.suppress(OSError):
                return self.ready_file.read_text() == f"{self.proc.pid}\n"
            return False

        wait_for(ready, "the dashboard wrote its ready file")

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        with contextlib.suppress(OSError):
            os.close(self.master)


class Watcher:
    """`seedance-tui watch`: the same engine, no dashboard — the floor under the
    dashboard's CPU (what polling the pending tasks costs by itself). Its output goes to
    a pipe (a line per change, as in a script), read and counted."""

    def __init__(self, env: dict[str, str]) -> None:
        self._start([sys.executable, "-m", "seedance_tui", "watch"], env)

    def _start(self, argv: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**env, "PYTHONPATH": str(ROOT)},
            cwd=ROOT,
            start_new_session=True,
        )
        self.written = 0
        self.tail = bytearray()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        while data := self.proc.stdout.read1(65536):
            self.written += len(data)
            self.tail = (self.tail + data)[-2000:]

    def check_running(self) -> None:
        if self.proc.poll() is not None:
            tail = bytes(self.tail[-400:]).decode("utf-8", "replace")
            raise HarnessError(f"watch exited ({self.proc.returncode}): {tail!r}")

    def wait_ready(self) -> None:
        def ready() -> bool:
            self.check_running()
            return b"watching" in self.tail

        wait_for(ready, "watch said what it watches")

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


class FloorClient(Watcher):
    """The floor under any engine (`floor_client`, in a process of its own): `rate`
    status requests a second over `tasks` (provider, provider's task id)."""

    def __init__(self, env: dict[str, str], base_url: str, rate: float,
                 tasks: list[tuple[str, str]]) -> None:  # fmt: skip
        spec = json.dumps({"base_url": base_url, "rate": rate, "tasks": tasks})
        self._start([sys.executable, str(Path(__file__).resolve()), "--floor-client", spec], env)


def floor_client(spec: str) -> None:
    """A bare asyncio + httpx loop: one client kept alive, requests sent at an even pace
    (each in a task of its own, as an engine would), each answer's JSON parsed. Like
    ours, it spares httpcore the search for the missing sniffio at every request."""
    from seedance_tui.client.tls import skip_missing_sniffio

    skip_missing_sniffio()
    args = json.loads(spec)
    keys = {"nanophoto": NANO_KEY, "seedance15pro": SEED_KEY}

    async def one(client: httpx.AsyncClient, provider: str, task_id: str) -> None:
        headers = {"Authorization": f"Bearer {keys[provider]}"}
        if provider == "nanophoto":
            response = await client.post("/api/seedance-1-5-pro/check-status",
                                         json={"taskId": task_id}, headers=headers)  # fmt: skip
        else:
            response = await client.get("/api/status", params={"task_id": task_id},
                                        headers=headers)  # fmt: skip
        response.json()

    async def run() -> None:
        loop = asyncio.get_running_loop()
        interval = 1.0 / args["rate"]
        tasks = args["tasks"]
        in_flight: set[asyncio.Task] = set()
        async with httpx.AsyncClient(base_url=args["base_url"], timeout=30.0) as client:
            print("watching", flush=True)
            next_at = loop.time()
            for i in range(10**9):
                provider, task_id = tasks[i % len(tasks)]
                request = asyncio.create_task(one(client, provider, task_id))
                in_flight.add(request)
                request.add_done_callback(in_flight.discard)
                next_at += interval
                await asyncio.sleep(max(0.0, next_at - loop.time()))

    asyncio.run(run())


@dataclass
class Window:
    cpu: float  # share of one core, percent
    out_kb_s: float  # terminal output
    requests_s: float  # status + generate requests the simulator served
    answers_s: float  # tasks the dashboard saw end in the window, per second
    ended_s: float  # renders the simulator ended in the window, per second
    seconds: float


def measure(
    dashboard: Dashboard | Watcher, sim: SimulatorServer, db: Path, seconds: float
) -> Window:
    """CPU, output and requests of the dashboard over the next `seconds`."""
    pid = dashboard.proc.pid

    def sim_requests() -> int:
        return httpx.get(sim.base_url + "/_sim/ledger").json()["totals"]["requests"]

    dashboard.check_running()
    ended_before = finished_count(db)
    renders_before = renders_ended(sim)
    requests_before = sim_requests()
    written_before, cpu_before = dashboard.written, cpu_seconds(pid)
    started = time.monotonic()
    time.sleep(seconds)  # the measured window itself
    cpu_after, written_after = cpu_seconds(pid), dashboard.written
    wall = time.monotonic() - started
    dashboard.check_running()
    return Window(
        cpu=100 * (cpu_after - cpu_before) / wall,
        out_kb_s=(written_after - written_before) / wall / 1000,
        requests_s=(sim_requests() - requests_before) / wall,
        answers_s=(finished_count(db) - ended_before) / wall,
        ended_s=(renders_ended(sim) - renders_before) / wall,
        seconds=wall,
    )


def renders_ended(sim: SimulatorServer) -> int:
    """Renders the simulator has ended so far (seen by a client or not)."""
    state = sim.state
    with state.lock:
        now = state.now()
        return sum(1 for task in state.tasks.values() if task.due_at <= now)


def space_ends(sim: SimulatorServer, after: float, rate: float, seed: int = 7) -> None:
    """Make the simulator's renders end `rate` a second, evenly, from `after` seconds
    past the first submission on, in a shuffled order of the tasks (each reports the
    time it took). Random draws would bunch: the window would see more or fewer than
    `rate` answers a second by chance."""
    import random

    state = sim.state
    with state.lock:
        tasks = sorted(state.tasks.values(), key=lambda task: task.created_at)
        start = tasks[0].created_at + after
        random.Random(seed).shuffle(tasks)
        for slot, task in enumerate(tasks):
            task.due_at = start + (slot + 0.5) / rate
            task.gen_time = task.due_at - task.created_at


def finished_count(db: Path) -> int:
    store = Store.open_reader(db)
    try:
        return store.count(Filter(status=(TaskStatus.COMPLETED.value, TaskStatus.FAILED.value)))
    finally:
        store.close()


def provider_task_ids(db: Path) -> list[tuple[str, str]]:
    """(provider, the provider's task id) of every pending task."""
    store = Store.open_reader(db)
    try:
        return [(t.provider.value, t.task_id) for t in store.pending() if t.task_id]
    finally:
        store.close()


def extract(revision: str, into: Path) -> Path:
    """The package and styles of a git revision, as a source tree to run."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", revision, "seedance_tui", "styles"],
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def build_history(db: Path, render_seconds: tuple[float, float] | None) -> None:
    """FINISHED finished tasks; with `render_seconds`, their renders took that long (drawn
    uniformly), so the scheduler expects the simulator's renders to take what they take
    rather than the synthetic history's 38 s."""
    import dataclasses
    import random

    history = load_history_benchmark()
    rng = random.Random(5)
    tasks = history.synthetic_tasks(FINISHED, now=time.time() - 3600)
    if render_seconds is not None:
        tasks = (
            dataclasses.replace(task, generation_time=rng.uniform(*render_seconds))
            if task.generation_time is not None
            else task
            for task in tasks
        )
    store = Store.open(db)
    try:
        store.bulk_import(tasks)
    finally:
        store.close()


def submit_pending(db: Path, env: dict[str, str], count: int) -> float:
    """`count` jobs sent through the engine (half to each provider); returns when the
    first was sent (the simulator's renders are timed from their submission)."""
    import asyncio

    from seedance_tui.config import load_settings
    from seedance_tui.session import Session

    settings = load_settings(db=db, env=env)

    async def send() -> float:
        async with Session(settings, with_engine=True) as session:
            first = time.monotonic()
            for i in range(count):
                provider = Provider.NANOPHOTO if i % 2 else Provider.SEEDANCE15PRO
                spec = JobSpec(provider=provider, prompt=f"live benchmark job {i:03d}")
                task = await session.engine.submit(spec)
                if task.status is not TaskStatus.PROCESSING:
                    raise HarnessError(f"job {i} was not accepted: {task.status} {task.error}")
            return first

    return asyncio.run(send())


def run_scenario(
    scenario: str, source: Path | str | None, args: argparse.Namespace, floor_rate: float = 0.0
) -> Window:
    """One window of `scenario`: the dashboard of `source`, (None) `watch`, or
    ("floor") the floor client at `floor_rate` requests a second."""
    lo = ANSWERS_START
    hi = lo + args.pending / args.rate
    if scenario == "answers":
        sim_config = SimConfig(generation_time=(lo, hi), failure_rate=0.0, seed=3,
                               nanophoto_rate_limit=None)  # fmt: skip
        config = CONFIG_ANSWERS.format(lo=lo, hi=hi)
    else:
        sim_config = SimConfig(generation_time=PENDING_RENDERS, seed=3)
        config = CONFIG_PENDING
    with tempfile.TemporaryDirectory(prefix="seedance-live-") as tmp:
        home = Path(tmp)
        (home / "config").mkdir()
        (home / "config" / "config.toml").write_text(config)
        (home / "data").mkdir()
        db = home / "data" / "history.db"
        previous_home = os.environ.get("SEEDANCE_TUI_HOME")
        os.environ["SEEDANCE_TUI_HOME"] = str(home)  # this process's settings, too
        try:
            with SimulatorServer(sim_config) as sim:
                env = {
                    **os.environ,
                    "SEEDANCE_TUI_HOME": str(home),
                    "SEEDANCE_TUI_DB": str(db),
                    "NANOPHOTO_BASE_URL": sim.base_url,
                    "SEEDANCE15PRO_BASE_URL": sim.base_url,
                    "NANOPHOTO_API_KEY": NANO_KEY,
                    "SEEDANCE15PRO_API_KEY": SEED_KEY,
                }
                env.pop("NO_COLOR", None)
                # The history's renders took what the simulator's take: the scheduler
                # expects the pending renders to take that long (hours while nothing
                # changes; the answers' spread while they arrive).
                build_history(db, (lo, hi) if scenario == "answers" else PENDING_RENDERS)
                sent = submit_pending(db, env, args.pending) if scenario != "idle" else None
                if scenario == "answers":
                    space_ends(sim, lo, args.rate)
                if source == "floor":
                    dashboard: Dashboard | Watcher = FloorClient(
                        env, sim.base_url, floor_rate, provider_task_ids(db)
                    )
                elif source is None:
                    if sent is None:
                        raise HarnessError("watch ends at once with nothing pending")
                    dashboard = Watcher(env)
                else:
                    dashboard = Dashboard(source, env, home / "ready")
                try:
                    dashboard.wait_ready()
                    time.sleep(WARM_UP)  # the warm-up: engine, first polls, credits scan
                    if scenario == "answers" and source == "floor":
                        assert sent is not None
                        # Nothing is stored: measure while the renders end, as the others.
                        wait_for(lambda: time.monotonic() > sent + lo + 3,
                                 "the renders ending", seconds=DEADLINE + lo)  # fmt: skip
                        return measure(dashboard, sim, db, min(args.seconds, hi - lo - 6))
                    if scenario == "answers":
                        assert sent is not None
                        # The history's own finished tasks count too: wait for new ones.
                        first_answers = FINISHED + args.rate * 3
                        wait_for(lambda: finished_count(db) >= first_answers,
                                 "the first answers", seconds=DEADLINE + lo)  # fmt: skip
                        # Then for the dashboard to catch up with the ends (the first
                        # sweep over the tasks finds a backlog), for CATCH_UP_MAX at most.
                        caught_up = time.monotonic() + CATCH_UP_MAX
                        wait_for(lambda: time.monotonic() > caught_up
                                 or renders_ended(sim) - (finished_count(db) - FINISHED)
                                 <= args.rate * CAUGHT_UP,
                                 "the dashboard catching up", seconds=CATCH_UP_MAX + 5)  # fmt: skip
                        left = sent + hi - 3 - time.monotonic()
                        if left < 5:
                            raise HarnessError("the dashboard saw the answers too late to measure")
                        return measure(dashboard, sim, db, min(args.seconds, left))
                    return measure(dashboard, sim, db, args.seconds)
                finally:
                    dashboard.stop()
        finally:
            if previous_home is None:
                os.environ.pop("SEEDANCE_TUI_HOME", None)
            else:
                os.environ["SEEDANCE_TUI_HOME"] = previous_home


def ratio(ours: float, theirs: float) -> str:
    return f"{theirs / ours:.1f}x" if ours > 0 else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="length of a window")
    parser.add_argument("--pending", type=int, default=200)
    parser.add_argument("--rate", type=float, default=3.0, help="answers per second")
    parser.add_argument("--baseline", default=BASELINE, help="git revision to compare with")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--no-floor", action="store_true", help="skip the `watch` runs")
    parser.add_argument("--scenarios", default="idle,pending,answers")
    parser.add_argument("--floor-client", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor_client:
        floor_client(args.floor_client)
        return
    scenarios = args.scenarios.split(",")
    targets = {"idle": None, "pending": 3.0, "answers": 10.0}
    print(f"dashboard {COLUMNS}x{ROWS} in a pty; {FINISHED:,} finished tasks; "
          f"{args.pending} pending; windows of {args.seconds:g} s; CPU = share of one core")  # fmt: skip
    header = (f"{'scenario':<9} {'run':<9} {'CPU %':>6} {'out KB/s':>9} {'req/s':>6} "
              f"{'ms/req':>7} {'answers/s':>10} {'ended/s':>8} {'window':>7}")  # fmt: skip
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory(prefix="seedance-live-src-") as src:
        baseline = None if args.no_baseline else extract(args.baseline, Path(src))
        for scenario in scenarios:
            runs: list[tuple[str, Path | str | None]] = [("ours", ROOT)]
            if baseline:
                runs.append((args.baseline, baseline))
            if scenario != "idle" and not args.no_floor:
                runs.append(("watch", None))  # the engine alone: the floor of a dashboard
            if scenario == "answers" and not args.no_floor:
                runs.append(("floor", "floor"))  # bare httpx: the floor of an engine
            results = {}
            for name, source in runs:
                window = run_scenario(scenario, source, args,
                                      floor_rate=results["ours"].requests_s if results else 0.0)  # fmt: skip
                results[name] = window
                per_request = (f"{10 * window.cpu / window.requests_s:>7.2f}"
                               if window.requests_s > 0 else f"{'-':>7}")  # fmt: skip
                print(f"{scenario:<9} {name:<9} {window.cpu:>6.1f} {window.out_kb_s:>9.1f} "
                      f"{window.requests_s:>6.1f} {per_request} {window.answers_s:>10.1f} "
                      f"{window.ended_s:>8.1f} {window.seconds:>6.1f}s", flush=True)  # fmt: skip
            ours = results["ours"]
            line = f"{scenario:<9} "
            if baseline:
                line += f"baseline/ours CPU {ratio(ours.cpu, results[args.baseline].cpu)}; "
            if "watch" in results:
                own = ours.cpu - results["watch"].cpu
                line += f"the dashboard's own (ours - watch) {own:.1f} %; "
            if "floor" in results:
                line += (f"ours/floor {ours.cpu / max(results['floor'].cpu, 0.01):.1f}x, "
                         f"watch/floor {results['watch'].cpu / max(results['floor'].cpu, 0.01):.1f}x; ")  # fmt: skip
            target = targets.get(scenario)
            if target is not None:
                met = "met" if ours.cpu <= target else "MISSED"
                line += f"target <= {target:g} %: {met} ({ours.cpu:.1f} %)"
            print(line, flush=True)


if __name__ == "__main__":
    main()
