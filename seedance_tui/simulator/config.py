"""Behaviour knobs of the simulator: how long renders take, how often they fail, faults."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Every kind of injected fault, in the order the weights are listed by default.
FAULT_KINDS: tuple[str, ...] = (
    "rate_limit",  # 429 with Retry-After, in the provider's own error shape
    "server_error",  # 500 in the provider's own error shape
    "slow",  # answer delayed by `slow_seconds`, then answered normally
    "garbage",  # 200 with a body that is not JSON
    "reset",  # headers with a Content-Length, part of the body, then the connection drops
    "timeout",  # answer delayed by `timeout_seconds`, so that clients time out
    # Hostile answers (weight 0 unless asked for: see HOSTILE_KINDS):
    "absurd",  # the real answer with absurd numbers, wrong types, escapes, a bad video URL
    "drip",  # an answer dripped byte by byte over `drip_seconds`
    "huge",  # an answer declaring 50 MB, streamed until the client hangs up
)
HOSTILE_KINDS: tuple[str, ...] = ("absurd", "drip", "huge")

# Knobs that `POST /_sim/config` may change at runtime.
RUNTIME_FIELDS: frozenset[str] = frozenset(
    {
        "generation_time",
        "failure_rate",
        "fault_rate",
        "fault_kinds",
        "fault_after_accept",
        "slow_seconds",
        "timeout_seconds",
        "fault_retry_after",
        "drip_seconds",
        "media_fault_rate",
        "nanophoto_rate_limit",
        "seedance_rate_limit",
        "rate_window",
        "time_scale",
    }
)


def _default_fault_kinds() -> dict[str, float]:
    return {kind: 0.0 if kind in HOSTILE_KINDS else 1.0 for kind in FAULT_KINDS}


@dataclass
class SimConfig:
    """How the simulated providers behave. Every field has a sensible default."""

    # Seconds a render takes, drawn uniformly per task (reported as `generationTime`).
    generation_time: tuple[float, float] = (60.0, 180.0)
    # Share of accepted tasks whose render fails (and is refunded).
    failure_rate: float = 0.1
    # Seed of every random choice (task ids, outcomes, faults); None: a fresh random seed.
    seed: int | None = None

    # Share of API answers (generate and status) replaced by an injected fault.
    fault_rate: float = 0.0
    # Relative weights of the fault kinds (missing kinds weigh 0).
    fault_kinds: dict[str, float] = field(default_factory=_default_fault_kinds)
    # False: a faulted generate creates nothing. True: it creates and charges the task,
    # then answers with the fault (the ambiguous real-world case).
    fault_after_accept: bool = False
    slow_seconds: float = 2.0
    timeout_seconds: float = 35.0
    # Retry-After (seconds) sent with an injected 429.
    fault_retry_after: int = 2
    # How long a "drip" answer takes from its first byte to its last.
    drip_seconds: float = 60.0
    # Share of media downloads broken midway (headers sent, half the body, connection drops).
    media_fault_rate: float = 0.0

    # Requests per key per `rate_window` seconds (sliding window); None: no limit.
    nanophoto_rate_limit: int | None = 100
    seedance_rate_limit: int | None = None
    rate_window: float = 3600.0

    # None: any non-empty key is valid except those starting with "invalid".
    valid_keys: set[str] | None = None
    # Credits per key; None (or a key not listed): unlimited.
    balances: dict[str, int] | None = None

    # Renders run `time_scale` times faster than the generation time they report.
    time_scale: float = 1.0
    # The simulator's clock (epoch seconds); inject one to drive renders from a test.
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ValueError when a knob is out of range."""
        low, high = self.generation_time
        if not 0 <= low <= high:
            raise ValueError("generation_time must be (low, high) with 0 <= low <= high")
        for name in ("failure_rate", "fault_rate", "media_fault_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        unknown = set(self.fault_kinds) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds: {sorted(unknown)}")
        if any(w < 0 for w in self.fault_kinds.values()):
            raise ValueError("fault_kinds weights must be >= 0")
        if self.fault_rate > 0 and not any(self.fault_kinds.values()):
            raise ValueError("fault_rate > 0 needs at least one fault kind with a weight > 0")
        for name in (
            "slow_seconds",
            "timeout_seconds",
            "fault_retry_after",
            "rate_window",
            "drip_seconds",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        for name in ("nanophoto_rate_limit", "seedance_rate_limit"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1 or None")
        if self.time_scale <= 0:
            raise ValueError("time_scale must be > 0")

    def copy(self) -> SimConfig:
        """A copy whose mutable fields are not shared with this one."""
        return dataclasses.replace(
            self,
            fault_kinds=dict(self.fault_kinds),
            valid_keys=None if self.valid_keys is None else set(self.valid_keys),
            balances=None if self.balances is None else dict(self.balances),
        )

    def public(self) -> dict[str, Any]:
        """The runtime knobs as JSON (no keys, no balances, no clock)."""
        out: dict[str, Any] = {name: getattr(self, name) for name in sorted(RUNTIME_FIELDS)}
        out["generation_time"] = list(self.generation_time)
        out["fault_kinds"] = dict(self.fault_kinds)
        out["seed"] = self.seed
        return out

    def updated(self, changes: dict[str, Any]) -> SimConfig:
        """A validated copy with `changes` (runtime knobs only) applied."""
        unknown = set(changes) - RUNTIME_FIELDS
        if unknown:
            raise ValueError(f"cannot change {sorted(unknown)} at runtime")
        new = self.copy()
        for name, value in changes.items():
            if name == "generation_time":
                if not isinstance(value, list | tuple) or len(value) != 2:
                    raise ValueError("generation_time must be [low, high]")
                value = (float(value[0]), float(value[1]))
            elif name == "fault_kinds":
                if not isinstance(value, dict):
                    raise ValueError("fault_kinds must be an object of weights")
                value = {str(k): float(v) for k, v in value.items()}
            setattr(new, name, value)
        new.validate()
        return new
