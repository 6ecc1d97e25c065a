"""Chunk vectors: a sign-bit sqlite-vec table for the first pass, float32 for rescoring.

Brute force over 100k float32 4096-d vectors is about 0.5 s on 2 cores; over their
sign bits (512 bytes each) it is a few tens of ms. So search takes the nearest
`candidates` by Hamming distance from `chunk_vectors` (vec0, `bit[dim]`) and rescores
just those by exact cosine against the float32 copies in `chunk_embeddings`.
benchmarks/search_latency.py measures the latency and recall@10 of this against exact
float search.

Rows of both tables are keyed by chunk id and are deleted together with their chunk
(foreign key cascade and the trigger created below), so no orphans survive a delete.
"""

from __future__ import annotations

import apsw
import numpy as np

VECTOR_TABLE = "chunk_vectors"
# How many first-pass candidates to rescore. sqlite-vec's KNN costs more as the index
# and k grow, so small indexes, where it is cheap, get more candidates: 200 at 10k
# vectors, 80 from 25k up (measured recall@10 vs exact: 0.96 at 10k, 1.00 at 100k).
MIN_CANDIDATES = 80
MAX_CANDIDATES = 400
CANDIDATE_BUDGET = 2_000_000  # candidates x vectors
MAX_FIRST_PASS = 4096  # vec0's largest k


def create_vector_table(conn: apsw.Connection, dim: int) -> None:
    """Create the bit-quantized vec0 table for `dim`-d vectors and its cleanup trigger."""
    if dim <= 0 or dim % 8:
        raise ValueError(f"embedding dimension must be a positive multiple of 8, got {dim}")
    conn.execute(
        f"""
        CREATE VIRTUAL TABLE IF NOT EXISTS chunk_vectors USING vec0(
            embedding bit[{int(dim)}]
        );
        CREATE TRIGGER IF NOT EXISTS chunk_vectors_delete AFTER DELETE ON chunks BEGIN
            DELETE FROM chunk_vectors WHERE rowid = old.id;
        END;
        """
    )


def drop_vector_table(conn: apsw.Connection) -> None:
    conn.execute(
        """
        DROP TRIGGER IF EXISTS chunk_vectors_delete;
        DROP TABLE IF EXISTS chunk_vectors;
        """
    )


def vector_table_exists(conn: apsw.Connection) -> bool:
    row = conn.execute(
        "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?", (VECTOR_TABLE,)
    ).fetchone()
    return row is not None


