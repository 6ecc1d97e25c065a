"""Roots as things a user manages: what each holds (`gritdesk roots list`) and removing one
with everything indexed under it (`gritdesk roots rm`).

Removal deletes the root row; sources, chunks, parse attempts cascade (foreign keys),
FTS rows and vectors follow through their triggers. KV blobs are
files: the caller sweeps those whose text no chunk holds any more (KvCacheStore).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import apsw

from gritdesk.store.connection import read_transaction
from gritdesk.store.sources import Root, display_path, list_roots, remove_root


@dataclass(frozen=True)
class RootStats:
    path: str
    files: int  # indexed
    skipped: int
    errors: int
    chunks: int
    tokens: int
    last_indexed_at: float | None  # unix time of the latest file written under it
    vector_bytes: int  # int8 vectors plus their sign bits, as stored
    kv_bytes: int  # saved KV caches of its chunks (a text shared with another root counts in both)
    kv_blobs: int

    def as_dict(self) -> dict:
        return asdict(self)


def root_stats(conn: apsw.Connection) -> list[RootStats]:
    """One row per root, read in one snapshot."""
    out = []
    with read_transaction(conn):
        dim_row = conn.execute("SELECT value FROM meta WHERE key = 'embedding_dim'").fetchone()
        dim = int(dim_row[0]) if dim_row else 0
        per_vector = dim + dim // 8  # store/vectors.py: int8 and sign bits
        for root in list_roots(conn):
            files, skipped, errors, last = conn.execute(
                """
                SELECT count(*) FILTER (WHERE status = 'indexed'),
                       count(*) FILTER (WHERE status = 'skipped'),
                       count(*) FILTER (WHERE status = 'error'),
                       max(indexed_at) FILTER (WHERE status = 'indexed')
                FROM sources WHERE root_id = ?
                """,
                (root.id,),
            ).fetchone()
            chunks, tokens = conn.execute(
                """
                SELECT count(*), coalesce(sum(c.token_count), 0)
                FROM chunks AS c JOIN sources AS s ON s.id = c.source_id
                WHERE s.root_id = ?
                """,
                (root.id,),
            ).fetchone()
            kv_blobs, kv_bytes = conn.execute(
                """
                SELECT count(*), coalesce(sum(bytes), 0) FROM kv_blobs WHERE text_hash IN (
                    SELECT c.text_hash FROM chunks AS c JOIN sources AS s ON s.id = c.source_id
                    WHERE s.root_id = ?)
                """,
                (root.id,),
            ).fetchone()
            out.append(
                RootStats(
                    display_path(root.path), files, skipped, errors, chunks, tokens, last,
                    chunks * per_vector, kv_bytes, kv_blobs,
                )
            )  # fmt: skip
    return out


def find_root(conn: apsw.Connection, path: str) -> Root | None:
    """The root recorded at exactly `path` (absolute, symlinks resolved), if any."""
    return next((root for root in list_roots(conn) if root.path == path), None)


def database_free_bytes(conn: apsw.Connection) -> int:
    """Bytes of free pages in the database file (reused by later writes)."""
    (pages,) = conn.execute("PRAGMA freelist_count").fetchone()
    (size,) = conn.execute("PRAGMA page_size").fetchone()
    return pages * size


def remove_root_contents(conn: apsw.Connection, root: Root) -> tuple[int, int]:
    """Forget `root` and everything indexed under it; returns (sources, chunks) removed."""
    with read_transaction(conn):
        (sources,) = conn.execute(
            "SELECT count(*) FROM sources WHERE root_id = ?", (root.id,)
        ).fetchone()
        (chunks,) = conn.execute(
            "SELECT count(*) FROM chunks WHERE source_id IN "
            "(SELECT id FROM sources WHERE root_id = ?)",
            (root.id,),
        ).fetchone()
    remove_root(conn, root.id)
    return sources, chunks
