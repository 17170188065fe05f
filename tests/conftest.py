"""Shared fixtures: an isolated home for all state, and the simulator on loopback."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

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


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own config/data folders and no provider variables from outside."""
    for name in _STATE_VARS:
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    monkeypatch.setenv("SEEDANCE_TUI_HOME", str(home))
    # Tests that want these turn them back on: no downloads behind a test's back, and
    # never a developer's real OS keyring.
    monkeypatch.setenv("SEEDANCE_TUI_AUTO_DOWNLOAD", "0")
    monkeypatch.setenv("SEEDANCE_TUI_KEYRING", "0")
    return home


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
