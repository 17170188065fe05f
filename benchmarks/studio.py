"""Studio mode, two machines on one PostgreSQL history and one API key.

Two processes ("machines" A and B), each with its own home and config naming the same
database, submit JOBS jobs each to the simulator (whose key allows LIMIT requests per
WINDOW seconds, as our config says too) and keep watching — the engine `watch` runs —
until nothing is pending. Once A has submitted all its jobs and one has finished, A is
killed (SIGKILL): B finishes every task left, A's included. Printed:

  * requests the simulator refused with a 429 (the limiter: 0 wanted), and its total;
  * the closest two status requests of one task came to each other at the server
    (the engine spaces them 4 s: no two pollers at once), and tasks polled closer;
  * tasks in the history by status, and how many each machine's `list` shows;
  * how long a task written on one machine takes to reach the other's change feed.

    python benchmarks/studio.py                 # 20 jobs each, a 30-request window
    python benchmarks/studio.py --jobs 5

It starts its own throwaway PostgreSQL server (tests/pg_server.py) and simulator, on
127.0.0.1 only, and stops both however it ends. `machine` is the per-machine entry.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

KEY = "sk-studio-shared-key-0000"
POLL_SPACING = 4.0  # the engine's MIN_POLL_SPACING: no two polls of a task closer


def machine_home(root: Path, name: str, url: str, sim_url: str, limit: int, window: float) -> Path:
    """A machine's own home: config naming the shared database and the key's limit."""
    home = root / f"machine-{name}"
    (home / "config").mkdir(parents=True, exist_ok=True)
    (home / "config" / "config.toml").write_text(
        f'db = "{url}"\n'
        "auto_download = false\n\n"
        "[polling]\nmin_interval = 4.0\ntarget_latency = 1.0\nmax_interval = 8.0\n"
        "prior = [1.0, 4.0]\n\n"
        f'[providers.nanophoto]\nbase_url = "{sim_url}"\nrequests_per_hour = {limit}\n'
        f"rate_window = {window}\n"
    )
    return home


def machine_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NANOPHOTO_", "SEEDANCE"))}
    env.update(
        SEEDANCE_TUI_HOME=str(home), NANOPHOTO_API_KEY=KEY, SEEDANCE_TUI_KEYRING="0",
        PYTHONPATH=str(ROOT),
    )  # fmt: skip
    if mark := os.environ.get("SEEDANCE_TUI_TEST_MARK"):
        env["SEEDANCE_TUI_TEST_MARK"] = mark
    return env


def machine_argv(name: str, jobs: int) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "machine", name, "--jobs", str(jobs)]


async def machine(name: str, jobs: int) -> int:
    """Submit `jobs` jobs (polling meanwhile), then watch until nothing is pending."""
    from seedance_tui.config import load_settings
    from seedance_tui.models import JobSpec, Provider
    from seedance_tui.session import Session

    async with Session(load_settings(), with_engine=True) as session:
        engine = session.engine
        assert engine is not None
        engine.start()
        specs = [JobSpec(Provider.NANOPHOTO, f"{name} shot {i}", duration="4") for i in range(jobs)]
        # The submissions first: each counts as pending from its first step on, so the
        # watch loop started after them runs until they and every task are done.
        submissions = [asyncio.create_task(engine.submit(spec)) for spec in specs]
        watching = asyncio.create_task(engine.run(until_idle=True))
        await asyncio.gather(*submissions)
        print("submitted", flush=True)
        await watching
    print("idle", flush=True)
    return 0


def run_studio(
    url: str,
    sim_url: str,
    root: Path,
    *,
    jobs: int,
    spawn: Callable[..., subprocess.Popen],
    wait_for: Callable[[Callable[[], object], str, float], None],
    limit: int = 30,
    window: float = 10.0,
    deadline: float = 600.0,
) -> dict[str, Any]:
    """Both machines, A killed mid-flight; the counts. `spawn` starts a process (the
    caller stops it however things end), `wait_for(condition, what, seconds)` waits."""
    import httpx

    from seedance_tui.store.locations import open_store

    homes = {name: machine_home(root, name, url, sim_url, limit, window) for name in "AB"}
    started, started_wall = time.monotonic(), time.time()
    procs = {
        name: spawn(machine_argv(name, jobs), env=machine_env(home),
                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for name, home in homes.items()
    }  # fmt: skip
    store = open_store(url)
    try:

        def a_is_mid_flight() -> bool:
            a_tasks = [t for t in store.list(limit=None) if t.prompt.startswith("A shot")]
            submitted = [t for t in a_tasks if t.task_id]
            done = [t for t in submitted if t.status.is_terminal]
            return len(submitted) == jobs and 0 < len(done) < jobs

        wait_for(a_is_mid_flight, "machine A has submitted everything, some still rendering",
                 deadline)  # fmt: skip
        killed_wall = time.time()
        procs["A"].send_signal(signal.SIGKILL)
        procs["A"].wait()
        left_by_a = sum(
            1 for t in store.list(limit=None)
            if t.prompt.startswith("A shot") and not t.status.is_terminal
        )  # fmt: skip

        wait_for(lambda: procs["B"].poll() is not None, "machine B finishes every task", deadline)
        elapsed = time.monotonic() - started
        b_code = procs["B"].returncode
        b_err = procs["B"].stderr.read().decode(errors="replace") if procs["B"].stderr else ""
        tasks = store.list(limit=None)
    finally:
        store.close()
    by_status: dict[str, int] = {}
    for task in tasks:
        by_status[task.status.value] = by_status.get(task.status.value, 0) + 1
    ledger = httpx.get(sim_url + "/_sim/ledger", timeout=10).json()
    sim_tasks = httpx.get(sim_url + "/_sim/tasks", timeout=10).json()["tasks"]
    gaps = [b - a for t in sim_tasks for a, b in zip(t["checks"], t["checks"][1:], strict=False)]
    listed = {}
    for name, home in homes.items():
        done = subprocess.run(
            [sys.executable, "-m", "seedance_tui", "list", "--limit", "0", "--json"],
            env=machine_env(home), capture_output=True, timeout=120,
        )  # fmt: skip
        listed[name] = len(json.loads(done.stdout or b"[]"))
    close = [
        (t["task_id"], [round(at - started_wall, 3) for at in t["checks"]]) for t in sim_tasks
        if any(b - a < POLL_SPACING for a, b in zip(t["checks"], t["checks"][1:], strict=False))
    ]  # fmt: skip
    return {
        "close_checks": close,
        "killed_at": round(killed_wall - started_wall, 3),
        "jobs": 2 * jobs,
        "seconds": round(elapsed, 1),
        "b_exit": b_code,
        "b_stderr": b_err[-2000:],
        "rate_limited": ledger["totals"]["rate_limited"],
        "requests": ledger["totals"]["requests"],
        "status_requests": sum(len(t["checks"]) for t in sim_tasks),
        "closest_polls": round(min(gaps), 3) if gaps else None,
        "polled_closer": sum(
            1
            for t in sim_tasks
            if any(b - a < POLL_SPACING for a, b in zip(t["checks"], t["checks"][1:], strict=False))
        ),  # fmt: skip
        "left_by_a": left_by_a,
        "by_status": by_status,
        "listed": listed,
    }


def live_latency(url: str, samples: int = 30) -> list[float]:
    """Seconds from a write on one handle (machine A) to the change feed of another
    (machine B) naming the task: what a dashboard on B waits to show it."""
    import queue

    from seedance_tui.models import JobSpec, Provider
    from seedance_tui.store.postgres import PgStore

    a = PgStore.open(url, owner="machine-a.invalid:1")
    b = PgStore.open(url, owner="machine-b.invalid:2")
    heard: queue.Queue[tuple[str, float]] = queue.Queue()
    feed = b.changes(lambda task: heard.put((task, time.perf_counter())))
    try:
        if not feed.listening.wait(30):
            raise SystemExit("the change feed never started listening")
        latencies = []
        for i in range(samples):
            started = time.perf_counter()
            task = a.create_intent(JobSpec(Provider.NANOPHOTO, f"live {i}"), estimate=4,
                                   key_fingerprint="k", now=time.time())  # fmt: skip
            while True:
                seen, at = heard.get(timeout=30)
                if seen == task.id:
                    latencies.append(at - started)
                    break
        return latencies
    finally:
        feed.close()
        a.close()
        b.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    m = sub.add_parser("machine")
    m.add_argument("name")
    m.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=20, help="jobs per machine (default 20)")
    parser.add_argument("--limit", type=int, default=30)
    parser.add_argument("--window", type=float, default=10.0)
    args = parser.parse_args()
    if args.command == "machine":
        return asyncio.run(machine(args.name, args.jobs))

    from pg_server import PgServer

    from seedance_tui.simulator import SimConfig, SimulatorServer

    started: list[subprocess.Popen] = []

    def spawn(argv: list[str], **kwargs: Any) -> subprocess.Popen:
        process = subprocess.Popen(argv, start_new_session=True, **kwargs)
        started.append(process)
        return process

    def wait_for(condition: Callable[[], object], what: str, seconds: float) -> None:
        limit = time.monotonic() + seconds
        while not condition():
            if time.monotonic() > limit:
                raise SystemExit(f"not within {seconds:g} s: {what}")
            time.sleep(0.2)

    sim_config = SimConfig(
        generation_time=(3.0, 12.0), failure_rate=0.0, seed=3,
        nanophoto_rate_limit=args.limit, rate_window=args.window,
    )  # fmt: skip
    with (
        PgServer.start() as server,
        SimulatorServer(sim_config) as sim,
        tempfile.TemporaryDirectory() as root,
    ):
        try:
            counts = run_studio(
                server.create_database("studio"), sim.base_url, Path(root), jobs=args.jobs,
                spawn=spawn, wait_for=wait_for, limit=args.limit, window=args.window,
            )  # fmt: skip
            latency = live_latency(server.create_database("live"))
        finally:
            for process in started:
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
    print(f"two machines, one key ({args.limit} requests per {args.window:g} s), "
          f"{counts['jobs']} jobs, A killed mid-flight\n")  # fmt: skip
    rows = [
        ("requests refused by the limiter (429)", counts["rate_limited"]),
        ("requests the simulator answered", counts["requests"]),
        ("  of which status polls", counts["status_requests"]),
        ("closest two polls of one task (s)", counts["closest_polls"]),
        (f"tasks polled closer than {POLL_SPACING:g} s", counts["polled_closer"]),
        ("A's tasks left when A was killed", counts["left_by_a"]),
        ("tasks by status at the end", counts["by_status"]),
        ("machine A's `list` shows", counts["listed"]["A"]),
        ("machine B's `list` shows", counts["listed"]["B"]),
        ("wall time (s)", counts["seconds"]),
        ("lower bound: (requests - limit) / limit x window",
         round(max(0, counts["requests"] - args.limit) / args.limit * args.window, 1)),
    ]  # fmt: skip
    for label, value in rows:
        print(f"  {label:<44} {value}")
    import statistics

    print("\nanother machine's task on this one's dashboard (write -> change feed), "
          f"{len(latency)} writes:")  # fmt: skip
    print(f"  median {statistics.median(latency) * 1000:.1f} ms, max {max(latency) * 1000:.1f} ms;"
          " without the feed, the engine's 20 s resync: 10 s on average, 20 s at worst")  # fmt: skip
    return 0 if counts["b_exit"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
