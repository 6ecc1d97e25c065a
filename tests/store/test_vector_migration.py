"""m007: a float32 index from an older gritdesk becomes an int8 one, keeping its results."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gritdesk.store import migrations
from gritdesk.store.connection import DatabaseOpenError, open_database
from gritdesk.store.migrations import MIGRATIONS, schema_version
from gritdesk.store.vectors import nearest_chunks, quantize_int8
from ingest.index_content import assert_index_consistent
from store.legacy_float32_index import build_float32_index, float32_nearest, open_legacy

DIM = 256
N = 3000


def clustered(n: int, rng: np.random.Generator, centers: np.ndarray) -> np.ndarray:
    shared = np.ones(DIM, dtype=np.float32) / np.sqrt(DIM)
    noise = rng.standard_normal((n, DIM)).astype(np.float32) / np.sqrt(DIM)
    rows = 0.8 * shared + centers[rng.integers(0, len(centers), n)] + 0.9 * noise
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture
def legacy(tmp_path: Path, monkeypatch) -> tuple[Path, np.ndarray, list[int], np.ndarray]:
    """A version-6 index of N float32 vectors; the migration converts 256 rows a batch."""
    monkeypatch.setattr(migrations, "FLOAT32_BATCH", 256)
    rng = np.random.default_rng(11)
    centers = rng.standard_normal((40, DIM)).astype(np.float32) / np.sqrt(DIM)
    vectors = clustered(N, rng, centers)
    path = tmp_path / "old.db"
    chunk_ids = build_float32_index(path, vectors, [f"chunk {i}" for i in range(N)])
    return path, vectors, chunk_ids, clustered(40, rng, centers)


def float32_state(path: Path, queries: np.ndarray) -> tuple:
    """Schema, float32 rows and old-style search results of a version-6 index."""
    conn = open_legacy(path)
    assert schema_version(conn) == 6
    schema = conn.execute("SELECT type, name, sql FROM sqlite_schema ORDER BY name").fetchall()
    rows = dict(conn.execute("SELECT chunk_id, embedding FROM chunk_embeddings"))
    found = [float32_nearest(conn, q, 10, candidates=160) for q in queries]
    conn.close()
    return schema, rows, found


def file_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def test_float32_index_migrates_keeping_search_results(legacy, monkeypatch) -> None:
    path, vectors, chunk_ids, queries = legacy
    monkeypatch.setattr(migrations, "RECLAIM_MIN_BYTES", 0)
    conn = open_legacy(path)
    before = [{i for i, _ in float32_nearest(conn, q, 10, candidates=160)} for q in queries]
    conn.close()
    bytes_before = file_bytes(path)

    db = open_database(path)
    assert schema_version(db) == len(MIGRATIONS)
    tables = {name for (name,) in db.execute("SELECT name FROM sqlite_schema")}
    assert "chunk_embeddings" not in tables
    stored = dict(db.execute("SELECT rowid, embedding FROM chunk_vectors"))
    assert sorted(stored) == chunk_ids
    expected = quantize_int8(vectors)
    for row, chunk_id in enumerate(chunk_ids):
        assert np.frombuffer(stored[chunk_id], dtype=np.int8).tolist() == expected[row].tolist()

    after = [{i for i, _ in nearest_chunks(db, q, 10, candidates=160)} for q in queries]
    overlap = [len(a & b) / 10 for a, b in zip(before, after, strict=True)]
    assert np.mean(overlap) >= 0.98  # the rest are near-ties int8 rounding reorders
    assert db.execute("PRAGMA freelist_count").fetchone()[0] == 0  # vacuumed
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert file_bytes(path) < bytes_before / 2

    db.execute("DELETE FROM sources WHERE rel_path = 'f0.txt'")  # the cleanup trigger is back
    assert db.execute("SELECT count(*) FROM chunk_vectors").fetchone()[0] == N - 500
    assert_index_consistent(db)


def test_interrupted_migration_leaves_the_float32_index_whole(legacy, monkeypatch) -> None:
    path, vectors, chunk_ids, queries = legacy
    original = float32_state(path, queries)
    real_insert = migrations.insert_quantized
    calls = []

    def insert_then_stop(conn, ids, rows) -> None:
        real_insert(conn, ids, rows)
        calls.append(len(ids))
        if len(calls) == 3:
            raise KeyboardInterrupt  # the user quits gritdesk mid-upgrade

    monkeypatch.setattr(migrations, "insert_quantized", insert_then_stop)
    with pytest.raises(KeyboardInterrupt):
        open_database(path)
    assert float32_state(path, queries) == original

    monkeypatch.setattr(migrations, "insert_quantized", real_insert)
    db = open_database(path)  # the next open starts over and finishes
    assert db.execute("SELECT count(*) FROM chunk_vectors").fetchone()[0] == N
    assert nearest_chunks(db, vectors[7], 1)[0][0] == chunk_ids[7]


def test_a_malformed_float32_row_is_named_and_nothing_changes(legacy) -> None:
    path, _, chunk_ids, _ = legacy
    conn = open_legacy(path)
    conn.execute(
        "UPDATE chunk_embeddings SET embedding = zeroblob(10) WHERE chunk_id = ?", (chunk_ids[5],)
    )
    conn.close()
    original = float32_state(path, np.empty((0, DIM)))  # old search fails on it too
    with pytest.raises(DatabaseOpenError, match=rf"old\.db.*chunk {chunk_ids[5]}: .* 10 bytes"):
        open_database(path)
    assert float32_state(path, np.empty((0, DIM))) == original
