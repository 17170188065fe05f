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
