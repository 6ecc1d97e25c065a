"""Indexing overhead (issue 3): end-to-end `index` time vs. pure embedding time of the same
chunks, in one run. Target: overhead <= 10%.

The corpus is generated (Markdown and text files of a few paragraphs). The pure-embedding
baseline embeds exactly the chunk texts the index stored, in the indexer's batch size.

    .venv/bin/python benchmarks/index_overhead.py --model 1b --files 40
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _models import resolve_model
from gritdesk.ingest.indexer import DEFAULT_BATCH_CHUNKS, IndexOptions, index_paths
from gritdesk.rag.kv_saving_embedder import KvSavingEmbedder
from gritdesk.runtime.engine import Engine, EngineSettings
from gritdesk.store.connection import open_database
from gritdesk.store.kv_cache import KvCacheStore

WORDS = (
    "archive harbour ledger invoice river meeting budget travel policy release engine sync "
    "export search folder report quarter growth region product team mentor laptop security"
).split()


def make_corpus(root: Path, n_files: int) -> None:
    rng = random.Random(0)
    for i in range(n_files):
        paragraphs = [
            " ".join(rng.choice(WORDS) for _ in range(rng.randint(40, 90))) + "."
            for _ in range(rng.randint(3, 6))
        ]
        if i % 2:
            body = f"# Note {i}\n\n" + "\n\n".join(
                f"## Part {j}\n\n{p}" for j, p in enumerate(paragraphs)
            )
            (root / f"note-{i:03}.md").write_text(body)
        else:
            (root / f"memo-{i:03}.txt").write_text("\n\n".join(paragraphs))


def time_pure(engine: Engine, texts: list[str]) -> float:
    t0 = time.perf_counter()
    for start in range(0, len(texts), DEFAULT_BATCH_CHUNKS):
        engine.embed_documents(texts[start : start + DEFAULT_BATCH_CHUNKS])
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--model", default="1b")
    ap.add_argument("--files", type=int, default=40)
    args = ap.parse_args()
    path = resolve_model(args.model)
    engine = Engine(path, EngineSettings(n_ctx=2048))
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        corpus.mkdir()
        make_corpus(corpus, args.files)
        warm = Path(tmp) / "warm"
        warm.mkdir()
        make_corpus(warm, 2)  # warm-up: graphs and buffers reach the sizes indexing needs
        index_paths(
            open_database(Path(tmp) / "warm.db"), engine, [warm], IndexOptions(model_path=str(path))
        )
        results = {}
        for label, save_kv in (("index (no KV saving)", False), ("index + save KV", True)):
            db = open_database(Path(tmp) / f"{label[:5]}{save_kv}.db")
            store = KvCacheStore(db, Path(tmp) / f"kv{save_kv}")
            embedder = KvSavingEmbedder(engine, store) if save_kv else engine
            t0 = time.perf_counter()
            report = index_paths(db, embedder, [corpus], IndexOptions(model_path=str(path)))
            results[label] = time.perf_counter() - t0
            chunks = report.chunks_embedded
        # the embedded text is heading line + chunk text: rebuild it exactly as the index did
        from gritdesk.ingest.chunk import embedding_text

        rows = db.execute(
            "SELECT text, heading_path FROM chunks ORDER BY source_id, ordinal"
        ).fetchall()
        texts = [embedding_text(t, (h,) if h else ()) for t, h in rows]
        pure = time_pure(engine, texts)
    tokens = sum(engine.count_tokens(t) for t in texts)
    print(f"model {path.name}; {args.files} files, {chunks} chunks, {tokens} tokens")
    print(f"pure embedding of the same chunks: {pure:8.2f} s")
    for label, seconds in results.items():
        overhead = 100 * (seconds / pure - 1)
        print(f"{label:34}{seconds:8.2f} s   overhead {overhead:+.1f}% (target <= 10%)")


if __name__ == "__main__":
    main()
