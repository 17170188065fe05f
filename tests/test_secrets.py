"""Secrets: after a full run (every headless command, errors included, DEBUG logging to a
file, a crashing subprocess) the keys appear nowhere: not in the history file (nor its
-wal), the logs, the output, the exports, the screenshots or snapshots. The keys file is
0600 and a readable one is refused with a fix; plain http only ever goes to loopback."""

from __future__ import annotations

import json
import logging
import os
import stat
import sys
from pathlib import Path

import httpx
import pytest
from conftest import NANO_KEY, SEED_KEY

from seedance_tui import cli
from seedance_tui.client import InsecureTransportError, check_transport_security
from seedance_tui.config import ConfigError, load_settings
from seedance_tui.keys import read_keys_file, write_keys_file
from seedance_tui.paths import config_path
from seedance_tui.simulator import SimConfig

REPO = Path(__file__).resolve().parent.parent
KEYS = (NANO_KEY, SEED_KEY)
FAST = """
[polling]
min_interval = 0.1
target_latency = 0.3
max_interval = 1.0
prior = [0.3, 1.5]

# No hourly budgets: a 429 among the faults then costs its Retry-After, not a spell of
# requests spaced at the limit's pace (6 s apart at seedance15pro's 600 an hour).
[providers.nanophoto]
requests_per_hour = 0

[providers.seedance15pro]
requests_per_hour = 0
"""


def leaks(data: bytes) -> list[str]:
    """Which keys (or a recognisable part of one) occur in these bytes, in any encoding."""
    found = []
    for key in KEYS:
        for needle in (key, key[-12:]):
            for encoded in (needle.encode(), needle.encode("utf-16-le")):
                if encoded in data:
                    found.append(needle)
    return found


def scan_tree(root: Path) -> dict[str, list[str]]:
    hits = {}
    for path in root.rglob("*"):
        if path.is_file():
            found = leaks(path.read_bytes())
            if found:
                hits[str(path)] = found
    return hits


@pytest.mark.parametrize(
    "sim_config",
    [SimConfig(generation_time=(0.2, 0.5), failure_rate=0.3, seed=9, fault_rate=0.15)],
    indirect=True,
)
def test_a_full_run_leaks_no_key_anywhere(
    sim, sim_env, isolated_home, tmp_path, capsys, monkeypatch, processes
) -> None:
    config_path().parent.mkdir(parents=True, exist_ok=True)
    config_path().write_text(FAST)
    log_file = tmp_path / "debug.log"
    handler = logging.FileHandler(log_file)
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    outputs: list[str] = []

    stdouts: list[str] = []

    def run(*argv: str) -> int:
        try:
            code = cli.main(list(argv))
        except SystemExit as exc:
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        outputs.append(captured.out + captured.err)
        stdouts.append(captured.out)
        return code

    try:
        ids = []
        for provider, extra in (
            ("nanophoto", ["--audio"]),
            ("seedance15pro", ["--duration", "10"]),
        ):
            for n in range(3):
                run("submit", "--provider", provider, "--prompt", f"scene {n}", *extra, "--json")
                ids.append(json.loads(stdouts[-1])["id"])
        assert run("watch") in (0, 1)
        run("submit", "--prompt", "waited for", "--wait", "--json")
        for task_id in ids:
            run("status", task_id, "--json")
            run("status", task_id)
        assert run("list", "--json") == 0
        assert run("list") == 0
        assert run("credits", "--json") == 0
        assert run("credits") == 0
        run("config", "show")
        # Errors: bad input, an unknown task, a refused key, an insecure base URL.
        assert run("submit", "--prompt", "") == 2
        assert run("status", "nonexistent") == 2
        monkeypatch.setenv("NANOPHOTO_API_KEY", "invalid-" + NANO_KEY)
        run("submit", "--prompt", "refused key", "--json")
        monkeypatch.setenv("NANOPHOTO_API_KEY", NANO_KEY)
        monkeypatch.setenv("NANOPHOTO_BASE_URL", "http://example.com")
        assert run("submit", "--prompt", "insecure") == 1
        assert "refusing to send an API key" in outputs[-1]
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()

    # A crash: a subprocess that dies with a traceback while holding the keys.
    env = {**os.environ, **sim_env, "PYTHONPATH": str(REPO)}
    crash = processes.run(
        [sys.executable, "-c",
         "from seedance_tui.config import load_settings\n"
         "s = load_settings()\n"
         "print(repr(s), s.providers)\n"
         "raise RuntimeError(f'boom {s!r}')"],
        env=env,
    )  # fmt: skip
    assert crash.returncode != 0 and b"RuntimeError: boom" in crash.stderr

    assert len(outputs) > 15
    assert all("Traceback" not in text for text in outputs)
    # The ledger saw our requests (so the keys were used), yet nothing kept them.
    assert httpx.get(sim.base_url + "/_sim/ledger").json()["totals"]["requests"] > 6
    db = Path(load_settings().db_path)
    assert db.exists()
    scanned = {
        "history + wal": b"".join(
            p.read_bytes() for p in db.parent.glob(db.name + "*") if p.is_file()
        ),
        "debug log": log_file.read_bytes(),
        "output": "\n".join(outputs).encode("utf-8", "backslashreplace"),
        "crash output": crash.stdout + crash.stderr,
    }
    assert log_file.stat().st_size > 0
    assert {name: leaks(data) for name, data in scanned.items() if leaks(data)} == {}
    assert scan_tree(isolated_home) == {}  # config, data, library, exports
    for folder in ("screenshots", "tests/__snapshots__", "tests/snapshots"):
        if (REPO / folder).exists():
            assert scan_tree(REPO / folder) == {}


