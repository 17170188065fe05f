"""Outage: `watch` with its server gone for a minute, then back (issue #10, item 5).

Starts the simulator on a fixed loopback port, submits a few jobs (renders long enough
to outlast the outage), starts `seedance-tui watch` in a process of its own, waits until
it is polling, stops the simulator for `--outage` seconds, reads the watch process's CPU
time from /proc before and after, restarts the simulator on the same port (same state:
the renders went on meanwhile), and waits for watch to finish by itself.

Printed: the CPU time watch used over the outage, the connection attempts it made then
(the history's ledger: requests recorded as not sent) beside what a per-task poll loop
at the configured spacing would make, how long after the server's return watch reached
it again, and how watch ended.

Run: python benchmarks/outage.py [--outage 60] [--jobs 5]
"""

from __future__ import annotations

import argparse
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from seedance_tui.models import from_iso  # noqa: E402
from seedance_tui.simulator import SimConfig, SimulatorServer  # noqa: E402

NANO_KEY = "sk-outage-nano-5d2e"
SEED_KEY = "sk-outage-seed-8a1f"
POLL_SPACING = 5.0  # the config's target latency: how often a naive loop would try each task
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/PID/stat, fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def requests(db: Path) -> list[tuple[float, int, int | None]]:
    """(time, sent, http status) of every request in the history's ledger."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT at, sent, http_status FROM requests ORDER BY id").fetchall()
    return [(from_iso(at) or 0.0, sent, status) for at, sent, status in rows]


def wait(condition, what: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"outage benchmark: {what} did not happen within {seconds:g} s")
        time.sleep(0.2)


def run(outage: float, jobs: int, render: tuple[float, float]) -> int:
    with tempfile.TemporaryDirectory(prefix="seedance-outage-") as tmp:
        home = Path(tmp)
        (home / "config").mkdir()
        (home / "config" / "config.toml").write_text(
            f"[polling]\nmin_interval = 2\ntarget_latency = {POLL_SPACING:g}\n"
            "max_interval = 30\nprior = [5, 20]\n"
        )
        db = home / "history.db"
        port = free_port()
        config = SimConfig(generation_time=render, failure_rate=0.0, seed=3)
        sim = SimulatorServer(config, port=port)
        sim.start()
        env = {
            **os.environ,
            "SEEDANCE_TUI_HOME": str(home),
            "SEEDANCE_TUI_DB": str(db),
            "NANOPHOTO_BASE_URL": sim.base_url,
            "SEEDANCE15PRO_BASE_URL": sim.base_url,
            "NANOPHOTO_API_KEY": NANO_KEY,
            "SEEDANCE15PRO_API_KEY": SEED_KEY,
            "SEEDANCE_TUI_AUTO_DOWNLOAD": "0",
            "SEEDANCE_TUI_KEYRING": "0",
            "PYTHONUNBUFFERED": "1",
        }
        command = [sys.executable, "-m", "seedance_tui"]
        for i in range(jobs):
            provider = "nanophoto" if i % 2 == 0 else "seedance15pro"
            subprocess.run(
                [*command, "submit", "--provider", provider, "--prompt", f"outage job {i}"],
                env=env, check=True, capture_output=True,
            )  # fmt: skip
        log = (home / "watch.log").open("w")
        watch = subprocess.Popen(
            [*command, "watch"], env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        try:
            wait(lambda: any(s and h == 200 for _, s, h in requests(db)[jobs:]), "a poll", 120)
            sim.stop()  # gone; its state (the renders) stays with the app
            gone_at, cpu_before = time.time(), cpu_seconds(watch.pid)
            samples = []  # CPU used in each tenth of the outage
            for _ in range(10):
                time.sleep(outage / 10)
                samples.append(cpu_seconds(watch.pid) - cpu_before - sum(samples))
            cpu_during = cpu_seconds(watch.pid) - cpu_before
            back_at = time.time()
            sim = SimulatorServer(port=port, app=sim.app)  # back, on the same port
            sim.start()
            wait(lambda: watch.poll() is not None, "watch's end", 600)
        finally:
            if watch.poll() is None:
                watch.kill()
                watch.wait()
            sim.stop()
            log.close()
        rows = requests(db)
        attempts = [at for at, sent, _ in rows if gone_at <= at < back_at and not sent]
        reached = [at for at, sent, status in rows if at >= back_at and sent and status]
        naive = jobs * outage / POLL_SPACING
        output = (home / "watch.log").read_text()
        print(f"outage benchmark: {jobs} pending tasks, server gone {outage:g} s, then back")
        print(f"{'':<42}{'watch':>10}{'per-task loop':>16}")
        print(f"{'CPU time over the outage (s)':<42}{cpu_during:>10.3f}{'':>16}")
        print(f"  by tenths of it: {' '.join(f'{c:.2f}' for c in samples)}")
        print(f"{'connection attempts during the outage':<42}{len(attempts):>10}{naive:>16.0f}")
        recovered = f"{reached[0] - back_at:.1f}" if reached else "never"
        print(f"{'server reached again after its return (s)':<42}{recovered:>10}")
        print(f"{'watch exit code':<42}{watch.returncode:>10}")
        said = [line for line in output.splitlines() if "cannot reach" in line]
        print(f"first word of it: {said[0] if said else '(nothing said)'}")
        ok = cpu_during < 1.0 and watch.returncode == 0 and reached and "Traceback" not in output
        print("RESULT", "ok" if ok else "FAILED")
        return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--outage", type=float, default=60.0, help="seconds the server is gone")
    parser.add_argument("--jobs", type=int, default=5)
    args = parser.parse_args(argv)
    # Renders outlast the outage: the tasks are pending throughout it.
    render = (args.outage + 40.0, args.outage + 60.0)
    return run(args.outage, args.jobs, render)


if __name__ == "__main__":
    sys.exit(main())
