"""Vector search: bit-quantized first pass plus exact rescoring agrees with exact search."""

from __future__ import annotations

from pathlib import Path

import apsw
import numpy as np
import pytest

from gritdesk.store.connection import open_database, write_transaction
from gritdesk.store.model_record import ModelRecord, bind_model
from gritdesk.store.sources import ChunkRow, FileStamp, add_root, replace_source_chunks
from gritdesk.store.vectors import (
    embeddings_by_text_hash,
    exact_nearest_chunks,
    insert_vectors,
    nearest_chunks,
)

DIM = 256


def clustered(n: int, rng: np.random.Generator, centers: np.ndarray) -> np.ndarray:
    """Embedding-like vectors: a shared offset, a topic and noise (cosines not all ~0)."""
    shared = np.ones(DIM, dtype=np.float32) / np.sqrt(DIM)
    topics = centers[rng.integers(0, len(centers), n)]
    noise = rng.standard_normal((n, DIM)).astype(np.float32) / np.sqrt(DIM)
    rows = 0.8 * shared + topics + 0.9 * noise
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture
def filled(tmp_path: Path) -> tuple[apsw.Connection, np.ndarray, list[int], np.ndarray]:
    rng = np.random.default_rng(3)
    centers = rng.standard_normal((40, DIM)).astype(np.float32) / np.sqrt(DIM)
    vectors = clustered(3000, rng, centers)
    queries = clustered(60, rng, centers)
    db = open_database(tmp_path / "v.db")
    bind_model(db, ModelRecord("f" * 64, None, DIM, "gritlm"))
    root = add_root(db, "/data")
    chunk_ids: list[int] = []
    for start in range(0, len(vectors), 500):
        rows = [
            ChunkRow(i, f"chunk {start + i}", None, None, None, "", 2, f"h{start + i}")
            for i in range(500)
        ]
        replace_source_chunks(
            db, root.id, f"f{start}", FileStamp(1, 1, "x"), rows, vectors[start : start + 500], DIM
        )
    chunk_ids = [row[0] for row in db.execute("SELECT id FROM chunks ORDER BY source_id, ordinal")]
    return db, vectors, chunk_ids, queries


def test_quantized_search_matches_exact_search(filled) -> None:
    db, vectors, chunk_ids, queries = filled
    recalls = []
    for query in queries:
        exact_order = np.argsort(-(vectors @ query))[:10]
        exact = {chunk_ids[i] for i in exact_order}
        found = nearest_chunks(db, query, 10, candidates=160)
        assert len(found) == 10
        recalls.append(len(exact & {chunk_id for chunk_id, _ in found}) / 10)
        similarities = [s for _, s in found]
        assert similarities == sorted(similarities, reverse=True)
        by_id = dict(zip(chunk_ids, vectors @ query, strict=True))
        for chunk_id, similarity in found:
            assert similarity == pytest.approx(float(by_id[chunk_id]), abs=1e-5)
        assert set(exact_nearest_chunks(db, query, 10)) == exact
    assert np.mean(recalls) >= 0.95


def test_too_few_candidates_lose_recall(filled) -> None:
    """The rescoring matters: with no oversampling the first pass alone is worse."""
    db, vectors, chunk_ids, queries = filled
    recalls = []
    for query in queries:
        exact = {chunk_ids[i] for i in np.argsort(-(vectors @ query))[:10]}
        found = {chunk_id for chunk_id, _ in nearest_chunks(db, query, 10, candidates=10)}
        recalls.append(len(exact & found) / 10)
    assert np.mean(recalls) < 0.95


def test_vectors_are_validated(tmp_path: Path) -> None:
    db = open_database(tmp_path / "v.db")
    bind_model(db, ModelRecord("f" * 64, None, DIM, "gritlm"))
    with write_transaction(db), pytest.raises(ValueError, match=r"shape \(n, 256\)"):
        insert_vectors(db, [1], np.zeros((1, 128), dtype=np.float32), DIM)
    with pytest.raises(ValueError, match="multiple of 8"):
        bind_model(open_database(tmp_path / "w.db"), ModelRecord("f" * 64, None, 100, "gritlm"))


def test_embeddings_are_found_by_text_hash(filled) -> None:
    db, vectors, _, _ = filled
    found = embeddings_by_text_hash(db, ["h5", "h2999", "missing"])
    assert set(found) == {"h5", "h2999"}
    assert np.frombuffer(found["h5"], dtype="<f4").tolist() == vectors[5].tolist()
