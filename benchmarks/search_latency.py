"""Vector disk, latency and recall@10: float32 rescoring (before m007) vs int8, one run.

    .venv/bin/python benchmarks/search_latency.py [--sizes 10000,100000] [--queries 100]

For each size, writes an index as gritdesk did before m007 (schema version 6: sign-bit
vec0 table + float32 rows, tests/store/legacy_float32_index.py), copies the file and
opens the copy with `open_database`, which migrates it (m007: int8 rescoring, then
VACUUM). Then, query by query in turns (so a busy machine slows both alike): p50/p95
latency and recall@10 against exact float32 search (numpy) of the old search (sign-bit
KNN + float32 cosine in SQL, on the old file) and of `nearest_chunks` (sign-bit KNN +
cosine against int8 vectors), per number of first-pass candidates; disk MB of the vector
tables (dbstat) of both files; each path with the other's memory-map setting (m007's
change comes with `open_database` mapping the file); vec0 brute force
over the int8 column alone (is the bit pass still needed?); and p50 of the hybrid
`search` (vector + FTS5 + RRF, query embedding excluded).

Vectors: embedding-like, L2-normalised, sharing a common direction (LLM embeddings are
anisotropic: two unrelated texts still have cosine ~0.4), each a mix of two of 2000
topics plus noise; queries are drawn the same way, so their neighbours are not copies
of them. `--massive-dims N` gives the common direction N dimensions ~20x the others, as
LLM hidden states have ("massive activations"), which coarsens int8's per-vector scale.
Targets at 100k x 4096: vectors <= 600 MB, p50 <= 30 ms, recall@10 >= 0.99.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import apsw
import numpy as np

from gritdesk.rag.retrieve import search
from gritdesk.store.connection import MMAP_SIZE, open_database
from gritdesk.store.vectors import default_candidates, nearest_chunks, quantize_int8

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # its baseline
from store.legacy_float32_index import (
    build_float32_index,
    float32_nearest,
    open_legacy,
)


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

    def __init__(self, dim: int, seed: int = 0, topics: int = 2000, massive_dims: int = 0) -> None:
        self.dim = dim
        self.rng = np.random.default_rng(seed)
        common = self.rng.standard_normal((1, dim), dtype=np.float32)
        common[0, :massive_dims] = 20.0 * np.sign(common[0, :massive_dims])
        self.common = self._unit(common)[0]
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


def vector_mb(path: Path) -> float:
    """MB of the vector tables (the vec0 table's shadow tables, float32 rows if any)."""
    conn = apsw.Connection(str(path))
    (size,) = conn.execute(
        "SELECT sum(pgsize) FROM dbstat WHERE name = 'chunk_embeddings' "
        "OR name LIKE 'chunk_vectors%' OR name LIKE 'sqlite_autoindex_chunk_vectors%'"
    ).fetchone()
    conn.close()
    return size / 1e6


def file_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / 1e6


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def timed(fn, *args, **kwargs) -> tuple[float, list]:
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - started, result


def run_size(args: argparse.Namespace, n: int, candidate_counts: list[int]) -> None:
    dim, k = args.dim, args.k
    data = SyntheticVectors(dim, seed=n, massive_dims=args.massive_dims)
    vectors = np.concatenate([data.draw(min(10_000, n - i)) for i in range(0, n, 10_000)])
    queries = data.draw(args.queries)
    sample = vectors[:2000] @ vectors[2000:4000].T
    peak_ratio = np.median(np.abs(vectors[:2000]).max(axis=1) / np.abs(vectors[:2000]).mean(1))
    print(
        f"\n{n:,} vectors x {dim}-d; mean cosine of unrelated pairs {sample.mean():.2f}; "
        f"largest / mean |component| {peak_ratio:.1f} (median over vectors)"
    )
    texts = ZipfText(seed=n)
    with tempfile.TemporaryDirectory() as tmp:
        old_path, new_path = Path(tmp) / "float32.db", Path(tmp) / "int8.db"
        seconds, chunk_ids = timed(
            build_float32_index, old_path, vectors, [texts.text(40) for _ in range(n)]
        )
        print(f"float32 index (schema 6) built in {seconds:.1f} s")
        shutil.copyfile(old_path, new_path)
        seconds, db = timed(open_database, new_path)
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        print(f"migrated to int8 (m007 + VACUUM) in {seconds:.1f} s")
        old_mb, new_mb = vector_mb(old_path), vector_mb(new_path)
        print(f"{'':>24} {'vectors MB':>10} {'file MB':>8}")
        print(f"{'float32 (before m007)':>24} {old_mb:>10,.0f} {file_mb(old_path):>8,.0f}")
        print(
            f"{'int8 (m007)':>24} {new_mb:>10,.0f} {file_mb(new_path):>8,.0f}"
            f"   ratio {new_mb / old_mb:.3f}"
        )

        old = open_legacy(old_path)  # as before m007: no memory map
        old_mapped = open_legacy(old_path)
        old_mapped.execute(f"PRAGMA mmap_size = {MMAP_SIZE}")
        unmapped = open_database(new_path)
        unmapped.execute("PRAGMA mmap_size = 0")
        exact = [{chunk_ids[i] for i in np.argsort(-(vectors @ q))[:k]} for q in queries]
        auto = default_candidates(db)
        candidate_counts = sorted({*candidate_counts, auto})
        searches = {}
        for c in candidate_counts:
            searches[f"float32 {c}"] = lambda q, c=c: float32_nearest(old, q, k, candidates=c)
            searches[f"int8 {c}"] = lambda q, c=c: nearest_chunks(db, q, k, candidates=c)
        searches[f"float32 {auto} mmap"] = lambda q: float32_nearest(old_mapped, q, k, auto)
        searches[f"int8 {auto} no mmap"] = lambda q: nearest_chunks(unmapped, q, k, auto)
        for search_fn in searches.values():
            for q in queries[:3]:
                search_fn(q)  # warm the page cache
        latencies = {name: [] for name in searches}
        recalls = {name: [] for name in searches}
        for q, truth in zip(queries, exact, strict=True):
            for name, search_fn in searches.items():
                seconds, found = timed(search_fn, q)
                latencies[name].append(seconds)
                recalls[name].append(len(truth & {chunk_id for chunk_id, _ in found}) / k)
        print(f"{'rescoring, candidates':>24} {'p50 ms':>8} {'p95 ms':>8} {'recall@10':>10}")
        for name in searches:
            print(
                f"{name:>24} {1000 * statistics.median(latencies[name]):>8.1f} "
                f"{1000 * percentile(latencies[name], 0.95):>8.1f} "
                f"{statistics.mean(recalls[name]):>10.3f}"
                + ("   <- default for this size" if name.endswith(f" {auto}") else "")
            )
        for c in candidate_counts:
            ratio = statistics.median(latencies[f"int8 {c}"]) / statistics.median(
                latencies[f"float32 {c}"]
            )
            print(f"p50 int8 / float32 at {c} candidates: {ratio:.2f}")

        brute_sql = "SELECT rowid FROM chunk_vectors WHERE embedding MATCH vec_int8(?) AND k = ?"
        brute = [
            timed(
                lambda q=q: db.execute(
                    brute_sql, (quantize_int8(q[None, :]).tobytes(), k)
                ).fetchall()
            )[0]
            for q in queries[:10]
        ]
        brute_ms = 1000 * statistics.median(brute)
        print(f"vec0 brute force over the int8 column alone (no bit pass): p50 {brute_ms:.1f} ms")

        embedder = FixedQueryEmbedder("legacy" * 8, dim)
        latencies_hybrid = []
        for q in queries[:50]:
            embedder.next_query = q
            seconds, _ = timed(search, db, embedder, texts.text(6), k=k)
            latencies_hybrid.append(seconds)
        print(
            f"hybrid search (int8 vector + FTS5 + RRF, default candidates, 6-word queries): "
            f"p50 {1000 * statistics.median(latencies_hybrid):.1f} ms, "
            f"p95 {1000 * percentile(latencies_hybrid, 0.95):.1f} ms"
        )
        for conn in (old, old_mapped, unmapped, db):
            conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated vector counts")
    parser.add_argument("--dim", type=int, default=4096)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--candidates", default="40,80,160")
    parser.add_argument("--massive-dims", type=int, default=0)
    parser.add_argument("-k", type=int, default=10)
    args = parser.parse_args()
    candidate_counts = [int(c) for c in args.candidates.split(",")]
    print(
        f"load average before: {os.getloadavg()[0]:.1f} (2 cores here; above ~1 means contention)"
    )
    for n in (int(s) for s in args.sizes.split(",")):
        run_size(args, n, candidate_counts)
    print(f"\nload average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
