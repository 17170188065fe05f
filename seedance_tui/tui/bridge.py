"""The engine seen from the dashboard: started once, its events turned into messages.

The engine calls its listeners on the app's loop, synchronously; `EngineBridge.on_event`
only posts messages to the dashboard screen, whose `@on` handlers change widgets. What
the screen asks of a pending task (its expected finish, next check, why it waits) goes
through the engine's face API, never its scheduler.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

from ..events import DownloadProgress as EngineDownloadProgress
from ..events import EngineEvent, Notice, TaskChanged
from .downloads import Downloads
from .messages import DownloadProgress, EngineNotice, TaskUpdated

if TYPE_CHECKING:
    from textual.dom import DOMNode

    from ..engine import Engine
    from ..session import Session


# How long a task's expected finish is reused: every pending row in view asks for it at
# each repaint, and the engine works it out from its plan each time.
ETA_REUSE = 1.0


class EngineBridge:
    def __init__(self, session: Session, downloads: Downloads, *, poll: bool) -> None:
        """`poll=False` builds the engine but leaves its loop stopped (snapshots,
        benchmarks)."""
        self.session = session
        self.downloads = downloads
        self.poll = poll
        self.engine: Engine | None = None
        self._target: DOMNode | None = None
        self._etas: dict[str, float | None] = {}
        self._etas_at = 0.0  # time.monotonic() when _etas was started

    def start(self, target: DOMNode) -> Engine:
        """Once: build the engine, listen to it, and run its loop in a worker of
        `target` (group "engine"), to which its messages go."""
        if self.engine is not None:
            return self.engine
        self._target = target
        self.engine = self.session.start_engine()
        self.engine.subscribe(self.on_event)
        if self.poll:
            target.run_worker(self.engine.run(), name="engine", group="engine",
                              exit_on_error=False)  # fmt: skip
        return self.engine

    def on_event(self, event: EngineEvent) -> None:
        """Called by the engine on the app's loop, synchronously: post, touch no widget."""
        target = self._target
        if target is None:
            return
        if isinstance(event, TaskChanged):
            self._etas.pop(event.task.id, None)
            target.post_message(TaskUpdated(event.task, event.previous, external=event.external))
        elif isinstance(event, Notice):
            target.post_message(EngineNotice(event.level, event.message,
                                             persistent=event.persistent))  # fmt: skip
        elif isinstance(event, EngineDownloadProgress) and self.downloads.due(
            event.task_id, event.done, event.total
        ):
            target.post_message(DownloadProgress(event.task_id, event.done, event.total, auto=True))

    # -- what the dashboard shows of a pending task --------------------------------------

    def eta(self, task_id: str) -> float | None:
        """A pending task's expected finish; infinity for one past its likely finish
        (the list and the detail pane say "overdue"); None before the engine runs."""
        if self.engine is None:
            return None
        now = time.monotonic()
        if now - self._etas_at >= ETA_REUSE:
            self._etas.clear()
            self._etas_at = now
        if task_id not in self._etas:
            overdue = self.engine.overdue(task_id)
            self._etas[task_id] = math.inf if overdue else self.engine.eta(task_id)
        return self._etas[task_id]

    def next_check(self, task_id: str) -> float | None:
        return self.engine.next_check(task_id) if self.engine is not None else None

    def waiting_reason(self, task_id: str) -> str | None:
        return self.engine.waiting_reason(task_id) if self.engine is not None else None
