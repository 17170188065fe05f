"""A poll is claimed in the history before it is sent (one poller per task across every
instance sharing the file). A claim held by a poller that was killed ends with it, and a
claim that cannot be had is tried again later, not in a loop that burns a core."""

from __future__ import annotations

import asyncio
import sys
import time

from processes import wait_for

from seedance_tui.engine import CLAIM_RETRY, Engine
from seedance_tui.models import JobSpec, Provider, Task, TaskStatus
from seedance_tui.store import Store, new_task_id
from seedance_tui.store.lifecycle import TAKEOVER_TRANSIT

HOLD_A_CLAIM = """
import sys, time
from seedance_tui.store import Store
store = Store.open(sys.argv[1])
assert store.claim_poll(sys.argv[2], time.time(), 0.0)
print("claimed", flush=True)
sys.stdin.read()  # hold it until killed
"""


def processing_task(store: Store) -> Task:
    now = time.time()
    id = new_task_id(now)
    task = Task(id=id, provider=Provider.NANOPHOTO, status=TaskStatus.PROCESSING,
                prompt="a lighthouse", params={"mode": "text-to-video"}, created_at=now,
                task_id="task_" + id, credits_estimated=4, submitted_at=now)  # fmt: skip
    store.insert_task(task)
    return task


def test_a_claim_ends_with_its_poller_killed_on_this_machine(tmp_path, processes):
    import subprocess

    db = tmp_path / "h.db"
    store = Store.open(db)
    task = processing_task(store)
    holder = processes.spawn(
        [sys.executable, "-c", HOLD_A_CLAIM, str(db), task.id],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout.readline() == "claimed\n"
    assert not store.claim_poll(task.id, time.time(), 0.0)  # its poller is alive
    processes.kill(holder)
    # Gone: its claim went with it, once its request had time to reach the server.
    later = time.time() + TAKEOVER_TRANSIT
    assert store.claim_poll(task.id, later, 0.0)
    assert not store.claim_poll(task.id, time.time(), 0.0)  # and now it is ours
    store.close()


async def test_a_poll_claimed_elsewhere_is_tried_again_later_not_at_once(live_settings, sim):
    store = Store.open(live_settings.db_path)
    engine = Engine(live_settings, store)
    task = await engine.submit(JobSpec(Provider.NANOPHOTO, "a heron in fog"))
    assert task.status is TaskStatus.PROCESSING
    other = Store.open(live_settings.db_path)  # another instance: its poll is in flight
    assert other.claim_poll(task.id, time.time(), 0.0)
    claims: list[tuple[float, bool]] = []
    claim_poll = store.claim_poll

    def counted(id: str, now: float, *args, **kwargs) -> bool:
        claims.append((now, claim := claim_poll(id, now, *args, **kwargs)))
        return claim

    store.claim_poll = counted  # type: ignore[method-assign]
    loop = asyncio.create_task(engine.run())
    try:
        deadline = time.monotonic() + 30
        while not claims:
            assert time.monotonic() < deadline, "the engine never tried to claim the poll"
            await asyncio.sleep(0.01)
        refused_at, claimed = claims[0]
        assert not claimed
        # Handed out again no sooner than CLAIM_RETRY: the loop sleeps meanwhile. (The
        # engine's wall-clock view of its monotonic schedule: equal to within clock jitter.)
        assert engine.next_check(task.id) >= refused_at + CLAIM_RETRY - 0.01
        assert len(claims) == 1
        other.release_poll(task.id, time.time() - 60)  # that poll ended long ago
        deadline = time.monotonic() + 30
        while store.get(task.id).status is TaskStatus.PROCESSING:
            assert time.monotonic() < deadline, "the engine never polled the task"
            await asyncio.sleep(0.05)
        assert [c for _, c in claims].count(True) >= 1
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
        await engine.aclose()
        other.close()


def test_wait_for_names_what_did_not_happen():
    import pytest

    with pytest.raises(pytest.fail.Exception, match="not within 0.1 s: the moon rose"):
        wait_for(lambda: False, "the moon rose", seconds=0.1)
