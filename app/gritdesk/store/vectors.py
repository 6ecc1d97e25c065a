"""Chunk vectors: sign bits for the first pass, int8 for rescoring, in one vec0 table.

Brute force over 100k float32 4096-d vectors is about 0.5 s on 2 cores; over their
sign bits (512 bytes each) it is a few tens of ms. So search takes the nearest
`candidates` by Hamming distance of the `signs` column and rescores just those by
cosine against the `embedding` column: each vector as int8, scaled by 127 over its
largest component (a per-vector scale, not stored: vectors are unit length and cosine
ignores scale, so `dequantize_int8` recovers the direction). At 100k x 4096-d the
vector tables take 466 MB with int8, 1,898 MB with float32 rows, and recall@10 against
exact float search is 0.992 (float32 rescoring: 1.000); float16 alone would be 819 MB.
benchmarks/search_latency.py measures both layouts in one run.

Both columns live in one vec0 table, so vec0 packs them 1024 vectors to a blob (no
per-row page slack: a plain table of 4 KiB rows fills 16 KiB pages only 3/4 full) and
one row per chunk is deleted with the chunk (the trigger below). Rescoring reads each
candidate by rowid; `connection.open_database` memory-maps the file, which makes those
reads cheap (without it vec0 walks the blob's overflow pages through read() calls).
"""

from __future__ import annotations

import itertools

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
INT8_PEAK = 127  # a vector's largest |component| maps to this
RANK_BATCH = 2048  # vectors scored at a time when a whole root is ranked


def create_vector_table(conn: apsw.Connection, dim: int) -> None:
    """Create the vec0 table for `dim`-d vectors and its cleanup trigger."""
    if dim <= 0 or dim % 8:
        raise ValueError(f"embedding dimension must be a positive multiple of 8, got {dim}")
    conn.execute(
        f"""
        CREATE VIRTUAL TABLE IF NOT EXISTS chunk_vectors USING vec0(
            signs     bit[{int(dim)}],   -- sign bits: the first pass
            embedding int8[{int(dim)}]   -- quantize_int8: the rescoring
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


def quantize_int8(rows: np.ndarray) -> np.ndarray:
    """Each row times 127 / its largest |component|, rounded: |row * scale - q| <= 0.5.

    Quantizing `dequantize_int8` of the result gives the same int8 back, so a vector
    reused by text hash is stored unchanged.
    """
    rows = np.asarray(rows, dtype=np.float32)
    peak = np.abs(rows).max(axis=1, keepdims=True)
    scale = np.divide(INT8_PEAK, peak, out=np.zeros_like(peak), where=peak > 0)
    return np.rint(rows * scale).astype(np.int8)


def dequantize_int8(rows: np.ndarray) -> np.ndarray:
    """Unit-length float32 rows in the direction of int8 `rows` (zero rows stay zero)."""
    floats = np.asarray(rows, dtype=np.float32)
    norms = np.linalg.norm(floats, axis=1, keepdims=True)
    return np.divide(floats, norms, out=np.zeros_like(floats), where=norms > 0)


def insert_vectors(
    conn: apsw.Connection, chunk_ids: list[int], vectors: np.ndarray, dim: int
) -> None:
    """Store one vector per chunk id (call inside the transaction that inserted the chunks)."""
    rows = as_float32_rows(vectors, dim)
    if len(rows) != len(chunk_ids):
        raise ValueError(f"{len(chunk_ids)} chunks but {len(rows)} vectors")
    insert_quantized(conn, chunk_ids, rows)


def insert_quantized(conn: apsw.Connection, chunk_ids: list[int], rows: np.ndarray) -> None:
    """Insert checked float32 `rows` as sign bits and int8 (also the migration's write)."""
    quantized = quantize_int8(rows)
    conn.executemany(
        "INSERT INTO chunk_vectors (rowid, signs, embedding) "
        "VALUES (?, vec_quantize_binary(?), vec_int8(?))",
        [
            (chunk_id, row.tobytes(), q.tobytes())
            for chunk_id, row, q in zip(chunk_ids, rows, quantized, strict=True)
        ],
    )


def embeddings_by_text_hash(conn: apsw.Connection, text_hashes: list[str]) -> dict[str, bytes]:
    """Stored embeddings (unit float32 bytes) of chunks whose embedded text has one of these hashes.

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
            SELECT c.text_hash, v.embedding
            FROM chunks AS c JOIN chunk_vectors AS v ON v.rowid = c.id
            WHERE c.text_hash IN ({placeholders})
            """,
            batch,
        ):
            int8_row = np.frombuffer(blob, dtype=np.int8)[None, :]
            found[text_hash] = dequantize_int8(int8_row)[0].astype("<f4").tobytes()
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
    then cosine of the float query with their int8 vectors. `candidates` defaults to
    `default_candidates`. With `root_id`, only chunks of files under that root count:
    the first pass takes the most candidates it may, and when too few of them lie in
    the root, the root's own vectors are ranked instead.
    """
    if not vector_table_exists(conn):
        return []
    if candidates is None:
        candidates = default_candidates(conn)
    query = np.ascontiguousarray(query, dtype="<f4")
    in_root = ""
    if root_id is not None:
        candidates = MAX_FIRST_PASS
        in_root = (
            "JOIN chunks AS c ON c.id = v.rowid "
            "JOIN sources AS s ON s.id = c.source_id AND s.root_id = :root"
        )
    params = {
        "query": query.tobytes(),
        "candidates": min(max(candidates, k), MAX_FIRST_PASS),
        "root": root_id,
    }
    rows = conn.execute(
        f"""
        WITH candidates AS (
            SELECT rowid AS chunk_id
            FROM chunk_vectors
            WHERE signs MATCH vec_quantize_binary(:query) AND k = :candidates
        )
        SELECT v.rowid, v.embedding
        FROM candidates JOIN chunk_vectors AS v ON v.rowid = candidates.chunk_id {in_root}
        """,
        params,
    ).fetchall()
    found = _best_by_cosine([], rows, query, k)
    if root_id is None or len(found) >= k:
        return found
    cursor = conn.execute(
        """
        SELECT v.rowid, v.embedding
        FROM chunks AS c
        JOIN sources AS s ON s.id = c.source_id AND s.root_id = :root
        JOIN chunk_vectors AS v ON v.rowid = c.id
        """,
        params,
    )
    found = []
    while batch := list(itertools.islice(cursor, RANK_BATCH)):
        found = _best_by_cosine(found, batch, query, k)
    return found


def _best_by_cosine(
    best: list[tuple[int, float]], rows: list[tuple[int, bytes]], query: np.ndarray, k: int
) -> list[tuple[int, float]]:
    """The `k` best of `best` and of (chunk id, int8 vector) `rows` by cosine with `query`."""
    if not rows:
        return best
    ids = [chunk_id for chunk_id, _ in rows]
    vectors = np.frombuffer(b"".join(blob for _, blob in rows), dtype=np.int8)
    unit = dequantize_int8(vectors.reshape(len(rows), -1))
    query_norm = float(np.linalg.norm(query))
    similarities = (unit @ query) / query_norm if query_norm > 0 else np.zeros(len(rows))
    scored = best + list(zip(ids, similarities.tolist(), strict=True))
    return sorted(scored, key=lambda pair: pair[1], reverse=True)[:k]
