"""What a search reads about the chunks it ranked: their file, place, text and hash.

rag/retrieve.py ranks chunk ids; it reads their rows here, and which file each candidate
belongs to (the ranking is by file first, see rag/fusion.py).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import NamedTuple

import apsw

from gritdesk.store.sources import display_path


class StoredChunk(NamedTuple):
    root: str
    rel_path: str
    start_line: int | None
    end_line: int | None
    page: int | None
    heading_path: str
    text: str
    text_hash: str
    locator: str | None


def chunk_rows(db: apsw.Connection, chunk_ids: Collection[int]) -> dict[int, StoredChunk]:
    """The rows of `chunk_ids` (ids no longer stored are left out)."""
    if not chunk_ids:
        return {}
    placeholders = ", ".join("?" * len(chunk_ids))
    return {
        row[0]: StoredChunk(display_path(row[1]), display_path(row[2]), *row[3:])
        for row in db.execute(
            f"""
            SELECT c.id, r.path, s.rel_path, c.start_line, c.end_line, c.page,
                   c.heading_path, c.text, c.text_hash, c.locator
            FROM chunks AS c
            JOIN sources AS s ON s.id = c.source_id
            JOIN roots AS r ON r.id = s.root_id
            WHERE c.id IN ({placeholders})
            """,
            list(chunk_ids),
        )
    }


def chunk_sources(db: apsw.Connection, chunk_ids: Collection[int]) -> dict[int, int]:
    """chunk id -> the id of its file (`sources.id`)."""
    if not chunk_ids:
        return {}
    placeholders = ", ".join("?" * len(chunk_ids))
    return dict(
        db.execute(
            f"SELECT id, source_id FROM chunks WHERE id IN ({placeholders})", list(chunk_ids)
        )
    )
