"""Search latency and recall@10 of the quantized vector search, on synthetic 4096-d vectors.

    .venv/bin/python benchmarks/search_latency.py [--sizes 10000,100000] [--queries 100]

For each size, fills a fresh index (real schema, real write path) with embedding-like
vectors: L2-normalised, sharing a common direction (LLM embeddings are anisotropic: two
unrelated texts still have cosine ~0.4), each a mix of two of 2000 topics plus noise;
queries are drawn the same way, so their neighbours are not copies of them. Then, per
number of first-pass candidates: p50/p95 latency of `nearest_chunks` (bit-quantized KNN
in sqlite-vec + exact float32 rescoring) and recall@10 against exact float search
(numpy), and p50 of the whole hybrid `search` (vector + FTS5 + RRF, query embedding
excluded). Target: p50 <= 50 ms at 100k with recall@10 >= 0.95.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from gritdesk.rag.retrieve import search
from gritdesk.store.connection import open_database
from gritdesk.store.model_record import ModelRecord, bind_model
from gritdesk.store.sources import ChunkRow, FileStamp, add_root, replace_source_chunks
from gritdesk.store.vectors import default_candidates, nearest_chunks


class ZipfText:
    """Chunk texts and queries over a 30k-word vocabulary with natural-language word
    frequencies (Zipf), so the commonest words are in most chunks, as "the" is."""

    def __init__(self, seed: int, vocabulary: int = 30_000) -> None:
        self.rng = np.random.default_rng(seed)
        syllables = ["ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "ze", "qu", "ba", "do"]
        codes = self.rng.permutation(len(syllables) ** 5)[:vocabulary]  # distinct 5-syllable words
        self.words = np.array(
            ["".join(syllables[(code // 12**i) % 12] for i in range(5)) for code in codes]
        )
        weights = 1.0 / np.arange(1, vocabulary + 1) ** 1.07
        self.cdf = np.cumsum(weights / weights.sum())

    def text(self, n_words: int) -> str:
        picks = np.searchsorted(self.cdf, self.rng.random(n_words) * self.cdf[-1])
        return " ".join(self.words[picks])


class SyntheticVectors:
    """Embedding-like unit vectors: shared offset + two topics + noise."""

    def __init__(self, dim: int, seed: int = 0, topics: int = 2000) -> None:
        self.dim = dim
        self.rng = np.random.default_rng(seed)
        self.common = self._unit(self.rng.standard_normal((1, dim), dtype=np.float32))[0]
        self.topics = self._unit(self.rng.standard_normal((topics, dim), dtype=np.float32))

    def draw(self, n: int) -> np.ndarray:
        rng = self.rng
        a = self.topics[rng.integers(0, len(self.topics), n)]
        b = self.topics[rng.integers(0, len(self.topics), n)]
        weight = rng.uniform(0.5, 1.0, (n, 1)).astype(np.float32)
        noise = self._unit(rng.standard_normal((n, self.dim), dtype=np.float32))
        rows = 0.8 * self.common + weight * a + (1 - weight) * b + 0.7 * noise
        return self._unit(rows)

    @staticmethod
    def _unit(rows: np.ndarray) -> np.ndarray:
        return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


class FixedQueryEmbedder:
    """Hands `search` a precomputed query vector, so only retrieval is timed."""

    def __init__(self, fingerprint: str, dim: int) -> None:
        self.fingerprint = fingerprint
        self.embedding_dim = dim
        self.max_document_tokens = 512
        self.next_query: np.ndarray | None = None

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def embed_queries(self, texts, instruction):
        return self.next_query[None, :]

    def embed_documents(self, texts):
        raise NotImplementedError


def build_index(path: Path, vectors: np.ndarray, texts: ZipfText) -> float:
    db = open_database(path)
    dim = vectors.shape[1]
    bind_model(db, ModelRecord("bench" * 8, None, dim, "gritlm"))
    root = add_root(db, "/bench")
    started = time.perf_counter()
    per_file = 500
    for start in range(0, len(vectors), per_file):
        block = vectors[start : start + per_file]
        rows = []
        for i in range(len(block)):
            text = texts.text(40)
            rows.append(ChunkRow(i, text, i + 1, i + 1, None, "", 40, f"{start + i}"))
        replace_source_chunks(db, root.id, f"f{start}.txt", FileStamp(1, 1, "x"), rows, block, dim)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return time.perf_counter() - started


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_size(n: int, dim: int, n_queries: int, candidate_counts: list[int], k: int) -> None:
    data = SyntheticVectors(dim, seed=n)
    vectors = np.concatenate([data.draw(min(10_000, n - i)) for i in range(0, n, 10_000)])
    queries = data.draw(n_queries)
    sample = vectors[:2000] @ vectors[2000:4000].T
    print(f"\n{n:,} vectors x {dim}-d; mean cosine of unrelated pairs {sample.mean():.2f}")

    texts = ZipfText(seed=n)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        seconds = build_index(path, vectors, texts)
        size_mb = sum(p.stat().st_size for p in Path(tmp).iterdir()) / 1e6
        print(f"built in {seconds:.1f} s ({n / seconds:,.0f} chunks/s), {size_mb:,.0f} MB on disk")
        db = open_database(path)
        db_ids = [row[0] for row in db.execute("SELECT id FROM chunks ORDER BY id")]
        exact = [{db_ids[i] for i in np.argsort(-(vectors @ q))[:k]} for q in queries]
        for q in queries[:3]:
            nearest_chunks(db, q, k)  # warm the page cache

        # Settings take turns query by query, so a busy machine slows them all alike.
        auto = default_candidates(db)
        candidate_counts = sorted({*candidate_counts, auto})
        latencies = {c: [] for c in candidate_counts}
        recalls = {c: [] for c in candidate_counts}
        for q, truth in zip(queries, exact, strict=True):
            for candidates in candidate_counts:
                started = time.perf_counter()
                found = nearest_chunks(db, q, k, candidates=candidates)
                latencies[candidates].append(time.perf_counter() - started)
                recalls[candidates].append(len(truth & {chunk_id for chunk_id, _ in found}) / k)
        print(f"{'candidates':>10} {'p50 ms':>8} {'p95 ms':>8} {'recall@10':>10}")
        for candidates in candidate_counts:
            print(
                f"{candidates:>10} {1000 * statistics.median(latencies[candidates]):>8.1f} "
                f"{1000 * percentile(latencies[candidates], 0.95):>8.1f} "
                f"{statistics.mean(recalls[candidates]):>10.3f}"
                + ("   <- default for this size" if candidates == auto else "")
            )

        embedder = FixedQueryEmbedder("bench" * 8, dim)
        latencies_hybrid = []
        for q in queries[:50]:
            embedder.next_query = q
            query_text = texts.text(6)
            started = time.perf_counter()
            search(db, embedder, query_text, k=k)
            latencies_hybrid.append(time.perf_counter() - started)
        print(
            f"hybrid search (vector + FTS5 + RRF, default candidates, 6-word queries): "
            f"p50 {1000 * statistics.median(latencies_hybrid):.1f} ms, "
            f"p95 {1000 * percentile(latencies_hybrid, 0.95):.1f} ms"
        )
        db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated vector counts")
    parser.add_argument("--dim", type=int, default=4096)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--candidates", default="10,40,80,160")
    parser.add_argument("-k", type=int, default=10)
    args = parser.parse_args()
    candidate_counts = [int(c) for c in args.candidates.split(",")]
    print(
        f"load average before: {os.getloadavg()[0]:.1f} (2 cores here; above ~1 means contention)"
    )
    for n in (int(s) for s in args.sizes.split(",")):
        run_size(n, args.dim, args.queries, candidate_counts, args.k)
    print(f"\nload average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