def test_keys_file_is_written_0600_even_over_a_readable_one(tmp_path: Path) -> None:
    path = tmp_path / "config" / "keys.json"
    path.parent.mkdir()
    path.write_text("{}")
    path.chmod(0o644)
    old_umask = os.umask(0)
    try:
        write_keys_file({"nanophoto": NANO_KEY}, path)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_keys_file(path) == {"nanophoto": NANO_KEY}


def test_a_keys_file_readable_by_others_is_refused_with_the_fix(tmp_path, capsys) -> None:
    path = tmp_path / "keys.json"
    path.write_text(json.dumps({"nanophoto": NANO_KEY}))
    path.chmod(0o644)
    with pytest.raises(ConfigError) as excinfo:
        read_keys_file(path)
    message = str(excinfo.value)
    assert f"chmod 600 {path}" in message and NANO_KEY not in message
    # Through the CLI, with the file where settings look for it and no key in the env.
    from seedance_tui.paths import keys_path

    keys_path().parent.mkdir(parents=True, exist_ok=True)
    keys_path().write_text(json.dumps({"nanophoto": NANO_KEY}))
    keys_path().chmod(0o640)
    code = cli.main(["submit", "--prompt", "x"])
    err = capsys.readouterr().err
    assert code == 2 and "chmod 600" in err and NANO_KEY not in err and "Traceback" not in err


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8765", "http://localhost:1", "http://[::1]:9", "https://nanophoto.ai",
     "HTTPS://SEEDANCE1-5PRO.COM", "http://127.8.9.10"],
)  # fmt: skip
def test_https_and_loopback_are_allowed(url: str) -> None:
    check_transport_security(url)


@pytest.mark.parametrize(
    "url",
    ["http://nanophoto.ai", "http://example.com:80", "http://127.0.0.1.nip.io",
     "http://localhost.example.com", "http://evil.localhost", "http://10.0.0.1",
     "http://[::ffff:8.8.8.8]", "ftp://127.0.0.1", "nanophoto.ai", "http://0.0.0.0"],
)  # fmt: skip
def test_plain_http_to_anything_else_is_refused(url: str) -> None:
    with pytest.raises(InsecureTransportError):
        check_transport_security(url)
