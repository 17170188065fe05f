"""Figures over the whole history: credits per provider and per day, counts, and the
render times the scheduler learns ETAs from."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from ..models import TaskStatus, iso
from .connection import Connection
from .rows import profile_of, sane_seconds


class Reports(Connection):
    def generation_history(self, limit_per_profile: int = 50) -> list[tuple[tuple, float]]:
        """(profile, seconds) of recent completed renders, oldest first: what ETAs learn from."""
        rows = self._all(
            "SELECT provider, params, generation_time FROM tasks WHERE status='completed' "
            "AND generation_time IS NOT NULL ORDER BY completed_at DESC LIMIT 2000"
        )
        seen: dict[tuple, int] = {}
        out: list[tuple[tuple, float]] = []
        for provider, params, seconds in rows:
            if sane_seconds(seconds) is None or not seconds:
                continue  # recorded before such values were refused: it would skew ETAs
            profile = profile_of(provider, json.loads(params))
            if seen.get(profile, 0) >= limit_per_profile:
                continue
            seen[profile] = seen.get(profile, 0) + 1
            out.append((profile, float(seconds)))
        out.reverse()
        return out

    def credits_summary(self, now: float, days: int = 14) -> dict[str, Any]:
        """Credits per provider: today, last 7 days, all time, refunds, held; and per day.

        Three reads, none of them of whole task rows: totals per provider and status from
        a covering index, what pending and orphaned tasks hold (few rows, by status), and
        the per-day sums of the recent days (by creation time), which also give "today"
        and "last 7 days"."""
        today = dt.datetime.fromtimestamp(now, tz=dt.UTC).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        net = "COALESCE(credits_charged, 0) - credits_refunded"
        providers: dict[str, dict[str, int]] = {}

        def row_of(provider: str) -> dict[str, int]:
            return providers.setdefault(provider, {
                "today": 0, "last_7_days": 0, "all": 0, "refunded": 0, "held_by_pending": 0,
                "at_risk_orphaned": 0, "tasks": 0, "completed": 0, "failed": 0,
            })  # fmt: skip

        totals = self._all(
            "SELECT provider, status, COUNT(*), SUM(COALESCE(credits_charged, 0)), "
            "SUM(credits_refunded) FROM tasks GROUP BY provider, status"
        )
        for provider, status, count, charged, refunded in totals:
            row = row_of(provider)
            row["all"] += (charged or 0) - (refunded or 0)
            row["refunded"] += refunded or 0
            row["tasks"] += count
            if status in (TaskStatus.COMPLETED.value, TaskStatus.FAILED.value):
                row[status] += count
        # An orphan's estimate is at risk only while no server reported its charge (a
        # reported charge is in the totals already).
        holds = self._all(
            "SELECT provider, status, SUM(COALESCE(credits_charged, credits_estimated, 0)), "
            "SUM(CASE WHEN credits_charged IS NULL THEN COALESCE(credits_estimated, 0) "
            "ELSE 0 END) FROM tasks "
            "WHERE status IN ('submitting', 'processing', 'orphaned') GROUP BY provider, status"
        )
        for provider, status, held, estimated in holds:
            row = row_of(provider)
            if status == TaskStatus.ORPHANED.value:
                row["at_risk_orphaned"] += estimated or 0
            else:
                row["held_by_pending"] += held or 0

        start = today - dt.timedelta(days=days - 1)
        week = today - dt.timedelta(days=6)
        since = min(start, week)
        series_rows = self._all(
            f"SELECT substr(created_at, 1, 10), provider, SUM({net}) FROM tasks "
            "WHERE created_at >= ? GROUP BY 1, 2",
            (iso(since.timestamp()),),
        )
        today_day, week_day, start_day = (d.strftime("%Y-%m-%d") for d in (today, week, start))
        per_day: dict[str, dict[str, int]] = {}
        for i in range(days):
            per_day[(start + dt.timedelta(days=i)).strftime("%Y-%m-%d")] = {}
        for day, p, credits in series_rows:
            credits = credits or 0
            if day >= week_day:
                row_of(p)["last_7_days"] += credits
                if day >= today_day:
                    row_of(p)["today"] += credits
            if day >= start_day:
                per_day.setdefault(day, {})[p] = credits
        return {"providers": providers, "per_day": per_day}

    def stats(self) -> dict[str, Any]:
        counts = dict(self._all("SELECT status, count(*) FROM tasks GROUP BY status"))
        return {
            "tasks": sum(counts.values()),
            "by_status": counts,
            "events": self._scalar("SELECT count(*) FROM events"),
            "requests": self._scalar("SELECT count(*) FROM requests"),
            "schema_version": self.schema_version,
        }
