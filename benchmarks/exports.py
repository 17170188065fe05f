"""Export-size benchmark: the commands that read a whole history, at 10k, 100k and 1M tasks.

Each command runs in a fresh process (the interpreter's start-up and imports included);
its wall time and peak RSS (from wait4) are printed as one table, ours beside the
approach each replaced:

  export (jsonl, csv)   keyset pages (`Store.iter_tasks`) vs LIMIT/OFFSET pages of 1000
                        (each page walks every row before it: O(N^2));
  list --json --limit 0 streamed a task at a time vs every task built into one list and
                        one JSON string;
  import (jsonl)        staged, then copied in batches of 5000 with the prompt index filled
                        per batch vs every row read into a list, then one lookup and one
                        transaction per task (the prompt index's trigger per row);
  history stats, credits  unchanged (counted from indexes): ours only.

The replaced approaches run up to 100k only (at 1M: an hour or more, or gigabytes); their
1M figure is extrapolated from the 10k -> 100k growth of each (time and memory alike) and
marked "~ (extrapolated)". Targets (issue #13): at 1M each command within 90 s and the
1M/100k time ratio at most 11 (linear: 10, plus start-up's share); memory flat (peak RSS
at 1M within 25% of that at 10k).

Histories come from benchmarks/history.py (built once, cached under benchmarks/out/).
Before each run the file the command reads (the history, or the export an import reads)
is read once, so every contestant starts with it in the page cache. Wall time on a shared
machine is noisy: each figure shows its CPU time too.

Run: python benchmarks/exports.py [--sizes 10000,100000,1000000] [--naive-max 100000]
     python benchmarks/exports.py --table   (the last run's table again)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import history as history_bench  # noqa: E402  (benchmarks/history.py: the builder)

OUT = history_bench.OUT
SIZES = (10_000, 100_000, 1_000_000)
NAIVE_MAX = 100_000
TIME_TARGET = 90.0
RATIO_TARGET = 11.0
MEMORY_TARGET = 1.25
CLI = [sys.executable, "-m", "seedance_tui"]
COMMANDS = ("export jsonl", "export csv", "list --json", "import jsonl", "history stats", "credits")
NAIVE = {"export jsonl", "export csv", "list --json", "import jsonl"}


# -- the replaced approaches, each run in a child process -----------------------------


def naive_export(db: Path, fmt: str, out: Path) -> None:
    from seedance_tui.exporting import write_export
    from seedance_tui.store import Store

    store = Store.open(db)

    def offset_pages():
        offset = 0
        while True:
            page = store.list(None, sort="oldest", limit=1000, offset=offset)
            yield from page
            if len(page) < 1000:
                return
            offset += 1000

    with open(out, "w", encoding="utf-8", newline="") as fh:
        write_export(offset_pages(), fmt, fh)
    store.close()


def naive_list(db: Path) -> None:
    from seedance_tui.store import Store
    from seedance_tui.text import to_json

    store = Store.open(db)
    tasks = store.list(None, limit=None)
    sys.stdout.write(to_json([task.to_public() for task in tasks]) + "\n")
    store.close()


def naive_import(source: Path, db: Path) -> None:
    from seedance_tui.exporting import read_rows, task_from_public
    from seedance_tui.store import Store, StoreError

    tasks = [task_from_public(row) for _, row in read_rows(source)]
    store = Store.open(db)
    for task in tasks:
        try:
            store.get(task.id)
        except StoreError:
            store.insert_task(task)
    store.close()


def child(argv: list[str]) -> None:
    import seedance_tui.cli  # noqa: F401  (the start-up the replaced commands had too)

    kind, *rest = argv
    if kind == "naive-export":
        naive_export(Path(rest[0]), rest[1], Path(rest[2]))
    elif kind == "naive-list":
        naive_list(Path(rest[0]))
    elif kind == "naive-import":
        naive_import(Path(rest[0]), Path(rest[1]))
    else:
        raise SystemExit(f"unknown child {kind}")


# -- measuring -------------------------------------------------------------------------


Figure = tuple[float, float, float]  # wall seconds, CPU seconds, peak RSS in MB


def run(argv: list[str]) -> Figure:
    """Wall and CPU seconds and peak RSS of one process, its output thrown away."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}): {err}")
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def fresh(path: Path) -> Path:
    for suffix in ("", "-wal", "-shm", ".tmp"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    return path


def warm(path: Path) -> None:
    with open(path, "rb") as fh:
        while fh.read(1 << 22):
            pass


def measure(command: str, size: int, db: Path, naive: bool) -> Figure:
    export = OUT / f"export-{size}.jsonl"  # ours, written by "export jsonl" first
    # What a command reads starts in the page cache: a large import (or another
    # engineer's work) may have pushed it out.
    warm(export if command.startswith("import") else db)
    me = [sys.executable, __file__, "--child"]
    if command.startswith("export"):
        fmt = command.split()[1]
        target = fresh(OUT / f"bench-export-{size}.{fmt}")
        if naive:
            return run([*me, "naive-export", str(db), fmt, str(target)])
        timing = run([*CLI, "--db", str(db), "export", "--format", fmt, "-o", str(target)])
        if fmt == "jsonl":
            target.replace(export)
        return timing
    if command == "list --json":
        if naive:
            return run([*me, "naive-list", str(db)])
        return run([*CLI, "--db", str(db), "list", "--json", "--limit", "0"])
    if command == "import jsonl":
        target = fresh(OUT / f"bench-import-{size}.db")
        try:
            if naive:
                return run([*me, "naive-import", str(export), str(target)])
            return run([*CLI, "--db", str(target), "import", str(export)])
        finally:
            fresh(target)
    if command == "history stats":
        return run([*CLI, "--db", str(db), "history", "stats", "--json"])
    if command == "credits":
        return run([*CLI, "--db", str(db), "credits", "--json"])
    raise ValueError(command)


def extrapolate(sizes: tuple[int, int], figures: tuple[tuple[float, float], ...], size: int):
    """Figures at `size`, growing on as they grew between the two measured sizes (the
    same factor per tenfold). For a cost growing faster than that (OFFSET's share grows
    with N squared) this is a lower bound."""
    (a, b), (small, large) = sizes, figures
    decades = math.log10(size / b) / math.log10(b / a)
    return tuple(y * (y / x) ** decades for x, y in zip(small, large, strict=True))


# -- the table -------------------------------------------------------------------------


def label(size: int) -> str:
    return f"{size // 1_000_000}M" if size >= 1_000_000 else f"{size // 1000}k"


def seconds(value: float) -> str:
    return f"{value:.1f}" if value < 100 else f"{value:,.0f}"


def cell(figure: Figure | None, estimated: bool = False) -> str:
    if figure is None:
        return "—"
    wall, cpu, mb = figure
    text = f"{seconds(wall)} s ({seconds(cpu)}) / {mb:,.0f} MB"
    return "~" + text + " (extrapolated)" if estimated else text


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def table(results: dict[tuple[str, str, int], Figure], sizes: list[int]) -> None:
    names = {"ours": "ours", "naive": "replaced"}
    header = ["command", "approach", *(label(s) for s in sizes)]
    top = sizes[-1]
    prev = sizes[-2] if len(sizes) > 1 else None
    if prev:
        header += [f"{label(top)}/{label(prev)} (cpu)", f"{label(top)} ≤ {TIME_TARGET:.0f} s",
                   f"ratio ≤ {RATIO_TARGET:g}", "memory flat"]  # fmt: skip
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for command in COMMANDS:
        for approach in ("ours", "naive"):
            figures: dict[int, tuple[Figure, bool]] = {
                size: (results[(command, approach, size)], False)
                for size in sizes
                if (command, approach, size) in results
            }
            if not figures:
                continue
            measured = sorted(figures)
            if top not in figures and len(measured) >= 2:
                a, b = measured[-2:]
                figures[top] = (extrapolate((a, b), (figures[a][0], figures[b][0]), top), True)
            row = [f"`{command}`" if approach == "ours" else "", names[approach]]
            row += [cell(*figures[s]) if s in figures else "—" for s in sizes]
            if prev and top in figures and prev in figures:
                (wall, cpu, mb), estimated = figures[top]
                wall_ratio = wall / figures[prev][0][0]
                cpu_ratio = cpu / figures[prev][0][1]
                mark = "~" if estimated else ""
                row += [f"{mark}{wall_ratio:.1f} ({cpu_ratio:.1f})", verdict(wall <= TIME_TARGET),
                        verdict(wall_ratio <= RATIO_TARGET),
                        verdict(mb <= figures[sizes[0]][0][2] * MEMORY_TARGET)]  # fmt: skip
            elif prev:
                row += ["—"] * 4
            print("| " + " | ".join(row) + " |")
    print()
    print("Wall seconds of the whole process (start-up ~0.3–0.5 s included), its CPU seconds")
    print("(user + system) in brackets, and its peak RSS; the targets are judged on wall time.")
    print("Figures marked ~ are extrapolated, not measured: at the growth measured from the")
    print("size before, a lower bound for costs growing faster than that (OFFSET).")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default=",".join(str(s) for s in SIZES))
    parser.add_argument("--naive-max", type=int, default=NAIVE_MAX)
    parser.add_argument(
        "--table",
        action="store_true",
        help="print the table of the last run again, measure nothing",
    )
    parser.add_argument("--child", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    saved = OUT / "exports-results.json"
    if args.table:
        data = json.loads(saved.read_text())
        results = {tuple(key.split("|")[:2]) + (int(key.split("|")[2]),): tuple(v)
                   for key, v in data.items()}  # fmt: skip
        table(results, sorted({size for _, _, size in results}))  # type: ignore[arg-type]
        return
    sizes = sorted(int(s) for s in args.sizes.split(","))
    results: dict[tuple[str, str, int], Figure] = {}
    for size in sizes:
        db = history_bench.history(size)
        for command in COMMANDS:
            approaches = ["ours"] + (
                ["naive"] if command in NAIVE and size <= args.naive_max else []
            )
            for approach in approaches:
                figure = measure(command, size, db, approach == "naive")
                results[(command, approach, size)] = figure
                print(
                    f"  {label(size):>4} {command:<14} {approach:<6} {cell(figure)}",
                    file=sys.stderr,
                )
        for stale in OUT.glob(f"bench-export-{size}.*"):
            stale.unlink()
    saved.write_text(json.dumps({f"{c}|{a}|{s}": v for (c, a, s), v in results.items()}))
    table(results, sizes)


if __name__ == "__main__":
    main()
