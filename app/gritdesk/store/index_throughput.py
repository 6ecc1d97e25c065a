"""The indexing speed measured on earlier runs, so the next run's estimate needs no test pass.

Kept in `meta`, one entry per model, machine and KV saving (on or off): tokens embedded
per second of a whole run (scan, parse, embed, write), the figure a user's wait depends on.
"""

from __future__ import annotations

import json
import platform

import apsw

from gritdesk.store.connection import write_transaction

MIN_TOKENS = 2000  # runs smaller than this say more about start-up than about speed


def _key(fingerprint: str, saves_kv: bool) -> str:
    return f"index_throughput:{platform.node()}:{fingerprint}:{'kv' if saves_kv else 'plain'}"


def record_throughput(
    conn: apsw.Connection, fingerprint: str, saves_kv: bool, tokens: int, seconds: float
) -> None:
    """Remember a run's tokens/s (ignored for runs too small to say anything)."""
    if tokens < MIN_TOKENS or seconds <= 0:
        return
    value = json.dumps({"tokens": tokens, "seconds": seconds})
    with write_transaction(conn):
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (_key(fingerprint, saves_kv), value),
        )


def stored_throughput(conn: apsw.Connection, fingerprint: str, saves_kv: bool) -> float | None:
    """Tokens per second of the last measured run with this model on this machine (runs
    that save each chunk's KV cache apart from those that do not)."""
    key = _key(fingerprint, saves_kv)
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    if row is None:
        return None
    try:
        figures = json.loads(row[0])
        return float(figures["tokens"]) / float(figures["seconds"])
    except (ValueError, KeyError, TypeError, ZeroDivisionError):
        return None
