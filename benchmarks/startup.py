"""Instant commands (issue #13 §4): the CPU time of `seedance-tui --help`, `list --limit 5`
and `status ID`, against `python3 -c 'import textual.app'` measured in the same run.

Each command runs in a fresh process (the installed `seedance-tui` script, as a user
runs it) on a history of finished tasks in a throwaway SEEDANCE_TUI_HOME, with a config
file like the README's; no key anywhere, no network. CPU time (user + system) of each
child comes from `getrusage(RUSAGE_CHILDREN)`: the machine's load stretches wall time,
much less CPU time. The commands take turns, round after round, so that a noisy moment
weighs on all of them alike; the table gives medians and the ratio to Textual's import.
Two floors beside them: the interpreter alone, and the interpreter importing click.

Targets: --help ≤ 0.3×, list --limit 5 ≤ 0.5×, status ID ≤ 0.5×.

    .venv/bin/python benchmarks/startup.py [--rounds 15] [--tasks 1000]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CONFIG = """\
provider = "nanophoto"
auto_download = true
theme = "nord"

[keymap]
submit = "ctrl+g"

[providers.nanophoto]
requests_per_hour = 100
link_ttl_hours = 24

[providers.nanophoto.defaults]
resolution = "720p"
duration = "8"
aspect = "landscape"

[providers.seedance15pro.defaults]
duration = "5"
aspect = "16:9"

[polling]
min_interval = 5
target_latency = 30
"""

TARGETS = {"--help": 0.3, "list --limit 5": 0.5, "status ID": 0.5}


def make_home(home: Path, count: int) -> str:
    """A history of `count` finished tasks and a config file; returns one task's id."""
    from seedance_tui.models import Provider, Task, TaskStatus
    from seedance_tui.store import Store, new_task_id

    (home / "config").mkdir(parents=True)
    (home / "config" / "config.toml").write_text(CONFIG)
    (home / "data").mkdir()
    now = time.time()
    tasks = [
        Task(
            id=new_task_id(now - count + i),
            provider=Provider.NANOPHOTO,
            status=TaskStatus.COMPLETED,
            prompt=f"a paper lantern over the harbor, take {i}",
            params={"mode": "text-to-video", "resolution": "720p", "duration": "8"},
            created_at=now - count + i,
            task_id=f"t{i}",
            credits_estimated=8,
            credits_charged=8,
            video_urls=(f"https://cdn.example/{i}.mp4",),
            completed_at=now - count + i + 40,
        )  # fmt: skip
        for i in range(count)
    ]
    store = Store.open(home / "data" / "history.db")
    try:
        store.bulk_import(tasks)
    finally:
        store.close()
    return tasks[count // 2].id


def cpu_of(argv: list[str], env: dict[str, str]) -> float:
    """CPU seconds (user + system) of one run of `argv`, which must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr[-800:]!r}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15, help="runs of each command")
    parser.add_argument("--tasks", type=int, default=1000, help="tasks in the history")
    options = parser.parse_args()
    python = sys.executable
    script = str(Path(python).with_name("seedance-tui"))
    with tempfile.TemporaryDirectory(prefix="seedance-startup-") as tmp:
        home = Path(tmp)
        task_id = make_home(home, options.tasks)
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("NANOPHOTO_", "SEEDANCE15PRO_", "SEEDANCE_TUI_"))
        }
        env["SEEDANCE_TUI_HOME"] = str(home)
        # Bytecode as an installed wheel has it (pip compiles it): every module, Textual's
        # too, compiled once by the warm-up run into one cache, not again in each run.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(home / "pycache")
        commands = {
            "python -c pass (floor)": [python, "-c", "pass"],
            "python -c 'import click' (floor)": [python, "-c", "import click"],
            "import textual.app (reference)": [python, "-c", "import textual.app"],
            "--help": [script, "--help"],
            "list --limit 5": [script, "list", "--limit", "5"],
            "status ID": [script, "status", task_id],
        }
        for argv in commands.values():  # warm the page cache and compile the bytecode
            cpu_of(argv, env)
        samples: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(options.rounds):
            for name, argv in commands.items():
                samples[name].append(cpu_of(argv, env))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    reference = medians["import textual.app (reference)"]
    print(
        f"CPU time per run, median of {options.rounds} (min–max), history of "
        f"{options.tasks:,} tasks; ratio to `import textual.app` in the same run\n"
    )
    print("| command | CPU | ratio | target | |\n|---|---|---|---|---|")
    for name, values in samples.items():
        ratio = medians[name] / reference
        target = TARGETS.get(name)
        verdict = "" if target is None else ("met" if ratio <= target else "**missed**")
        print(
            f"| `{name}` | {medians[name] * 1000:.0f} ms ({min(values) * 1000:.0f}–"
            f"{max(values) * 1000:.0f}) | {ratio:.2f}× | "
            f"{'' if target is None else f'≤ {target}×'} | {verdict} |"
        )
    missed = [n for n, t in TARGETS.items() if medians[n] / reference > t]
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
