"""Crash test: SIGKILL the headless commands at random moments, restart, check nothing
was lost or submitted twice.

Each round starts a few `seedance-tui submit` processes (some with --wait, so they poll)
and a `seedance-tui watch`, against the simulator on loopback; at a random moment every
process of the round still running is killed with SIGKILL. The next round starts with
a fresh `watch` (which orphans the intents of dead submitters and resumes polling).
About a third of the simulator's answers are held back for a while (its "slow" fault,
which creates the task only after the delay), so kills land while submissions and polls
are in flight, some between the server accepting a job and our commit of its task id.
At the end a last `watch` runs to completion, then:

  * every task the simulator created is in the history with its task id, or (only when
    the kill fell between the server accepting and our commit) an `orphaned` row with
    its prompt that the user sees (lost 0);
  * no prompt was created twice (duplicated 0), and no submission was sent by a restart;
  * every row is terminal and agrees with the simulator (state mismatches 0);
  * our credits equal the simulator's net charges, apart from the orphans it charged.

Then `--tui-kills` rounds do the same to the dashboard: `seedance-tui` in a
pseudo-terminal, a job typed into its form and confirmed (n, text, ctrl+s, enter), a
headless `watch` polling beside it, both killed at a random moment.

The harness waits for states, never for a guessed duration: the dashboard's ready file
($SEEDANCE_TUI_READY_FILE) before typing, the confirm dialog on its screen before the
enter, each round's intents in the history before its random kill moment (a quarter of
the rounds kill blind instead, start-up included, so some kills land before anything
was saved), each process's end with a deadline. A state that does not come within its
deadline is a harness failure in the report, never a hang; every process it started is
killed when it ends, however it ends.

Run: python benchmarks/crash.py [--kills 20] [--tui-kills 20] [--seed N]
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import pty
import random
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from seedance_tui.models import TaskStatus  # noqa: E402
from seedance_tui.simulator import SimConfig, SimulatorServer  # noqa: E402
from seedance_tui.store import Store  # noqa: E402

NANO_KEY = "sk-crash-nano-51aa"
SEED_KEY = "sk-crash-seed-77bc"
CONFIG = """
[polling]
min_interval = 0.2
target_latency = 0.5
max_interval = 1.0
prior = [1.0, 3.0]

