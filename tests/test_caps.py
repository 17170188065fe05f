"""The rule of what counts against a spending cap (caps.py): pure, on fixed clocks and
fixed time zones, either side of local midnight."""

from __future__ import annotations

import datetime as dt
import time
from zoneinfo import ZoneInfo

import pytest

from seedance_tui import caps
from seedance_tui.caps import DAILY, MONTHLY, CapExceeded, Caps, Usage, Window
from seedance_tui.models import Provider

AUCKLAND = ZoneInfo("Pacific/Auckland")


def at(tz: dt.tzinfo, *parts: int) -> float:
    return dt.datetime(*parts, tzinfo=tz).timestamp()


@pytest.fixture
def local_tz(monkeypatch: pytest.MonkeyPatch):
    """The process's own zone set to TZ for the test, put back after."""

    def use(name: str) -> None:
        monkeypatch.setenv("TZ", name)
        time.tzset()

    yield use
    monkeypatch.undo()
    time.tzset()


# -- what counts -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "charged_net", "estimated", "expected"),
    [
        ("completed", 16, 0, Usage(spent=16)),
        ("completed", 0, 8, Usage(spent=8)),  # no charge reported: the estimate
        ("failed", 0, 0, Usage()),  # refunded
        ("processing", 16, 8, Usage(held=24)),  # a reported charge, else the estimate
        ("submitting", 0, 130, Usage(held=130)),
        ("orphaned", 0, 16, Usage(at_risk=16)),  # counts at its estimate until settled
        ("orphaned", 12, 0, Usage(spent=12)),  # settled (or charged) at 12
        ("orphaned", 0, 0, Usage()),  # settled: nothing charged
        ("cancelled", 0, 16, Usage()),  # nothing was sent
        ("rejected", 0, 16, Usage()),
        ("queued", 0, 16, Usage()),  # counted when it leaves the queue
    ],
)
def test_what_each_status_counts(status, charged_net, estimated, expected) -> None:
    assert caps.counted(status, charged_net, estimated) == expected


def test_usage_adds_every_row_and_its_total_is_spent_held_and_at_risk() -> None:
    usage = caps.usage_of(
        [("completed", 16, None), ("processing", None, 8), ("orphaned", 0, 4), ("cancelled", 0, 99)]
    )
    assert usage == Usage(spent=16, held=8, at_risk=4)
    assert usage.total == 28


def test_zero_or_absent_is_no_cap() -> None:
    assert not Caps.of(0, None)
    assert Caps.of(0, 100) == Caps(None, 100)
    assert caps.windows(Provider.NANOPHOTO, Caps.of(0, 0), 1_800_000_000.0) == ()


# -- local calendar periods ----------------------------------------------------------------


@pytest.mark.parametrize("zone", ["given", "process"])
def test_the_day_turns_at_local_midnight_in_auckland(zone, local_tz) -> None:
    tz: dt.tzinfo | None = AUCKLAND
    if zone == "process":
        local_tz("Pacific/Auckland")
        tz = None
    before = at(AUCKLAND, 2027, 1, 15, 23, 59, 59)  # 10:59:59 UTC on the 15th
    after = at(AUCKLAND, 2027, 1, 16, 0, 0, 1)
    day_before = caps.period_bounds(DAILY, before, tz)
    day_after = caps.period_bounds(DAILY, after, tz)
    assert day_before == (at(AUCKLAND, 2027, 1, 15), at(AUCKLAND, 2027, 1, 16))
    assert day_after == (at(AUCKLAND, 2027, 1, 16), at(AUCKLAND, 2027, 1, 17))
    # The same UTC day (the 15th, from 11:00): two local days.
    assert (
        dt.datetime.fromtimestamp(before, dt.UTC).date()
        == dt.datetime.fromtimestamp(after, dt.UTC).date()
    )
    assert day_before[1] == day_after[0]


@pytest.mark.parametrize("zone", ["given", "process"])
def test_the_month_turns_at_local_midnight_of_the_first(zone, local_tz) -> None:
    tz: dt.tzinfo | None = AUCKLAND
    if zone == "process":
        local_tz("Pacific/Auckland")
        tz = None
    last_moment = at(AUCKLAND, 2027, 12, 31, 23, 59, 59)
    first_moment = at(AUCKLAND, 2028, 1, 1, 0, 0, 0)
    assert caps.period_bounds(MONTHLY, last_moment, tz) == (
        at(AUCKLAND, 2027, 12, 1),
        at(AUCKLAND, 2028, 1, 1),
    )
    assert caps.period_bounds(MONTHLY, first_moment, tz) == (
        at(AUCKLAND, 2028, 1, 1),
        at(AUCKLAND, 2028, 2, 1),
    )


def test_a_day_of_a_daylight_saving_change_is_23_or_25_hours(local_tz) -> None:
    local_tz("Pacific/Auckland")
    # NZ daylight time starts on 2027-09-26 (02:00 → 03:00) and ends on 2027-04-04.
    start, end = caps.period_bounds(DAILY, at(AUCKLAND, 2027, 9, 26, 12))
    assert end - start == 23 * 3600
    start, end = caps.period_bounds(DAILY, at(AUCKLAND, 2027, 4, 4, 12))
    assert end - start == 25 * 3600


# -- the decision --------------------------------------------------------------------------


def window(cap: int = 100, period: str = DAILY) -> Window:
    return Window(Provider.NANOPHOTO, period, cap, 0.0, 86_400.0)


def test_reaching_the_cap_is_allowed_and_passing_it_is_not() -> None:
    caps.check(window(100), Usage(spent=60, held=24), 16)  # exactly 100
    with pytest.raises(CapExceeded) as raised:
        caps.check(window(100), Usage(spent=60, held=24, at_risk=4), 16)
    exc = raised.value
    assert (exc.cap, exc.usage.spent, exc.usage.held, exc.usage.at_risk, exc.cost) == (
        100, 60, 24, 4, 16,
    )  # fmt: skip
    assert exc.left == 12
    text = str(exc)
    for part in ("daily cap of nanophoto", "cap 100", "60 spent", "24 held", "4 at risk",
                 "would cost ~16", "Nothing was sent", "--over-cap",
                 "config set providers.nanophoto.daily_cap"):  # fmt: skip
        assert part in text, (part, text)


def test_the_status_of_a_cap_warns_past_80_percent() -> None:
    [status] = caps.statuses([window(100)], {DAILY: Usage(spent=70, held=10)}).values()
    assert (status.left, status.warning) == (20, False)
    [status] = caps.statuses([window(100)], {DAILY: Usage(spent=70, held=11)}).values()
    assert status.warning and status.to_public()["left"] == 19
    assert caps.gauge(0.81) == "████████░░"
    assert caps.gauge(1.7) == "█" * 10
