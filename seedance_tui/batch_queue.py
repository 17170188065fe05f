"""The batch queue: queued jobs sent one at a time, oldest first, within the rate budget.

Queued tasks (status `queued`, see `batch.py`) live in the history, so the queue survives
a restart; its pause flag is persisted there too (`queue_paused` in `app_state`), so
`seedance-tui queue pause` stops every dashboard and `watch` sharing the file. A job
waits for its key's budget *before* it is claimed: a stop while it waits leaves it queued.

`BatchQueue` is a `Background` worker of the engine (the session attaches it): the poll
loop kicks it at every turn, and it starts its submitter when there is queued work it
may send. The pause flag can be read and set without an engine (`is_paused`,
`set_paused`: the `queue` command opens the history only).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from .caps import CapExceeded
from .events import Notice, TaskChanged
from .models import BudgetKey, JobValidationError, TaskStatus
from .store import Store, StoreError, is_transient

if TYPE_CHECKING:
    from .engine import Engine

log = logging.getLogger(__name__)

PAUSED_STATE = "queue_paused"
# A job waiting for its key's budget looks again at least this often (a pause or a stop
# meanwhile takes effect by then).
WAIT_SLICE = 5.0


def is_paused(store: Store) -> bool:
    return store.get_state(PAUSED_STATE) == "1"


def set_paused(store: Store, paused: bool) -> None:
    """Persist the pause flag (every instance sharing the history obeys it)."""
    store.set_state(PAUSED_STATE, "1" if paused else "0")


class BatchQueue:
    """Submits the history's queued jobs through `engine` (see the module's docstring)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.store = engine.store
        self.settings = engine.settings
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        # provider → (until when its queued jobs wait, the cap that stopped them)
        self._capped: dict[str, tuple[float, CapExceeded]] = {}

    # -- what the faces use ------------------------------------------------------------

    def paused(self) -> bool:
        return is_paused(self.store)

    def pause(self) -> None:
        """Stop submitting queued jobs (a submission in flight finishes); persisted."""
        set_paused(self.store, True)
        self.engine.emit(Notice("information", "queue paused"))

    def resume(self) -> None:
        set_paused(self.store, False)
        self.engine.emit(Notice("information", "queue resumed"))
        self.engine.wake()

    def counts(self) -> dict[str, int]:
        """Queued jobs per provider."""
        return self.store.count_queued()

    async def stop(self) -> None:
        """Submit no further queued job; wait for the one being sent (quit gracefully)."""
        self._stopping = True
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    async def aclose(self) -> None:
        """Stop at once: a job being sent is cancelled (the ledger decides whether it
        left: `cancelled` or `orphaned`)."""
        self._stopping = True
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    # -- the engine's Background -------------------------------------------------------

    def busy(self) -> bool:
        if self._task is not None and not self._task.done():
            return True
        if self._stopping or self.paused():
            return False
        return self.store.next_queued(self._keyed_providers()) is not None

    def kick(self) -> None:
        """Start the submitter when there is queued work it may send."""
        if self._task is not None and not self._task.done():
            return
        if self.busy():
            self._task = asyncio.get_running_loop().create_task(self._drain())

    def capped(self) -> dict[str, CapExceeded]:
        """Providers whose queued jobs wait for a spending cap's period to end, and the
        cap that stopped them."""
        now = self.engine.clock()
        return {p: exc for p, (until, exc) in self._capped.items() if now < until}

    def _keyed_providers(self) -> list[str]:
        capped = self.capped()
        return [
            p.value
            for p in self.settings.providers
            if self.settings.key(p) and p.value not in capped
        ]

    def _stop_at_cap(self, exc: CapExceeded) -> None:
        """A queued job would pass a cap (the estimates were low, or other work spent
        meanwhile): the provider's queue waits until the cap's period ends."""
        self._capped[exc.provider.value] = (exc.window.end, exc)
        waiting = self.store.count_queued().get(exc.provider.value, 0)
        self.engine.emit(
            Notice(
                "warning",
                f"the queue stopped at a spending cap: {exc} "
                f"({waiting} {exc.provider.value} job(s) stay queued)",
                persistent=True,
                topic=f"cap:{exc.provider.value}",
            )
        )

    async def _drain(self) -> None:
        engine = self.engine
        try:
            while not self._stopping and not self.paused():
                task = self.store.next_queued(self._keyed_providers())
                if task is None:
                    return
                key = BudgetKey(task.provider, self.settings.key_fingerprint(task.provider))
                delay = engine.submit_delay(key)
                if delay > 0:
                    with engine.submission_waiting(key):
                        await engine.sleep(min(delay, WAIT_SLICE))
                    continue
                try:
                    claimed = self.store.claim_queued(
                        task.id, engine.clock(), engine.cap_windows([task.provider])
                    )
                except CapExceeded as exc:
                    self._stop_at_cap(exc)
                    continue
                except StoreError as exc:
                    if not is_transient(exc):
                        raise
                    await engine.sleep(engine.write_failed(exc))
                    continue
                if claimed is None:
                    continue  # another instance sharing the history took it
                try:
                    await engine.submit(claimed.spec, intent=claimed)
                except JobValidationError as exc:
                    refused = self.store.record_refusal(
                        claimed.id,
                        TaskStatus.REJECTED,
                        f"{exc.field}: {exc.message}",
                        engine.clock(),
                    )
                    engine.emit(TaskChanged(refused, TaskStatus.SUBMITTING))
                await asyncio.sleep(0)  # let a stop or pause requested meanwhile take effect
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the queue's trouble never stops the poll loop
            log.exception("queue submitter failed")
            engine.emit(Notice("error", f"the queue stopped: {type(exc).__name__}"))
        finally:
            engine.wake()
