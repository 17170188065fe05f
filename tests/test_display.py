"""Spans and ETAs on screen never raise, whatever the number: a late task is "overdue"."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from seedance_tui.models import Provider, Task, TaskStatus
from seedance_tui.store import Store
from seedance_tui.text import span
from seedance_tui.tui.detail import render_rest, render_task
from seedance_tui.tui.format import eta_text
from seedance_tui.tui.task_list import TaskList

ODD = [math.inf, -math.inf, math.nan, 1e300, -1e300, 2.0**63, 1e18]
any_float = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(ODD))


@given(any_float)
def test_span_never_raises_and_stays_short(seconds: float) -> None:
    text = span(seconds)
    assert isinstance(text, str) and 1 <= len(text) <= 6


def test_span_reads_as_before_for_ordinary_values_and_caps_the_rest() -> None:
    assert [span(x) for x in (-5, 0, 42, 65, 720, 7200, 3 * 86400)] == [
        "0s",
        "0s",
        "42s",
        "1m05s",
        "12m",
        "2h",
        "3d",
    ]
    assert span(math.inf) == span(1e300) == "999d+"
    assert span(math.nan) == "?"


@given(eta=any_float, now=st.floats(0, 4e9))
def test_the_eta_cell_never_raises(eta: float, now: float) -> None:
    text = eta_text(eta, now)
    assert len(text) <= 7
    if not math.isfinite(eta):
        assert text == "overdue"


def _task(now: float) -> Task:
    return Task(
        id="01JTESTTASK00000000000001",
        provider=Provider.NANOPHOTO,
        status=TaskStatus.PROCESSING,
        prompt="a lantern",
        params={"resolution": "720p", "duration": "8"},
        created_at=now - 1000,
        submitted_at=now - 1000,
    )


def row_plain(tasks: TaskList, task: Task, width: int, now: float) -> str:
    """The text of a task's row at `width` (its cells, no app needed)."""
    return " ".join(text for text, _style in tasks._row_cells(task, tasks._columns(width), now))


@given(eta=any_float)
def test_the_task_list_row_and_the_detail_pane_never_raise(eta: float) -> None:
    now = 1_750_000_000.0
    task = _task(now)
    tasks = TaskList(Store.__new__(Store), clock=lambda: now, eta=lambda task_id: eta)
    tasks._rendering = 1  # a task of the query renders: the eta column is there
    for width in (60, 100, 160, 240):
        line = row_plain(tasks, task, width, now)
        if width >= 160 and not math.isfinite(eta):
            assert "overdue" in line
    render_task(task, [], now=now, eta=eta, next_check=eta)


def test_an_overdue_task_shows_overdue_in_the_list() -> None:
    now = 1_750_000_000.0
    tasks = TaskList(Store.__new__(Store), clock=lambda: now, eta=lambda task_id: math.inf)
    tasks._rendering = 1  # a task of the query renders: the eta column is there
    assert row_plain(tasks, _task(now), 160, now).rstrip().endswith("overdue")


def test_the_detail_pane_renders_its_fields_and_timeline_once_per_width() -> None:
    """The fields below the timing row and the timeline are rendered once per width and
    shown as rendered at each tick: the same text and styles as rendering it all anew."""
    import io

    from rich.console import Console

    now = 1_750_000_000.0
    task = _task(now)
    events = [{"at": now - 990, "kind": "submitted", "status": "processing",
               "detail": "accepted " + "x" * 120}]  # fmt: skip
    rest = render_rest(task, events)
    for width in (60, 100):
        for moment in (now, now + 1, now + 61):
            shown = []
            for content in (render_task(task, events, now=moment, eta=now + 30, rest=rest),
                            render_task(task, events, now=moment, eta=now + 30)):  # fmt: skip
                console = Console(
                    width=width, record=True, file=io.StringIO(), color_system="truecolor"
                )
                console.print(content)
                shown.append(console.export_text(styles=True))
            assert shown[0] == shown[1]
            assert "running" in shown[0] and "timeline" in shown[0]
    assert sorted(rest._lines) == [60, 100]  # each width rendered once
