"""The house's layering, as the interpreter sees it (harlequin's `test_import_hygiene.py`).

The import-linter contracts in pyproject.toml state the rules over the whole import graph
(imports inside functions included); these tests run them, and check in a fresh
interpreter what importing a core module actually loads.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FACES = ("textual", "textual_image", "textual_serve")


def loaded_after(statement: str) -> set[str]:
    """Top-level packages in sys.modules after `statement` in a fresh interpreter."""
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return {name.split(".")[0] for name in json.loads(done.stdout)}


def test_the_import_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run(
        [str(lint), "--no-cache"], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_the_engine_loads_no_textual():
    loaded = loaded_after("import seedance_tui.engine")
    assert not loaded & set(FACES), sorted(loaded & set(FACES))


def test_the_cli_loads_neither_textual_nor_the_http_stack_to_parse_its_arguments():
    loaded = loaded_after("import seedance_tui.cli")
    assert not loaded & {*FACES, "httpx", "av", "PIL"}, sorted(loaded & {*FACES, "httpx"})


def test_the_session_and_events_load_neither_textual_nor_the_http_stack():
    """The composition root builds the engine on demand: importing it (and the events
    every face shares) costs no HTTP stack, so a history-only command stays light."""
    loaded = loaded_after("import seedance_tui.session, seedance_tui.events")
    assert not loaded & {*FACES, "httpx", "httpcore"}, sorted(loaded & {*FACES, "httpx"})


def modules_after_command(*argv: str) -> set[str]:
    """Every module in sys.modules after `seedance-tui ARGV...` ran (exit 0) in a fresh
    interpreter, with the test's home."""
    code = (
        "import contextlib, io, json, sys\n"
        "from seedance_tui.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    code = main({list(argv)!r})\n"
        "print(json.dumps([code, sorted(sys.modules)]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert done.returncode == 0, done.stderr
    code, modules = json.loads(done.stdout.splitlines()[-1])
    assert code == 0, (argv, done.stderr)
    return set(modules)


# What no history-only command needs: the engine and what it sends with, the providers'
# adapters and wire models, the faces, the event loop, the config writer, the keyring.
NOT_FOR_READING = {
    *FACES, "httpx", "httpcore", "pydantic", "rich", "asyncio", "tomlkit", "keyring", "av",
    "PIL", "platformdirs", "seedance_tui.engine", "seedance_tui.client",
    "seedance_tui.providers", "seedance_tui.ledger", "seedance_tui.scheduler",
    "seedance_tui.events", "seedance_tui.library",
}  # fmt: skip


def test_help_imports_only_the_root_of_the_command_line():
    """`seedance-tui --help` answers from the command table: no command's module, not
    even the domain models (#13 §4; figures: benchmarks/startup.py)."""
    ours = {m for m in modules_after_command("--help") if m.startswith("seedance_tui")}
    assert ours == {"seedance_tui", "seedance_tui.cli", "seedance_tui.cli.common"}, sorted(ours)


def test_history_only_commands_import_only_the_history(isolated_home):
    """`list`, `status ID` of a finished task, `credits`, `export`, `history stats` read
    the history: nothing of the engine, the providers, the faces or the event loop is
    imported (#13 §4)."""
    from seedance_tui.models import Provider, Task, TaskStatus
    from seedance_tui.paths import default_db_path
    from seedance_tui.store import Store, new_task_id

    default_db_path().parent.mkdir(parents=True, exist_ok=True)
    task = Task(
        id=new_task_id(1.8e9), provider=Provider.NANOPHOTO, status=TaskStatus.COMPLETED,
        prompt="a lantern", params={"mode": "text-to-video"}, created_at=1.8e9,
        task_id="t1", video_urls=("https://cdn.example/1.mp4",),
    )  # fmt: skip
    store = Store.open(default_db_path())
    try:
        store.bulk_import([task])
    finally:
        store.close()
    commands = [("list", "--limit", "5"), ("status", task.id), ("credits",),
                ("export", "--format", "csv"), ("history", "stats")]  # fmt: skip
    for argv in commands:
        loaded = modules_after_command(*argv)
        heavy = {m for m in loaded if m in NOT_FOR_READING or m.split(".")[0] in NOT_FOR_READING}
        assert not heavy, (argv, sorted(heavy))


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of `graph` (module → modules it imports),
    iteratively (no recursion limit), each sorted; only those of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_strongly_connected_finds_a_circle_and_only_circles():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set(), "f": {"f"}}
    assert strongly_connected(graph) == [["a", "b", "c"]]


def test_no_import_circle_in_the_package():
    """No two modules of seedance_tui import each other, directly or through others,
    counting imports inside functions (grimp reads every import statement). Imports
    under `if TYPE_CHECKING:` are left out: they never run."""
    import grimp

    built = grimp.build_graph("seedance_tui", exclude_type_checking_imports=True, cache_dir=None)
    graph = {
        module: {m for m in built.find_modules_directly_imported_by(module) if m in built.modules}
        for module in built.modules
    }
    circles = strongly_connected(graph)
    assert not circles, "import circles: " + "; ".join(" ↔ ".join(c) for c in circles)
