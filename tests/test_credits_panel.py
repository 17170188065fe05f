"""The credits panel: every line fits its width (80×24 gives it 32 cells), the wide
dashboard keeps the long wording, and the figures come from the history alone — the
panel fills even while the engine is not built yet, and says what it waits for until then.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from rich.cells import cell_len
from textual.app import App, ComposeResult
from textual.widgets import Sparkline, Static
from tui_helpers import (
    FIXED_NOW,
    KEYED_ENV,
    fixed_clock,
    seeded_settings_in,
    wait_until,
)

from seedance_tui.caps import CapStatus, Usage
from seedance_tui.config import Settings
from seedance_tui.models import Provider
from seedance_tui.scheduler import BudgetState
from seedance_tui.store import Store
from seedance_tui.tui.app import SeedanceApp
from seedance_tui.tui.credits import CreditsPanel
from seedance_tui.tui.dashboard import DashboardScreen

LINES = ("#credits-table", "#credits-caps", "#credits-chart-label", "#credits-budget",
         "#credits-queue")  # fmt: skip


@pytest.fixture
def seeded_settings(tmp_path: Path) -> Settings:
    """Keyed (each budget line is a budget, not "no key"), and the 48 demo tasks."""
    return seeded_settings_in(tmp_path, KEYED_ENV)


def shown_lines(panel: CreditsPanel) -> dict[str, list[str]]:
    """Each shown line of the panel's texts, by widget id."""
    lines = {}
    for selector in LINES:
        widget = panel.query_one(selector, Static)
        if widget.display and str(widget.content):
            lines[selector] = str(widget.content).split("\n")
    return lines


def assert_nothing_wraps(panel: CreditsPanel) -> None:
    """Each line fits the panel's width, and each text is as tall as its lines: no line
    was wrapped onto a second row."""
    width = panel.content_size.width
    for selector, lines in shown_lines(panel).items():
        too_long = [line for line in lines if cell_len(line) > width]
        assert not too_long, f"{selector}: wider than {width} cells: {too_long}"
        widget = panel.query_one(selector, Static)
        assert widget.size.height == len(lines), (
            f"{selector}: {len(lines)} lines shown on {widget.size.height} rows: {lines}"
        )


def credits_shown(app: App) -> bool:
    return "refunded" in str(app.screen.query_one("#credits-table", Static).content)


async def test_every_line_of_the_panel_fits_at_80x24(seeded_settings):
    app = SeedanceApp(seeded_settings, clock=fixed_clock, poll=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: credits_shown(app), "the credits summed")
        await app.workers.wait_for_complete()
        await pilot.pause()
        panel = app.screen.query_one(CreditsPanel)
        assert panel.content_size.width == 32
        assert_nothing_wraps(panel)
        lines = shown_lines(panel)
        table = "\n".join(lines["#credits-table"])
        assert "refunded 113 · held by pending 0" in table  # 32 cells: it just fits
        assert lines["#credits-chart-label"] == ["credits/day, 14 days, max 471"]
        assert panel.query_one("#credits-table", Static).size.height == 4


async def test_the_wide_dashboard_keeps_the_long_wording(seeded_settings):
    app = SeedanceApp(seeded_settings, clock=fixed_clock, poll=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, lambda: credits_shown(app), "the credits summed")
        await app.workers.wait_for_complete()
        await pilot.pause()
        panel = app.screen.query_one(CreditsPanel)
        assert_nothing_wraps(panel)
        lines = shown_lines(panel)
        assert "refunded 113 · held by pending 0" in lines["#credits-table"]
        assert "nanophoto" in lines["#credits-table"][1]
        assert lines["#credits-chart-label"] == ["credits/day, last 14 days, max 471"]
        assert any("requests left this hour" in line
                   for line in lines["#credits-budget"])  # fmt: skip


class SideColumn(App):
    """The panel alone at the side column's width on an 80-column screen (36)."""

    CSS = "CreditsPanel { width: 36; height: auto; border: round $border; padding: 0 1; }"

    def compose(self) -> ComposeResult:
        yield CreditsPanel()