[providers.nanophoto]
requests_per_hour = 5000
"""
# A blind kill falls anywhere in this many seconds after the round's processes start.
BLIND_SPAN = 3.0
BLIND_SHARE = 0.25  # of the headless rounds
DEADLINE = 90.0  # for any state the harness waits for (a busy machine is slow)
POLL_INTERVAL = 0.05  # between two looks at a state
SIM_STATUS = {"completed": TaskStatus.COMPLETED, "failed": TaskStatus.FAILED}


@dataclass
class CrashResult:
    rounds: int
    kills: int = 0  # processes killed while running
    killed_submits: int = 0
    killed_watches: int = 0
    killed_tuis: int = 0
    submissions: int = 0
    sim_tasks: int = 0
    faults: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    state_mismatches: list[str] = field(default_factory=list)
    not_terminal: list[str] = field(default_factory=list)
    orphans_accepted: int = 0  # the simulator created the task; we never got its id
    orphans_not_created: int = 0  # killed before the server created anything
    never_recorded: int = 0  # killed before the intent was written: nothing sent
    credit_mismatches: dict[str, tuple[int, int]] = field(default_factory=dict)
    tracebacks: list[str] = field(default_factory=list)
    harness_failures: list[str] = field(default_factory=list)  # a state that never came
    blind_rounds: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not (
            self.lost
            or self.duplicated
            or self.state_mismatches
            or self.not_terminal
            or self.credit_mismatches
            or self.tracebacks
            or self.harness_failures
        )

    def report(self) -> str:
        lines = [
            f"rounds               {self.rounds} ({self.seconds:.1f} s)",
            f"SIGKILLs             {self.kills} (submit {self.killed_submits}, "
            f"watch {self.killed_watches}, TUI {self.killed_tuis})",
            f"submissions started  {self.submissions}",
            f"faults injected      {self.faults} (slow answers)",
            f"tasks created (sim)  {self.sim_tasks}",
            f"our final statuses   {dict(sorted(self.statuses.items()))}",
            f"lost                 {len(self.lost)}",
            f"duplicated           {len(self.duplicated)}",
            f"state mismatches     {len(self.state_mismatches)}",
            f"not terminal         {len(self.not_terminal)}",
            f"credit mismatches    {len(self.credit_mismatches)}",
            f"tracebacks           {len(self.tracebacks)}",
            f"harness failures     {len(self.harness_failures)} (a state that never came)",
            f"blind rounds         {self.blind_rounds} (killed at any moment, start-up included)",
            f"orphaned, accepted by the server   {self.orphans_accepted} "
            "(kill between accept and commit: shown to the user)",
            f"orphaned, never created            {self.orphans_not_created}",
            f"killed before the intent was saved {self.never_recorded} (nothing sent)",
        ]
        for label, items in (
            ("lost", self.lost),
            ("duplicated", self.duplicated),
            ("state", self.state_mismatches),
            ("not terminal", self.not_terminal),
            ("traceback", self.tracebacks),
            ("harness", self.harness_failures),
        ):
            lines += [f"  {label}: {item}" for item in items[:5]]
        lines.append("RESULT               " + ("ok" if self.ok else "FAILED"))
        return "\n".join(lines)


def _exe() -> list[str]:
    return [sys.executable, "-m", "seedance_tui"]


class HarnessError(Exception):
    """A state the harness waited for did not come within its deadline."""


def wait_for(predicate, what: str, seconds: float = DEADLINE) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise HarnessError(f"not within {seconds:g} s: {what}")
        time.sleep(POLL_INTERVAL)


def random_moment(rng: random.Random, seconds: float) -> None:
    """The kill falls at a random moment of the next `seconds` (this is the point of the
    test, not a wait for anything)."""
    time.sleep(rng.uniform(0.0, seconds))


class Processes:
    """Every process the harness starts, each in its own group; `kill_all` ends them."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen[bytes]] = []

    def spawn(self, argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(argv, start_new_session=True, **kwargs)
        self.started.append(process)
        return process

    def kill_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _spawn(procs: Processes, env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    return procs.spawn([*_exe(), *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _reap(
    proc: subprocess.Popen[bytes], result: CrashResult, what: str, seconds: float = DEADLINE
) -> None:
    try:
        _, err = proc.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        result.harness_failures.append(f"{what} did not end within {seconds:g} s")
    if b"Traceback" in err:
        result.tracebacks.append(err.decode("utf-8", "replace")[-400:])


def _recorded_prompts(db: Path) -> set[str]:
    """The prompts with a row in the history (read-only; nothing yet if no file)."""
    if not db.exists():
        return set()
    try:
        store = Store.open_reader(db)
    except Exception:
        return set()  # the first process is creating it
    try:
        return {task.prompt for task in store.list(limit=None)}
    except Exception:
        return set()
    finally:
        store.close()


class Dashboard:
    """The TUI (`seedance-tui` with no command) in a pseudo-terminal, driven by keys."""

    def __init__(self, procs: Processes, env: dict[str, str], ready_file: Path) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        self.ready_file = ready_file
        ready_file.unlink(missing_ok=True)
        self.proc = procs.spawn(
            _exe(),
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env={**env, "TERM": "xterm-256color", "SEEDANCE_TUI_READY_FILE": str(ready_file)},
        )
        os.close(slave)
        self.master = master
        self.screen = bytearray()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            self.screen.extend(data)

    def _running(self) -> None:
        if self.proc.poll() is not None:
            tail = bytes(self.screen[-400:]).decode("utf-8", "replace")
            raise HarnessError(f"the dashboard exited ({self.proc.returncode}): {tail!r}")

    def wait_ready(self) -> None:
        """Until the dashboard says it takes keys (its ready file names its pid)."""

        def ready() -> bool:
            self._running()
            with contextlib.suppress(OSError):
                return self.ready_file.read_text() == f"{self.proc.pid}\n"
            return False

        wait_for(ready, "the dashboard wrote its ready file")

    def type(self, data: bytes) -> int:
        """Send keys; returns where the screen's output stood before them."""
        offset = len(self.screen)
        os.write(self.master, data)
        return offset

    def wait_for_text(self, text: bytes, since: int, what: str) -> None:
        def shown() -> bool:
            self._running()
            return text in self.screen[since:]

        wait_for(shown, what)

    def submit(self, prompt: str) -> None:
        """New job, the prompt and ctrl+s typed at once (the dashboard keeps them in
        order), then enter once the confirm dialog shows."""
        since = self.type(b"n" + prompt.encode() + b"\x13")
        self.wait_for_text(b"Submit this job?", since, "the confirm dialog")
        self.type(b"\r")

    def close(self) -> None:
        os.close(self.master)


def _tui_round(
    procs: Processes,
    env: dict[str, str],
    rng: random.Random,
    round_no: int,
    prompts: list[str],
    result: CrashResult,
    ready_file: Path,
) -> None:
    """Start the dashboard (and a headless watch beside it), submit a job through its
    form, SIGKILL both at a random moment: mid-submit, mid-poll, or idle."""
    watch = _spawn(procs, env, "watch")
    tui = Dashboard(procs, env, ready_file)
    try:
        try:
            tui.wait_ready()
            prompt = f"tui round {round_no:02d} job 0"
            prompts.append(prompt)
            tui.submit(prompt)
        except HarnessError as exc:
            result.harness_failures.append(f"tui round {round_no:02d}: {exc}")
        random_moment(rng, 2.2)
        if tui.proc.poll() is None:
            tui.proc.send_signal(signal.SIGKILL)
            result.kills += 1
            result.killed_tuis += 1
        tui.proc.wait(timeout=DEADLINE)
        if b"Traceback" in tui.screen:
            result.tracebacks.append(bytes(tui.screen[-400:]).decode("utf-8", "replace"))
    finally:
        tui.close()
    if watch.poll() is None:
        watch.send_signal(signal.SIGKILL)
        result.kills += 1
        result.killed_watches += 1
    _reap(watch, result, "a killed watch")


def _headless_round(
    procs: Processes,
    env: dict[str, str],
    db: Path,
    rng: random.Random,
    round_no: int,
    prompts: list[str],
    result: CrashResult,
    max_round: float,
) -> None:
    """A watch and 1-3 submits (some with --wait), all SIGKILLed at a random moment:
    after every submit saved its intent, or (a blind round) at any moment at all."""
    round_procs: list[tuple[str, subprocess.Popen[bytes]]] = [
        ("watch", _spawn(procs, env, "watch"))
    ]
    submits: list[tuple[str, subprocess.Popen[bytes]]] = []
    for j in range(rng.randint(1, 3)):
        prompt = f"crash round {round_no:02d} job {j}"
        prompts.append(prompt)
        provider = rng.choice(["nanophoto", "seedance15pro"])
        args = ["submit", "--provider", provider, "--prompt", prompt]
        if rng.random() < 0.4:
            args.append("--wait")
        submit = _spawn(procs, env, *args)
        submits.append((prompt, submit))
        round_procs.append(("submit", submit))
    if rng.random() < BLIND_SHARE:
        result.blind_rounds += 1
        random_moment(rng, BLIND_SPAN + max_round)
    else:

        def intents_saved() -> bool:
            recorded = _recorded_prompts(db)
            return all(proc.poll() is not None or prompt in recorded for prompt, proc in submits)

        try:
            wait_for(
                intents_saved, f"round {round_no:02d}: every submit saved its intent (or ended)"
            )
        except HarnessError as exc:
            result.harness_failures.append(str(exc))
        random_moment(rng, max_round)
    for kind, proc in round_procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            result.kills += 1
            if kind == "submit":
                result.killed_submits += 1
            else:
                result.killed_watches += 1
    for kind, proc in round_procs:
        _reap(proc, result, f"a killed {kind}")


def run_crash(
    rounds: int = 20,
    *,
    tui_rounds: int = 0,
    seed: int = 1,
    home: Path | None = None,
    max_round: float = 2.0,
) -> CrashResult:
    rng = random.Random(seed)
    result = CrashResult(rounds=rounds + tui_rounds)
    started = time.monotonic()
    config = SimConfig(
        generation_time=(1.0, 3.0),
        failure_rate=0.2,
        seed=seed,
        fault_rate=0.5,
        fault_kinds={"slow": 1.0},
        slow_seconds=1.0,
        nanophoto_rate_limit=5000,
    )
    with tempfile.TemporaryDirectory(prefix="seedance-crash-") as tmp:
        root = home or Path(tmp)
        config_file = root / "config" / "config.toml"
        config_file.parent.mkdir(parents=True, exist_ok=True)
        config_file.write_text(CONFIG)
        db = root / "data" / "history.db"
        with SimulatorServer(config) as sim:
            env = {
                **os.environ,
                "SEEDANCE_TUI_HOME": str(root),
                "SEEDANCE_TUI_DB": str(db),
                "NANOPHOTO_BASE_URL": sim.base_url,
                "SEEDANCE15PRO_BASE_URL": sim.base_url,
                "NANOPHOTO_API_KEY": NANO_KEY,
                "SEEDANCE15PRO_API_KEY": SEED_KEY,
                "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
            }
            prompts: list[str] = []
            procs = Processes()
            try:
                for round_no in range(rounds):
                    _headless_round(procs, env, db, rng, round_no, prompts, result, max_round)
                for round_no in range(tui_rounds):
                    _tui_round(procs, env, rng, round_no, prompts, result, root / "ready")
                final = _spawn(procs, env, "watch")
                _reap(final, result, "the last watch", seconds=2 * DEADLINE)
            finally:
                procs.kill_all()
            sim_tasks = httpx.get(sim.base_url + "/_sim/tasks").json()["tasks"]
            ledger = httpx.get(sim.base_url + "/_sim/ledger").json()
        result.submissions = len(prompts)
        store = Store.open(db)
        ours = store.list(limit=None)
        summary = store.credits_summary(time.time())
        store.close()
    check(result, prompts, ours, summary, sim_tasks, ledger)
    result.seconds = time.monotonic() - started
    return result


def check(
    result: CrashResult,
    prompts: list[str],
    ours: list[Any],
    summary: dict[str, Any],
    sim_tasks: list[dict[str, Any]],
    ledger: dict[str, Any],
) -> None:
    result.sim_tasks = len(sim_tasks)
    result.faults = ledger["totals"]["faults"]
    result.statuses = dict(Counter(t.status.value for t in ours))
    by_task_id = {t.task_id: t for t in ours if t.task_id}
    rows_by_prompt: dict[str, list[Any]] = {}
    for task in ours:
        rows_by_prompt.setdefault(task.prompt, []).append(task)
    for prompt, rows in rows_by_prompt.items():
        if len(rows) > 1:
            result.duplicated.append(f"{prompt!r} has {len(rows)} history rows")
    created = Counter(t["request"]["prompt"] for t in sim_tasks)
    for prompt, count in created.items():
        if count > 1:
            result.duplicated.append(f"{prompt!r} was created {count} times")
    orphan_credits: Counter[str] = Counter()
    for sim_task in sim_tasks:
        mine = by_task_id.get(sim_task["task_id"])
        if mine is not None:
            if mine.status is not SIM_STATUS.get(sim_task["status"]):
                result.state_mismatches.append(
                    f"{mine.task_id}: ours {mine.status.value}, simulator {sim_task['status']}"
                )
            continue
        rows = rows_by_prompt.get(sim_task["request"]["prompt"], [])
        if rows and rows[0].status is TaskStatus.ORPHANED:
            result.orphans_accepted += 1
            orphan_credits[sim_task["provider"]] += sim_task["net"]
        else:
            result.lost.append(f"{sim_task['task_id']} {sim_task['request']['prompt']!r}")
    for task in ours:
        if task.status.is_pending:
            result.not_terminal.append(f"{task.short_id} {task.status.value}")
        elif task.status is TaskStatus.ORPHANED and task.prompt not in created:
            result.orphans_not_created += 1
    result.never_recorded = sum(1 for p in prompts if p not in rows_by_prompt)
    for provider in ("nanophoto", "seedance15pro"):
        mine = summary["providers"].get(provider, {}).get("all", 0)
        theirs = ledger["providers"][provider]["net"]
        if mine + orphan_credits[provider] != theirs:
            result.credit_mismatches[provider] = (mine, theirs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=20, help="rounds, each ending in SIGKILLs")
    parser.add_argument("--tui-kills", type=int, default=20, help="rounds killing the TUI")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    result = run_crash(args.kills, tui_rounds=args.tui_kills, seed=args.seed)
    print(
        f"crash test: {args.kills} rounds killing headless submit/watch, "
        f"{args.tui_kills} killing the TUI (with a watch beside it)"
    )
    print(result.report())
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
