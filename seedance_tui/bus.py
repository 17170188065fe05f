"""The engine's listeners and what they are told: every event to every listener, and a
notice only when it is news.

One `Bus` per engine; the engine's parts (the ledger's notices, the key gate, the
poller, the recorder of outcomes) and the workers beside it (the auto-downloader, the
batch queue) all speak through it. A listener is called synchronously on the engine's
loop; one that raises is logged and skipped, never stops the engine.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

from .events import EngineEvent, Level, Listener, Notice, TaskChanged
from .models import Task, TaskStatus

log = logging.getLogger(__name__)


class Bus:
    def __init__(self, monotonic: Callable[[], float]) -> None:
        self.monotonic = monotonic
        self.listeners: list[Listener] = []
        self._said: dict[str, str] = {}  # topic → the last notice of it
        self._said_at: dict[str, float] = {}

    def subscribe(self, listener: Listener) -> None:
        self.listeners.append(listener)

    def emit(self, event: EngineEvent) -> None:
        for listener in list(self.listeners):
            try:
                listener(event)
            except Exception:  # a broken listener must not stop the engine
                log.exception("listener failed")

    def changed(self, task: Task, previous: TaskStatus | None = None) -> None:
        self.emit(TaskChanged(task, previous))

    def say(
        self,
        topic: str,
        level: Level | str,
        message: str,
        *,
        persistent: bool = False,
        every: float = 0.0,
    ) -> None:
        """A notice, unless it repeats the last one of its topic (or, with `every`, comes
        sooner than that after it)."""
        now = self.monotonic()
        if self._said.get(topic) == message:
            return
        if every and now - self._said_at.get(topic, -math.inf) < every:
            return
        self._said[topic], self._said_at[topic] = message, now
        self.emit(Notice(level, message, persistent=persistent, topic=topic))  # type: ignore[arg-type]


__all__ = ["Bus"]