def busy_summary() -> dict:
    """Every line at its longest: money at risk, caps near and at their limit."""
    row = {"today": 1234, "last_7_days": 23456, "all": 345678, "refunded": 4321,
           "held_by_pending": 9876, "at_risk_orphaned": 555}  # fmt: skip
    caps = {
        "nanophoto": {"daily": CapStatus("daily", 240, Usage(spent=200, held=12, at_risk=30))},
        "seedance15pro": {"monthly": CapStatus("monthly", 5000, Usage(spent=5000, held=130))},
    }
    per_day = {f"2026-11-{d:02}": {"nanophoto": d * 40} for d in range(1, 31)}
    return {"providers": {p.value: row for p in Provider}, "caps": caps, "per_day": per_day}


async def test_a_busy_panel_fits_the_side_column_and_keeps_every_figure():
    app = SideColumn()
    async with app.run_test(size=(80, 30)) as pilot:
        panel = app.query_one(CreditsPanel)
        panel.show_summary(busy_summary())
        deferred = BudgetState(limit=100, used=96, remaining=4, paused_until=None,
                               resets_at=None, tight=True, deferred=12)  # fmt: skip
        paused = BudgetState(limit=None, used=7, remaining=None, paused_until=FIXED_NOW,
                             resets_at=None)  # fmt: skip
        panel.show_budget({Provider.NANOPHOTO: deferred, Provider.SEEDANCE15PRO: paused})
        panel.show_queue({"nanophoto": 120, "seedance15pro": 3}, paused=True, key="Q")
        await pilot.pause()
        assert panel.content_size.width == 32
        assert_nothing_wraps(panel)
        text = "\n".join("\n".join(lines) for lines in shown_lines(panel).values())
        for figure in ("1234", "23456", "345678", "refunded 8642", "held 19752",
                       "at risk 1110", "242/240", "30", "5130/5000", "4/100", "12 checked later",
                       "paused", "123", "Q: resume", "max 1200"):  # fmt: skip
            assert figure in text, f"{figure!r} lost at 32 cells:\n{text}"


async def test_a_long_reason_a_key_waits_is_folded_not_cut():
    """What a key waits for says what to do: at the side column's width it is folded
    onto the next lines, none of it cut."""
    app = SideColumn()
    why = "cannot reach nanophoto.ai:443 (connection refused), retrying in 40 s"
    async with app.run_test(size=(80, 20)) as pilot:
        panel = app.query_one(CreditsPanel)
        state = BudgetState(limit=100, used=3, remaining=97, paused_until=None, resets_at=None)
        panel.show_budget({Provider.NANOPHOTO: state}, {Provider.NANOPHOTO: why})
        await pilot.pause()
        assert_nothing_wraps(panel)
        lines = shown_lines(panel)["#credits-budget"]
        assert lines[0] == "nano: " and " ".join(line.strip() for line in lines[1:]) == why


async def test_the_panel_takes_the_longer_wording_when_it_grows():
    app = SideColumn()
    async with app.run_test(size=(80, 20)) as pilot:
        panel = app.query_one(CreditsPanel)
        panel.show_summary(busy_summary())
        await pilot.pause()
        assert "held by pending" not in str(panel.query_one("#credits-table", Static).content)
        panel.styles.width = 60
        await wait_until(
            pilot,
            lambda: "held by pending 19752" in str(panel.query_one("#credits-table", Static).content),
            "the long wording at 56 cells",
        )  # fmt: skip
        assert_nothing_wraps(panel)


async def test_the_credits_fill_from_the_history_without_waiting_for_the_engine(
    seeded_settings, monkeypatch
):
    """The sums need the history only: with the engine never built (as while its HTTP
    stack is still being imported) the panel still fills; until the sums arrive it says
    what it waits for, with no chart drawn."""
    monkeypatch.setattr(DashboardScreen, "start_engine", lambda self: None)
    gate = threading.Event()
    summing = threading.Event()
    original = Store.credits_summary

    def held_summary(self, now):
        summing.set()
        gate.wait(30)
        return original(self, now)

    monkeypatch.setattr(Store, "credits_summary", held_summary)
    app = SeedanceApp(seeded_settings, clock=fixed_clock, poll=False)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_until(pilot, summing.is_set, "the credits being summed")
            panel = app.screen.query_one(CreditsPanel)
            assert "adding up the credits" in str(panel.query_one("#credits-table", Static).content)
            assert not panel.query_one("#credits-chart", Sparkline).display
            gate.set()
            await wait_until(pilot, lambda: credits_shown(app), "the credits summed")
            assert panel.query_one("#credits-chart", Sparkline).display
            assert app.screen.engine is None
    finally:
        gate.set()  # the worker thread ends, also when the test failed
