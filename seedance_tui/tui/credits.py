"""The credits panel (what each provider's jobs cost, refunds, holds, each spending cap
with a gauge, a daily chart, the budget) and what keeps it current (`CreditsFlow`)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Sparkline, Static

from ..caps import DAILY, MONTHLY, CapStatus, gauge
from ..caps import report as caps_report
from ..models import Provider
from ..text import plural
from .format import PROVIDER_SHORT
from .key_dialog import missing_keys
from .keys import APP_BINDINGS, effective_keys
from .messages import CreditsComputed
from .unchanged import show_text

PERIOD_WORDS = {DAILY: "day", MONTHLY: "month"}

if TYPE_CHECKING:
    from ..scheduler import BudgetState
    from .dashboard import DashboardScreen

RECOUNT_DELAY = 1.0  # a recount scans the history: at most one a second
BUDGET_EVERY = 5.0  # seconds between two budget lines while nothing is answered


class CreditsPanel(Vertical):
    def compose(self) -> ComposeResult:
        yield Static(id="credits-table")
        caps = Static(id="credits-caps")
        caps.display = False  # until a provider has a spending cap
        yield caps
        yield Sparkline([0], id="credits-chart")
        yield Static(id="credits-chart-label")
        yield Static(id="credits-budget")
        queue = Static(id="credits-queue")
        queue.display = False  # until there is a queue to show
        yield queue

    def show_summary(self, summary: dict) -> None:
        providers = summary.get("providers", {})
        table = Text(no_wrap=True, overflow="ellipsis")
        table.append(f"{'':<13}{'today':>6}{'7 days':>7}{'all':>6}\n", "bold")
        totals = {"refunded": 0, "held": 0, "risk": 0}
        for provider in Provider:
            row = providers.get(provider.value, {})
            table.append(f"{provider.value:<13}")
            table.append(f"{row.get('today', 0):>6}{row.get('last_7_days', 0):>7}")
            table.append(f"{row.get('all', 0):>6}\n")
            totals["refunded"] += row.get("refunded", 0)
            totals["held"] += row.get("held_by_pending", 0)
            totals["risk"] += row.get("at_risk_orphaned", 0)
        table.append(f"refunded {totals['refunded']}", "green")
        table.append(f" · held by pending {totals['held']}")
        if totals["risk"]:
            table.append(f" · at risk {totals['risk']}", "magenta")
        show_text(self.query_one("#credits-table", Static), table)
        self.show_caps(summary.get("caps", {}))
        per_day = summary.get("per_day", {})
        values = [sum(day.values()) for day in per_day.values()] or [0]
        self.query_one("#credits-chart", Sparkline).data = values
        days = len(values)
        label = Text(no_wrap=True, overflow="ellipsis", style="dim")
        label.append(f"credits/day, last {days} days, max {max(values)}")
        show_text(self.query_one("#credits-chart-label", Static), label)

    def show_caps(self, caps: dict[str, dict[str, CapStatus]]) -> None:
        """Each spending cap in two lines: a gauge and what is used of the cap (a warning
        past 80 % of it), then spent, held, at risk and left."""
        text = Text(no_wrap=True, overflow="ellipsis")
        for provider, periods in caps.items():
            for period, status in periods.items():
                if text:
                    text.append("\n")
                style = "bold red" if status.left == 0 else "yellow" if status.warning else "green"
                usage = status.usage
                text.append(f"{PROVIDER_SHORT[Provider(provider)]} {PERIOD_WORDS[period]:<5} ")
                text.append(gauge(status.share, 8), style)
                text.append(f" {usage.total}/{status.cap}")
                if status.warning:
                    text.append(" ⚠ >80%", "bold yellow")
                text.append(f"\n  spent {usage.spent} · held {usage.held}", "dim")
                if usage.at_risk:
                    text.append(f" · at risk {usage.at_risk}", "magenta")
                text.append(f" · left {status.left}", "dim")
        widget = self.query_one("#credits-caps", Static)
        show_text(widget, text)
        widget.display = bool(text)

    def show_budget(
        self,
        budgets: dict[Provider, BudgetState],
        trouble: dict[Provider, str | None] | None = None,
        no_key: dict[Provider, str] | None = None,
    ) -> None:
        """Each key's budget; `trouble` says why a key's requests wait (a host that cannot
        be reached, a 429's pause, a full disk), in place of its budget; `no_key`: the
        providers with no key, each with the key that adds one (no budget to claim)."""
        text = Text(no_wrap=True, overflow="ellipsis")
        for i, (provider, state) in enumerate(budgets.items()):
            if i:
                text.append("\n")
            text.append(f"{provider.value}: ")
            why = (trouble or {}).get(provider)
            if no_key and provider in no_key:
                text.append("no key", "bold yellow")
                if no_key[provider]:
                    text.append(f" (press {no_key[provider]})", "dim")
            elif why:
                text.append(why, "bold red")
            elif state.paused_until is not None:
                text.append("paused by the server (429)", "bold red")
            elif state.limit is None:
                text.append(f"{plural(state.used, 'request')} this hour, no limit known", "dim")
            else:
                style = "bold red" if not state.remaining else ""
                text.append(f"{state.remaining}/{state.limit} requests left this hour", style)
                if state.deferred:
                    # Tasks checked rarely so that the others are still seen in time.
                    text.append(f" · {state.deferred} checked later to save budget", "yellow")
        show_text(self.query_one("#credits-budget", Static), text)

    def show_queue(self, counts: dict[str, int], paused: bool, key: str = "") -> None:
        """The batch queue: how many jobs wait, and whether it is paused (and the key)."""
        waiting = sum(counts.values())
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append("queue: ", "bold")
        text.append(f"{waiting} queued")
        if paused:
            text.append(" · paused", "bold yellow")
        elif waiting:
            text.append(" · sending", "cyan")
        if key:
            text.append(f"  ({key}: {'resume' if paused else 'pause'})", "dim")
        queue = self.query_one("#credits-queue", Static)
        show_text(queue, text)
        queue.display = bool(waiting or paused)


class CreditsFlow:
    """Keeps the dashboard's credits panel current: the sums recounted in a thread worker
    of the dashboard (group "credits", exclusive) a moment after credits changed, one
    recount for a burst; the budget line at the dashboard's tick once requests were
    answered (`budget_due`), else every BUDGET_EVERY seconds (its hourly window
    slides). Working out the budgets costs the engine its plan: never once per update."""

    def __init__(self, screen: DashboardScreen, panel: CreditsPanel) -> None:
        self.screen = screen
        self.panel = panel
        self.budget_due = False
        self._budget_shown_at = 0.0  # time.monotonic() of the last budget line
        self._timer = None

    def recount_soon(self) -> None:
        if self._timer is None:
            self._timer = self.screen.set_timer(RECOUNT_DELAY, self._recount_due)

    def _recount_due(self) -> None:
        self._timer = None
        self.recount()

    def recount(self) -> None:
        self.screen.run_worker(self._sum, name="credits", group="credits", thread=True,
                               exclusive=True, exit_on_error=False)  # fmt: skip

    def _sum(self) -> None:
        """Sum credits on a connection of this thread's own: it scans the whole history."""
        screen = self.screen
        store = screen.store.reader()  # the history's own kind: a file's, or a database's
        if store is None:
            return
        try:
            now = screen.clock()
            summary = store.credits_summary(now)
            summary["caps"] = caps_report(Provider, screen.settings.cap_windows,
                                          store.spending, now)  # fmt: skip
        finally:
            store.close()
        screen.post_message(CreditsComputed(summary))

    def tick(self) -> None:
        if self.budget_due or time.monotonic() - self._budget_shown_at >= BUDGET_EVERY:
            self.show_budget()

    def show_budget(self) -> None:
        screen = self.screen
        engine = screen.engine
        if engine is None:
            return
        self.budget_due = False
        self._budget_shown_at = time.monotonic()
        budgets = engine.budgets()
        add_key = self.key_for("set_key")
        self.panel.show_budget(
            {p: b.state for p, b in budgets.items()},
            {p: b.trouble for p, b in budgets.items()},
            {p: add_key for p in missing_keys(screen.settings)},
        )
        queue = screen.session.queue
        if queue is not None:
            self.panel.show_queue(queue.counts(), queue.paused(), self.key_for("toggle_queue"))

    def key_for(self, action: str) -> str:
        """How the footer writes the (possibly rebound) key of an action."""
        overrides = self.screen.dashboard_app.keymap_overrides
        for binding in APP_BINDINGS:
            if binding.action == action:
                keys = effective_keys(binding, overrides)
                return self.screen.app.get_key_display(binding.with_key(keys[0])) if keys else ""
        return ""
