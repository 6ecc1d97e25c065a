"""What the index's vector ranking was measured to be worth, kept in `meta`.

rag/vector_probe.py measures it after an index run (how well the embedder finds a chunk's
file from a few of its words, against keyword search doing the same); rag/retrieve.py reads
it to weight the vector ranking in the fusion. One record per index: it belongs to the
embedder that built the vectors (its fingerprint) and to the chunk count it was measured on.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import apsw

from gritdesk.store.connection import write_transaction

_KEY = "vector_worth"


@dataclass(frozen=True)
class VectorWorth:
    fingerprint: str  # the embedder's
    weight: float  # the vector ranking's fusion weight (the keyword ranking's is 1)
    skill: float  # 0: no better than chance, 1: as good as keyword search on the probes
    probes: int
    chunks: int  # chunks in the index when measured


def stored_vector_worth(db: apsw.Connection) -> VectorWorth | None:
    row = db.execute("SELECT value FROM meta WHERE key = ?", (_KEY,)).fetchone()
    if row is None:
        return None
    try:
        return VectorWorth(**json.loads(row[0]))
    except (ValueError, TypeError):
        return None  # written by another version: measured again on the next run


def store_vector_worth(db: apsw.Connection, worth: VectorWorth) -> None:
    with write_transaction(db):
        db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (_KEY, json.dumps(asdict(worth))),
        )


def chunk_count(db: apsw.Connection) -> int:
    (count,) = db.execute("SELECT count(*) FROM chunks").fetchone()
    return int(count)


def probe_chunks(db: apsw.Connection, limit: int, min_tokens: int) -> list[tuple[int, int, str]]:
    """(chunk id, file id, text) of up to `limit` chunks of at least `min_tokens` tokens,
    spread evenly over the index (by id, so the same index gives the same probes)."""
    ids = [
        chunk_id
        for (chunk_id,) in db.execute(
            "SELECT id FROM chunks WHERE token_count >= ? ORDER BY id", (min_tokens,)
        )
    ]
    if not ids:
        return []
    step = max(1, len(ids) // limit)
    chosen = ids[::step][:limit]
    placeholders = ", ".join("?" * len(chosen))
    return [
        (chunk_id, source_id, text)
        for chunk_id, source_id, text in db.execute(
            f"SELECT id, source_id, text FROM chunks WHERE id IN ({placeholders}) ORDER BY id",
            chosen,
        )
    ]


def file_count(db: apsw.Connection) -> int:
    (count,) = db.execute("SELECT count(DISTINCT source_id) FROM chunks").fetchone()
    return int(count)
