"""A faithful fake of both Seedance 1.5 Pro provider APIs, served on loopback.

    from seedance_tui.simulator import SimConfig, SimulatorServer
    with SimulatorServer(SimConfig(generation_time=(0.2, 0.5), seed=1)) as sim:
        ...  # point the client at sim.base_url; inspect sim.base_url + "/_sim/ledger"

Paths: nanophoto `POST /api/seedance-1-5-pro/{generate,check-status}`; seedance15pro
`POST /api/generate`, `GET|POST /api/status`; videos at `/media/<task_id>.mp4`;
introspection under `/_sim/` (tasks, ledger, config, next, advance, reset).
"""

from .app import create_app
from .config import FAULT_KINDS, SimConfig
from .server import SimulatorServer, check_loopback, serve
from .state import SimState, SimTask

__all__ = [
    "FAULT_KINDS",
    "SimConfig",
    "SimState",
    "SimTask",
    "SimulatorServer",
    "check_loopback",
    "create_app",
    "serve",
]
