"""The credits panel (what each provider's jobs cost, refunds, holds, each spending cap
with a gauge, a daily chart, the budget) and what keeps it current (`CreditsFlow`)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from rich.cells import cell_len
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Sparkline, Static

from ..caps import DAILY, MONTHLY, CapStatus, gauge
from ..caps import report as caps_report
from ..models import Provider
from ..text import plural
from .format import PROVIDER_SHORT, fitting
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


def fitting_lines(variants: list[Text], split: list[Text], width: int) -> list[Text]:
    """One line, the first of `variants` that fits; else `split`, the same figures over
    more lines (each fitted), so that none is cut off."""
    if width <= 0 or any(v.cell_len <= width for v in variants):
        return [fitting(variants, width)]
    return [fitting([line], width) for line in split]


def _styled(*parts: tuple[str, str]) -> Text:
    text = Text()
    for words, style in parts:
        text.append(words, style)
    return text


def _lines(lines: list[Text]) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    for i, line in enumerate(lines):
        if i:
            text.append("\n")
        text.append_text(line)
    return text


class CreditsPanel(Vertical):
    """Every line fits the panel's width: each is written in the longest wording that
    fits (at 80 columns the panel has 32), and written again when the width changes.
    Until the history's sums arrive the panel says that it is adding them up."""

    COUNTING = "adding up the credits…"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # What was shown last, to show again at a new width.
        self._summary: dict | None = None
        self._caps: dict[str, dict[str, CapStatus]] = {}
        self._budget: tuple[dict, dict | None, dict | None] | None = None
        self._queue: tuple[dict[str, int], bool, str] | None = None
        self._width = 0

    def compose(self) -> ComposeResult:
        yield Static(Text(self.COUNTING, style="dim"), id="credits-table")
        caps = Static(id="credits-caps")
        caps.display = False  # until a provider has a spending cap
        yield caps
        chart = Sparkline([0], id="credits-chart")
        chart.display = False  # until the sums arrive: an empty chart draws full bars
        yield chart
        yield Static(id="credits-chart-label")
        yield Static(id="credits-budget")
        queue = Static(id="credits-queue")
        queue.display = False  # until there is a queue to show
        yield queue

    @property
    def summary(self) -> dict | None:
        """The sums shown (None: not arrived yet)."""
        return self._summary

    @property
    def line_width(self) -> int:
        """The cells a line of the panel has (0 before the first layout)."""
        return self.content_size.width

    def on_resize(self) -> None:
        if self.line_width != self._width:
            self._width = self.line_width
            if self._summary is not None:
                self.show_summary(self._summary)
            if self._budget is not None:
                self.show_budget(*self._budget)
            if self._queue is not None:
                self.show_queue(*self._queue)

    def show_summary(self, summary: dict) -> None:
        self._summary = summary
        width = self.line_width
        providers = summary.get("providers", {})
        columns = {"today": "today", "last_7_days": "7 days", "all": "all"}
        figures = {p: {c: str(providers.get(p.value, {}).get(c, 0)) for c in columns}
                   for p in Provider}  # fmt: skip
        # Each column as wide as its widest figure with a space before it, at least
        # as wide as when the figures are small.
        least = {"today": 6, "last_7_days": 7, "all": 6}
        widths = {c: max(least[c], 1 + max(len(f[c]) for f in figures.values()))
                  for c in columns}  # fmt: skip
        numbers = sum(widths.values())
        name_width = 13 if width <= 0 or 13 + numbers <= width else 5
        names = {p: p.value if name_width == 13 else PROVIDER_SHORT[p] for p in Provider}
        lines = [Text("".ljust(name_width) + "".join(h.rjust(widths[c]) for c, h in columns.items()),
                      "bold")]  # fmt: skip
        for provider in Provider:
            lines.append(Text(names[provider].ljust(name_width)
                              + "".join(figures[provider][c].rjust(widths[c]) for c in columns)))  # fmt: skip
        totals = {"refunded": 0, "held": 0, "risk": 0}
        for provider in Provider:
            row = providers.get(provider.value, {})
            totals["refunded"] += row.get("refunded", 0)
            totals["held"] += row.get("held_by_pending", 0)
            totals["risk"] += row.get("at_risk_orphaned", 0)
        refunded = (f"refunded {totals['refunded']}", "green")
        risk = [(" · ", ""), (f"at risk {totals['risk']}", "magenta")] if totals["risk"] else []
        lines += fitting_lines(
            [_styled(refunded, (f" · held by pending {totals['held']}", ""), *risk),
             _styled(refunded, (f" · held {totals['held']}", ""), *risk)],
            # Too narrow for all in one line: the money at risk gets its own.
            [_styled(refunded, (f" · held {totals['held']}", "")), _styled(*risk[1:])],
            width,
        )  # fmt: skip
        show_text(self.query_one("#credits-table", Static), _lines(lines))
        self.show_caps(summary.get("caps", {}))
        per_day = summary.get("per_day", {})
        values = [sum(day.values()) for day in per_day.values()] or [0]
        chart = self.query_one("#credits-chart", Sparkline)
        chart.data = values
        chart.display = True
        days, most = len(values), max(values)
        label = fitting([
            Text(f"credits/day, last {days} days, max {most}", "dim"),
            Text(f"credits/day, {days} days, max {most}", "dim"),
            Text(f"per day, {days} d, max {most}", "dim"),
        ], width)  # fmt: skip
        show_text(self.query_one("#credits-chart-label", Static), _lines([label]))

    def show_caps(self, caps: dict[str, dict[str, CapStatus]]) -> None:
        """Each spending cap in two lines: a gauge and what is used of the cap (a warning
        past 80 % of it), then spent, held, at risk and left."""
        self._caps = caps
        width = self.line_width
        lines: list[Text] = []
        for provider, periods in caps.items():
            for period, status in periods.items():
                style = "bold red" if status.left == 0 else "yellow" if status.warning else "green"
                usage = status.usage
                head = f"{PROVIDER_SHORT[Provider(provider)]} {PERIOD_WORDS[period]:<5} "
                used = f" {usage.total}/{status.cap}"
                warning = [(" ⚠ >80%", "bold yellow")] if status.warning else []
                lines.append(fitting([
                    _styled((head, ""), (gauge(status.share, cells), style), (used, ""), *warning)
                    for cells in (8, 6, 4)
                ] + [_styled((head, ""), (used.lstrip(), ""), *warning)], width))  # fmt: skip
                risk = (
                    [(" · ", "dim"), (f"at risk {usage.at_risk}", "magenta")]
                    if usage.at_risk
                    else []
                )
                lines += fitting_lines([
                    _styled((f"  spent {usage.spent} · held {usage.held}", "dim"), *risk,
                            (f" · left {status.left}", "dim")),
                    _styled((f"  {usage.spent} spent · {usage.held} held", "dim"), *risk,
                            (f" · {status.left} left", "dim")),
                ], [
                    _styled((f"  spent {usage.spent} · held {usage.held} · left {status.left}", "dim")),
                    _styled(("  ", ""), *risk[1:]),
                ], width)  # fmt: skip
        widget = self.query_one("#credits-caps", Static)
        show_text(widget, _lines(lines))
        widget.display = bool(lines)

    def show_budget(
        self,
        budgets: dict[Provider, BudgetState],
        trouble: dict[Provider, str | None] | None = None,
        no_key: dict[Provider, str] | None = None,
    ) -> None:
        """Each key's budget; `trouble` says why a key's requests wait (a host that cannot
        be reached, a 429's pause, a full disk), in place of its budget; `no_key`: the
        providers with no key, each with the key that adds one (no budget to claim). A
        reason too long for the width wraps: it says what to do, so none of it is cut."""
        self._budget = (budgets, trouble, no_key)
        width = self.line_width
        text = Text(overflow="fold")
        for i, (provider, state) in enumerate(budgets.items()):
            if i:
                text.append("\n")
            names = (f"{provider.value}: ", f"{PROVIDER_SHORT[provider]}: ")
            why = (trouble or {}).get(provider)
            if no_key and provider in no_key:
                press = f" (press {no_key[provider]})" if no_key[provider] else ""
                variants = [_styled((name, ""), ("no key", "bold yellow"), (press, "dim"))
                            for name in names]  # fmt: skip
            elif why:
                text.append_text(_reason(names, why, width))
                continue
            elif state.paused_until is not None:
                variants = [
                    _styled((name, ""), (words, "bold red"))
                    for name in names
                    for words in ("paused by the server (429)", "paused (429)")
                ]
            elif state.limit is None:
                used = plural(state.used, "request")
                variants = [_styled((name, ""), (words, "dim")) for name in names for words in
                            (f"{used} this hour, no limit known", f"{used} this hour, no limit",
                             f"{state.used} req/hour, no limit")]  # fmt: skip
            else:
                style = "bold red" if not state.remaining else ""
                left = f"{state.remaining}/{state.limit}"
                variants = [_styled((name, ""), (words, style)) for name in names for words in
                            (f"{left} requests left this hour", f"{left} left this hour",
                             f"{left} left/hour")]  # fmt: skip
            line = fitting(variants, width)
            text.append_text(line)
            if state.limit is not None and state.paused_until is None and state.deferred:
                # Tasks checked rarely so that the others are still seen in time.
                later = [Text(f" · {state.deferred} checked later to save budget", "yellow"),
                         Text(f" · {state.deferred} checked later", "yellow")]  # fmt: skip
                room = width - line.cell_len if width > 0 else 0
                extra = fitting(later, room) if width <= 0 or room >= later[-1].cell_len else None
                if extra is not None:
                    text.append_text(extra)
                else:
                    text.append("\n")
                    text.append_text(fitting([Text(t.plain.lstrip(" ·"), "yellow") for t in later],
                                             width))  # fmt: skip
        show_text(self.query_one("#credits-budget", Static), text)

    def show_queue(self, counts: dict[str, int], paused: bool, key: str = "") -> None:
        """The batch queue: how many jobs wait, and whether it is paused (and the key)."""
        self._queue = (counts, paused, key)
        waiting = sum(counts.values())
        state = []
        if paused:
            state = [(" · paused", "bold yellow")]
        elif waiting:
            state = [(" · sending", "cyan")]
        hint = [(f"  ({key}: {'resume' if paused else 'pause'})", "dim")] if key else []
        short_hint = [(f" ({key}: {'resume' if paused else 'pause'})", "dim")] if key else []
        line = fitting([
            _styled(("queue: ", "bold"), (f"{waiting} queued", ""), *state, *hint),
            _styled(("queue: ", "bold"), (f"{waiting} queued", ""), *state, *short_hint),
            _styled(("queue: ", "bold"), (f"{waiting}", ""), *state, *short_hint),
            _styled(("queue: ", "bold"), (f"{waiting}", ""), *state),
        ], self.line_width)  # fmt: skip
        queue = self.query_one("#credits-queue", Static)
        show_text(queue, _lines([line]))
        queue.display = bool(waiting or paused)


def _reason(names: tuple[str, str], why: str, width: int) -> Text:
    """A key's trouble: on its line when it fits, else the short name and the reason
    folded onto the next lines at the width (all of it: it says what to do)."""
    for name in names:
        if width <= 0 or cell_len(name + why) <= width:
            return _styled((name, ""), (why, "bold red"))
    folded = Text(names[1])
    for line in Text(why, "bold red").wrap(_console(), width):
        folded.append("\n")
        folded.append_text(line)
    return folded


def _console():
    from rich.console import Console

    return Console(width=10**4)


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
        if store is None:  # a history in memory, seen by its own handle only: summed there
            screen.app.call_from_thread(self._sum_with, screen.store)
            return
        try:
            self._sum_with(store)
        finally:
            store.close()

    def _sum_with(self, store) -> None:
        screen = self.screen
        now = screen.clock()
        summary = store.credits_summary(now)
        summary["caps"] = caps_report(Provider, screen.settings.cap_windows,
                                      store.spending, now)  # fmt: skip
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
