"""The request ledger: one row of `requests` per HTTP request to a provider, counted
before it is sent, and the 429 pauses that stop a key in every instance (kept in
`app_state`). Written by `seedance_tui/ledger.py` only; the rate budget is computed
from it."""

from __future__ import annotations

from ..models import Provider, from_iso, iso
from .connection import Connection
from .interface import MAX_KEY_PAUSE, Claim


def pause_name(provider: Provider, key_fingerprint: str) -> str:
    return f"rate_pause:{provider.value}:{key_fingerprint}"


def pause_until(value: str | None, now: float) -> float | None:
    """A persisted pause's end, believed up to MAX_KEY_PAUSE from now; None when over."""
    if not value:
        return None
    try:
        until = from_iso(value)
    except ValueError:
        return None
    if until is None or until <= now:
        return None
    return min(until, now + MAX_KEY_PAUSE)


def generate_left(store: Connection, task: str) -> bool:
    """May a `generate` for this task have reached the server?"""
    row = store._one(
        "SELECT 1 FROM requests WHERE task=? AND endpoint='generate' AND sent=1 LIMIT 1",
        (task,),
    )
    return row is not None


class RequestLedger(Connection):
    def claim_request(
        self,
        *,
        provider: Provider,
        key_fingerprint: str,
        endpoint: str,
        now: float,
        limit: int | None,
        window: float = 3600.0,
        task: str | None = None,
    ) -> Claim:
        """Count a request in the ledger before it is sent, unless the key is paused by a
        429 (persisted by any instance) or its limit over the last `window` seconds is
        spent. One transaction, so instances sharing the file never both take the last
        request of the window; `finish_request` then records how it went.

        Times written by other instances (or before a clock change) are believed within
        bounds: a request time in the future still counts, a pause is cut to
        MAX_KEY_PAUSE from now."""
        with self._tx() as tx:
            paused = tx.execute(
                "SELECT value FROM app_state WHERE name=?",
                (pause_name(provider, key_fingerprint),),
            ).fetchone()
            until = pause_until(paused[0] if paused else None, now)
            if until is not None:
                return Claim(None, retry_at=until, paused=True)
            if limit is not None:
                used = tx.execute(
                    "SELECT count(*) FROM requests WHERE provider=? AND key_fingerprint=? "
                    "AND sent=1 AND at > ?",
                    (provider.value, key_fingerprint, iso(now - window)),
                ).fetchone()[0]
                if used >= limit:
                    # The request that frees the slot: the oldest of the last `limit`.
                    oldest = tx.execute(
                        "SELECT at FROM requests WHERE provider=? AND key_fingerprint=? "
                        "AND sent=1 AND at > ? ORDER BY at DESC LIMIT 1 OFFSET ?",
                        (provider.value, key_fingerprint, iso(now - window), limit - 1),
                    ).fetchone()
                    frees = (from_iso(oldest[0]) or now) + window if oldest else now + window
                    return Claim(None, retry_at=min(max(frees, now + 1.0), now + window))
            cursor = tx.execute(
                "INSERT INTO requests (at, provider, key_fingerprint, endpoint, http_status, sent, "
                "elapsed_ms, error, task) VALUES (?,?,?,?,NULL,1,NULL,'in flight',?)",
                (iso(now), provider.value, key_fingerprint, endpoint, task),
            )
            return Claim(cursor.lastrowid)

    def finish_request(
        self,
        row: int,
        *,
        http_status: int | None,
        sent: bool,
        elapsed: float,
        error: str | None,
        answered_at: float | None = None,
    ) -> None:
        """How a claimed request went: its HTTP status, and `sent=False` when the
        connection was never made (the server cannot have counted it). A sent request
        counts from `answered_at` (never earlier than its claim): the latest moment the
        server can have counted it."""
        answered = iso(answered_at) if sent and answered_at is not None else None
        with self._tx() as tx:
            tx.execute(
                "UPDATE requests SET http_status=?, sent=?, elapsed_ms=?, error=?, "
                "at=CASE WHEN ? > at THEN ? ELSE at END WHERE id=?",
                (
                    http_status,
                    int(sent),
                    min(int(elapsed * 1000), 2**31),
                    error,
                    answered,
                    answered,
                    row,
                ),
            )

    def request_rows(
        self, provider: Provider, key_fingerprint: str, since: float
    ) -> list[tuple[int, float]]:
        """(row, time) of the requests that reached (or may have reached) the server
        since `since`."""
        rows = self._all(
            "SELECT id, at FROM requests WHERE provider=? AND key_fingerprint=? AND at > ? "
            "AND sent=1",
            (provider.value, key_fingerprint, iso(since)),
        )
        return [(row, from_iso(at) or 0.0) for row, at in rows]

    def pause_key(self, provider: Provider, key_fingerprint: str, until: float, now: float) -> None:
        """A 429 stops every request of this key, of every instance, until `until`."""
        until = min(until, now + MAX_KEY_PAUSE)
        name = pause_name(provider, key_fingerprint)
        with self._tx() as tx:
            current = tx.execute("SELECT value FROM app_state WHERE name=?", (name,)).fetchone()
            known = pause_until(current[0] if current else None, now)
            if known is not None and known >= until:
                return
            tx.execute(
                "INSERT INTO app_state (name, value) VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET value=excluded.value",
                (name, iso(until)),
            )

    def key_pause(self, provider: Provider, key_fingerprint: str, now: float) -> float | None:
        """Until when a 429 stops this key (None: it does not)."""
        row = self._one(
            "SELECT value FROM app_state WHERE name=?", (pause_name(provider, key_fingerprint),)
        )
        return pause_until(row[0] if row else None, now)

    def generate_left(self, task: str) -> bool:
        """May a `generate` for this task have reached the server? A request counted
        before sending whose connection was never made did not."""
        return generate_left(self, task)
