"""The demo feels live: a new demo job is first checked within seconds, not after the
real providers' 30 s target latency (the demo's simulator has no rate limit to save)."""

from __future__ import annotations

from pathlib import Path

import pytest

from seedance_tui.demo import DEMO_RENDER_SECONDS, start_demo
from seedance_tui.engine import make_scheduler
from seedance_tui.jobs import JobFields, build_spec, prepare
from seedance_tui.key_gate import budget_key
from seedance_tui.models import Provider
from seedance_tui.paths import config_path
from seedance_tui.scheduler import PollTarget
from seedance_tui.store import Store, profile_of


@pytest.mark.parametrize("provider", list(Provider))
def test_a_new_demo_job_is_first_checked_as_soon_as_a_render_can_be_done(
    tmp_path: Path, provider: Provider
):
    # The user's own [polling] (tuned for real providers) does not slow the demo down.
    config_path().parent.mkdir(parents=True, exist_ok=True)
    config_path().write_text("[polling]\ntarget_latency = 60\nmin_interval = 20\n")
    demo = start_demo(tmp_path / "demo.db")
    try:
        settings = demo.settings
        assert all(s.requests_per_hour is None for s in settings.providers.values())
        now = 5000.0
        scheduler = make_scheduler(settings, lambda: now)
        store = Store.open(settings.db_path)
        try:
            for profile, seconds in store.generation_history():  # as the engine's start does
                scheduler.learn(profile, seconds)
        finally:
            store.close()
        spec = prepare(build_spec(JobFields(prompt="a demo job", provider=provider.value),
                                  settings)).spec  # fmt: skip
        scheduler.track(PollTarget("new", budget_key(provider, "demo"),
                                   profile_of(provider.value, spec.params()), now))  # fmt: skip
        first = scheduler.next_check("new") - now
        fastest, slowest = DEMO_RENDER_SECONDS
        # Not before the fastest render could be done, and at most a few seconds after.
        assert fastest - 2 <= first <= fastest + 3, first
        # Then checked every few seconds while renders finish.
        now += first
        scheduler.on_poll_result("new", pending=True)
        assert scheduler.next_check("new") - now <= 3
    finally:
        demo.close()