def as_float32_rows(vectors: np.ndarray, dim: int) -> np.ndarray:
    """Check shape and finiteness; return C-contiguous little-endian float32 rows."""
    array = np.asarray(vectors)
    if array.ndim != 2 or array.shape[1] != dim:
        raise ValueError(f"expected vectors of shape (n, {dim}), got {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError("embedding contains NaN or infinite values")
    return np.ascontiguousarray(array, dtype="<f4")


def insert_vectors(
    conn: apsw.Connection, chunk_ids: list[int], vectors: np.ndarray, dim: int
) -> None:
    """Store one vector per chunk id (call inside the transaction that inserted the chunks)."""
    rows = as_float32_rows(vectors, dim)
    if len(rows) != len(chunk_ids):
        raise ValueError(f"{len(chunk_ids)} chunks but {len(rows)} vectors")
    pairs = [(chunk_id, row.tobytes()) for chunk_id, row in zip(chunk_ids, rows, strict=True)]
    conn.executemany(
        "INSERT INTO chunk_embeddings (chunk_id, embedding) VALUES (?, ?)",
        pairs,
    )
    conn.executemany(
        "INSERT INTO chunk_vectors (rowid, embedding) VALUES (?, vec_quantize_binary(?))",
        pairs,
    )


def embeddings_by_text_hash(conn: apsw.Connection, text_hashes: list[str]) -> dict[str, bytes]:
    """Stored float32 embeddings of chunks whose embedded text has one of these hashes.

    Lets the indexer skip re-embedding text it has embedded before (an edited file's
    untouched sections, a file copied elsewhere in the tree).
    """
    found: dict[str, bytes] = {}
    unique = sorted(set(text_hashes))
    for start in range(0, len(unique), 500):
        batch = unique[start : start + 500]
        placeholders = ", ".join("?" * len(batch))
        for text_hash, blob in conn.execute(
            f"""
            SELECT c.text_hash, e.embedding
            FROM chunks AS c JOIN chunk_embeddings AS e ON e.chunk_id = c.id
            WHERE c.text_hash IN ({placeholders})
            """,
            batch,
        ):
            found[text_hash] = blob
    return found


def default_candidates(conn: apsw.Connection) -> int:
    """First-pass candidates for this index's size (see CANDIDATE_BUDGET)."""
    (highest_id,) = conn.execute("SELECT coalesce(max(id), 0) FROM chunks").fetchone()
    return max(MIN_CANDIDATES, min(MAX_CANDIDATES, CANDIDATE_BUDGET // max(highest_id, 1)))


def nearest_chunks(
    conn: apsw.Connection,
    query: np.ndarray,
    k: int,
    candidates: int | None = None,
    root_id: int | None = None,
) -> list[tuple[int, float]]:
    """(chunk id, cosine similarity) of the `k` nearest chunks, best first.

    First pass: the `candidates` nearest by Hamming distance of sign bits (vec0);
    then exact cosine on their float32 vectors. `candidates` defaults to
    `default_candidates`. With `root_id`, only chunks of files under that root count:
    the first pass takes the most candidates it may, and when too few of them lie in
    the root, the root's own vectors are ranked exactly instead.
    """
    if not vector_table_exists(conn):
        return []
    if candidates is None:
        candidates = default_candidates(conn)
    query_blob = np.ascontiguousarray(query, dtype="<f4").tobytes()
    in_root = ""
    if root_id is not None:
        candidates = MAX_FIRST_PASS
        in_root = (
            "JOIN chunks AS c ON c.id = e.chunk_id "
            "JOIN sources AS s ON s.id = c.source_id AND s.root_id = :root"
        )
    params = {
        "query": query_blob,
        "candidates": min(max(candidates, k), MAX_FIRST_PASS),
        "k": k,
        "root": root_id,
    }
    found = [
        (chunk_id, similarity)
        for chunk_id, similarity in conn.execute(
            f"""
            WITH candidates AS (
                SELECT rowid AS chunk_id
                FROM chunk_vectors
                WHERE embedding MATCH vec_quantize_binary(:query) AND k = :candidates
            )
            SELECT e.chunk_id, 1.0 - vec_distance_cosine(e.embedding, :query) AS similarity
            FROM candidates JOIN chunk_embeddings AS e USING (chunk_id) {in_root}
            ORDER BY similarity DESC
            LIMIT :k
            """,
            params,
        )
    ]
    if root_id is None or len(found) >= k:
        return found
    return list(
        conn.execute(
            """
            SELECT e.chunk_id, 1.0 - vec_distance_cosine(e.embedding, :query) AS similarity
            FROM chunk_embeddings AS e
            JOIN chunks AS c ON c.id = e.chunk_id
            JOIN sources AS s ON s.id = c.source_id AND s.root_id = :root
            ORDER BY similarity DESC
            LIMIT :k
            """,
            params,
        )
    )


def exact_nearest_chunks(conn: apsw.Connection, query: np.ndarray, k: int) -> list[int]:
    """Chunk ids of the exact top `k` by float32 cosine (slow; the benchmark's reference)."""
    query_blob = np.ascontiguousarray(query, dtype="<f4").tobytes()
    return [
        chunk_id
        for (chunk_id,) in conn.execute(
            """
            SELECT chunk_id FROM chunk_embeddings
            ORDER BY vec_distance_cosine(embedding, :query)
            LIMIT :k
            """,
            {"query": query_blob, "k": k},
        )
    ]
