"""Shared fixtures: an isolated home for all state, the simulator on loopback, and the
processes a test starts (stopped when it ends; none may outlive it)."""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pg_server import PgServer, find_bin
from processes import TEST_MARK, Processes, kill_pids, leftovers

from seedance_tui.config import Settings, load_settings
from seedance_tui.models import Provider
from seedance_tui.simulator import SimConfig, SimulatorServer

# A key that must never appear in any file, log or output (tests scan for it).
NANO_KEY = "sk-nano-SECRET-7f3a9c21d4e8"
SEED_KEY = "sk-seed-SECRET-0b6e4d2a9c17"

_STATE_VARS = (
    "NANOPHOTO_API_KEY", "SEEDANCE15PRO_API_KEY", "NANOPHOTO_BASE_URL",
    "SEEDANCE15PRO_BASE_URL", "SEEDANCE_TUI_DB", "SEEDANCE_TUI_HOME", "NO_COLOR",
)  # fmt: skip


# One run of the suite (shared with pytest-xdist's workers, which inherit it): every
# process a test starts carries "<run>/<n>" in TEST_MARK, so /proc tells whose it is.
_RUN_VAR = "SEEDANCE_TUI_TEST_RUN"
_numbers = itertools.count(1)


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault(_RUN_VAR, f"{uuid.uuid4().hex[:12]}.{os.getpid()}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The suite leaves nothing running: a process any test started that is still there
    (say one whose test was killed by a timeout) is named, killed, and fails the run."""
    if hasattr(session.config, "workerinput"):
        return  # an xdist worker: the controller looks once all have finished
    found = leftovers(os.environ[_RUN_VAR] + "/", prefix=True)
    if found:
        kill_pids([pid for pid, _ in found])
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line("processes the tests left running (killed now):", red=True)
            for pid, command in found:
                reporter.write_line(f"  {pid} {command[:200]}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets its own config/data folders and no provider variables from outside;
    and, when it ends, no process it started may be running any more."""
    for name in _STATE_VARS:
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    monkeypatch.setenv("SEEDANCE_TUI_HOME", str(home))
    # Tests that want these turn them back on: no downloads behind a test's back, and
    # never a developer's real OS keyring.
    monkeypatch.setenv("SEEDANCE_TUI_AUTO_DOWNLOAD", "0")
    monkeypatch.setenv("SEEDANCE_TUI_KEYRING", "0")
    # The worker's name too: each xdist worker counts its own tests.
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    mark = f"{os.environ[_RUN_VAR]}/{worker}.{next(_numbers)}"
    monkeypatch.setenv(TEST_MARK, mark)
    yield home
    if found := leftovers(mark):
        kill_pids([pid for pid, _ in found])
        pytest.fail(
            "the test left processes running (killed now): "
            + "; ".join(f"{pid} {command[:120]}" for pid, command in found)
        )


@pytest.fixture
def processes() -> Iterator[Processes]:
    """Starts processes for the test, each in its own process group; stops them all when
    the test ends, however it ends."""
    owner = Processes()
    try:
        yield owner
    finally:
        owner.stop_all()


@pytest.fixture
def sim_config(request: pytest.FixtureRequest) -> SimConfig:
    """Fast, deterministic renders; a test may pass its own through
    `@pytest.mark.parametrize("sim_config", [SimConfig(...)], indirect=True)`."""
    return getattr(request, "param", None) or SimConfig(
        generation_time=(0.3, 0.8), failure_rate=0.0, seed=7
    )


@pytest.fixture
def sim(sim_config: SimConfig) -> Iterator[SimulatorServer]:
    with SimulatorServer(sim_config) as server:
        yield server


@pytest.fixture
def sim_env(sim: SimulatorServer, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment pointing both providers at the simulator, with keys."""
    env = {
        "NANOPHOTO_BASE_URL": sim.base_url,
        "SEEDANCE15PRO_BASE_URL": sim.base_url,
        "NANOPHOTO_API_KEY": NANO_KEY,
        "SEEDANCE15PRO_API_KEY": SEED_KEY,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def settings(sim_env: dict[str, str], tmp_path: Path) -> Settings:
    return load_settings(db=tmp_path / "history.db", env={**os.environ, **sim_env})


@pytest.fixture
def live_settings(settings: Settings) -> Settings:
    """Against the simulator, with polls as fast as its renders and no hourly limit."""
    settings.polling = {"min_interval": 0.1, "target_latency": 0.3, "max_interval": 1.0,
                        "prior": (0.3, 1.0)}  # fmt: skip
    for provider in Provider:
        settings.providers[provider].requests_per_hour = None
    return settings


def run_cli(*argv: str, input: str | None = None) -> tuple[int, str, str]:
    """Run `seedance-tui ARGV...` in this process through click's CliRunner: (exit code,
    stdout, stderr). A bug's exception is raised, not turned into an exit code."""
    from click.testing import CliRunner

    from seedance_tui.cli import cli

    result = CliRunner().invoke(cli, list(argv), input=input, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One throwaway PostgreSQL server for the whole run (tests/pg_server.py), stopped
    when the run ends however it ends; skipped, saying so, only where no server binary
    (or no psycopg: the `postgres` extra, which the test extra pulls in) is found."""
    if find_bin() is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl) on this machine")
    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError:
        pytest.skip("psycopg is not installed: pip install -e '.[test]' (the postgres extra)")
    # Its processes carry a mark of their own: the per-test leftover check leaves the
    # session's server alone, the end-of-run check still finds it should it outlive us.
    server = PgServer.start(mark=os.environ[_RUN_VAR] + "/postgres")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(pg_server: PgServer) -> Iterator[str]:
    """A fresh, empty database of the session's server: its URL (dropped afterwards, so
    the server's folder stays small however many tests run)."""
    url = pg_server.create_database()
    yield url
    pg_server.drop_database(url)
