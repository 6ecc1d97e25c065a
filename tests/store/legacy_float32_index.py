"""An index as gritdesk wrote it before m007: schema version 6, float32 rescoring rows.

Built with the shipped migrations m001..m006 and the old vector write and search SQL,
so the migration test and benchmarks/search_latency.py (its float32 baseline) start
from the same file an older gritdesk left on a user's disk.
"""

from __future__ import annotations

from pathlib import Path

import apsw
import numpy as np

from gritdesk.store.connection import PAGE_SIZE, load_sqlite_vec
from gritdesk.store.migrations import MIGRATIONS

VERSION = 6


def build_float32_index(
    path: Path, vectors: np.ndarray, texts: list[str], per_source: int = 500
) -> list[int]:
    """Write `vectors` (unit float32 rows) with chunk `texts` in the version-6 layout;
    return the chunk ids in row order."""
    n, dim = vectors.shape
    conn = open_legacy(path)
    conn.execute("BEGIN")
    for fn in MIGRATIONS[:VERSION]:
        fn(conn)
    conn.execute(f"PRAGMA user_version = {VERSION}")
    conn.executemany(
        "INSERT INTO meta (key, value) VALUES (?, ?)",
        [
            ("model_fingerprint", "legacy" * 8),
            ("model_path", ""),
            ("embedding_dim", str(dim)),
            ("recipe", "gritlm"),
        ],
    )
    conn.execute(
        f"""
        CREATE VIRTUAL TABLE chunk_vectors USING vec0(embedding bit[{dim}]);
        CREATE TRIGGER chunk_vectors_delete AFTER DELETE ON chunks BEGIN
            DELETE FROM chunk_vectors WHERE rowid = old.id;
        END;
        INSERT INTO roots (path) VALUES ('/legacy');
        """
    )
    chunk_ids: list[int] = []
    rows = np.ascontiguousarray(vectors, dtype="<f4")
    for start in range(0, n, per_source):
        conn.execute(
            "INSERT INTO sources (root_id, rel_path, size, mtime_ns, ctime_ns, content_hash, "
            "status) VALUES (1, ?, 1, 1, 1, 'x', 'indexed')",
            (f"f{start}.txt",),
        )
        source_id = conn.last_insert_rowid()
        for ordinal, i in enumerate(range(start, min(n, start + per_source))):
            conn.execute(
                "INSERT INTO chunks (source_id, ordinal, text, token_count, text_hash) "
                "VALUES (?, ?, ?, ?, ?)",
                (source_id, ordinal, texts[i], len(texts[i].split()), f"h{i}"),
            )
            chunk_ids.append(conn.last_insert_rowid())
        block = range(start, min(n, start + per_source))
        pairs = [(chunk_ids[i], rows[i].tobytes()) for i in block]
        conn.executemany(
            "INSERT INTO chunk_embeddings (chunk_id, embedding) VALUES (?, ?)", pairs
        )
        conn.executemany(
            "INSERT INTO chunk_vectors (rowid, embedding) VALUES (?, vec_quantize_binary(?))",
            pairs,
        )
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return chunk_ids


def open_legacy(path: Path) -> apsw.Connection:
    """A connection as the old `open_database` made it, minus the migration to latest."""
    conn = apsw.Connection(str(path))
    load_sqlite_vec(conn)
    conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def float32_nearest(
    conn: apsw.Connection, query: np.ndarray, k: int, candidates: int
) -> list[tuple[int, float]]:
    """The old search: sign-bit first pass, exact float32 cosine rescoring (in SQL)."""
    return list(
        conn.execute(
            """
            WITH candidates AS (
                SELECT rowid AS chunk_id
                FROM chunk_vectors
                WHERE embedding MATCH vec_quantize_binary(:query) AND k = :candidates
            )
            SELECT e.chunk_id, 1.0 - vec_distance_cosine(e.embedding, :query) AS similarity
            FROM candidates JOIN chunk_embeddings AS e USING (chunk_id)
            ORDER BY similarity DESC
            LIMIT :k
            """,
            {
                "query": np.ascontiguousarray(query, dtype="<f4").tobytes(),
                "candidates": candidates,
                "k": k,
            },
        )
    )
