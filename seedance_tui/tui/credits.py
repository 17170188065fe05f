"""The credits panel: what each provider's jobs cost, refunds, holds, a daily chart, budget."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Sparkline, Static

from ..caps import DAILY, MONTHLY, CapStatus, gauge
from ..models import Provider
from .format import PROVIDER_SHORT
from .unchanged import show_text

PERIOD_WORDS = {DAILY: "day", MONTHLY: "month"}

if TYPE_CHECKING:
    from ..scheduler import BudgetState


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
    ) -> None:
        """Each key's budget; `trouble` says why a key's requests wait (a host that cannot
        be reached, a 429's pause, a full disk), in place of its budget."""
        text = Text(no_wrap=True, overflow="ellipsis")
        for i, (provider, state) in enumerate(budgets.items()):
            if i:
                text.append("\n")
            text.append(f"{provider.value}: ")
            why = (trouble or {}).get(provider)
            if why:
                text.append(why, "bold red")
            elif state.paused_until is not None:
                text.append("paused by the server (429)", "bold red")
            elif state.limit is None:
                text.append(f"{state.used} requests this hour, no limit known", "dim")
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
