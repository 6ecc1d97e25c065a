"""KV admission (issue 13): bytes of KV written while indexing a corpus 10x the KV budget,
and index time against pure embedding of the same chunks, in one run.

Targets: KV bytes written / budget <= 1.0; index time / pure embedding time <= 1.05.

The budget is set to a tenth of the corpus's KV (its per-token size measured on a warm-up
text). Every blob write is counted, evicted ones included. The pure-embedding baseline
embeds exactly the texts the index embedded, in the indexer's batch size, once before and
once after the indexing run (their mean is the baseline). On a shared machine wall time
swings with the neighbours' load, so CPU time (this process and its finished children: the
parser process) is printed beside it. The 7B
figures are arithmetic from the measured per-token sizes (Mistral-7B shape, f16: 32
layers x 2 x 1024 x 2 bytes = 128 KiB/token; GRITLM_NOTES section 4).

    .venv/bin/python benchmarks/kv_admission.py --model 1b --files 12
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _models import resolve_model
from gritdesk.ingest.chunk import embedding_text
from gritdesk.ingest.indexer import IndexOptions, index_paths
from gritdesk.rag.kv_saving_embedder import KvSavingEmbedder
from gritdesk.runtime.engine import Engine, EngineSettings
from gritdesk.store import kv_cache
from gritdesk.store.connection import open_database
from gritdesk.store.kv_cache import KvCacheStore
from index_overhead import make_corpus, time_pure

MISTRAL_7B_F16_PER_TOKEN = 32 * 2 * 1024 * 2
CORPUS_OVER_BUDGET = 10


def cpu_s() -> float:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def timed(fn: object, *args: object) -> tuple[object, float, float]:
    """fn(*args), its wall seconds and its CPU seconds."""
    t0, c0 = time.perf_counter(), cpu_s()
    result = fn(*args)  # type: ignore[operator]
    return result, time.perf_counter() - t0, cpu_s() - c0


class ChunkingOnly:
    """The engine as the indexer sees it, minus the embedding pass: finds the chunk texts an
    index run will embed without paying for embedding them."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.fingerprint = engine.fingerprint
        self.legacy_fingerprint = engine.legacy_fingerprint
        self.embedding_dim = engine.embedding_dim
        self.max_document_tokens = engine.max_document_tokens

    def count_tokens(self, text: str) -> int:
        return self.engine.count_tokens(text)

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        return np.full((len(texts), self.embedding_dim), self.embedding_dim**-0.5, np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--model", default="1b")
    ap.add_argument("--files", type=int, default=12)
    args = ap.parse_args()
    path = resolve_model(args.model)
    engine = Engine(path, EngineSettings(n_ctx=2048))
    written: list[int] = []
    real_write = kv_cache.write_blob

    def counting_write(*a: object, **k: object) -> int:
        n = real_write(*a, **k)  # type: ignore[arg-type]
        written.append(n)
        return n

    kv_cache.write_blob = counting_write  # type: ignore[assignment]
    with tempfile.TemporaryDirectory() as tmp:
        corpus, warm = Path(tmp) / "corpus", Path(tmp) / "warm"
        corpus.mkdir()
        warm.mkdir()
        make_corpus(corpus, args.files)
        make_corpus(warm, 2)  # warm-up: graphs and buffers reach the sizes indexing needs
        index_paths(
            open_database(Path(tmp) / "warm.db"), engine, [warm], IndexOptions(model_path=str(path))
        )
        # the texts the index will embed, and their KV size per token
        probe = open_database(Path(tmp) / "probe.db")
        index_paths(probe, ChunkingOnly(engine), [corpus], IndexOptions(model_path=str(path)))
        rows = probe.execute(
            "SELECT text, heading_path FROM chunks ORDER BY source_id, ordinal"
        ).fetchall()
        texts = [embedding_text(t, (h,) if h else ()) for t, h in rows]
        _, states = engine.embed_documents_with_kv(texts[:1])
        per_token = len(states[0].data) / len(states[0].tokens)
        doc_tokens = sum(len(engine.document_tokens(t)) for t in texts)
        corpus_kv = doc_tokens * per_token
        budget = int(corpus_kv / CORPUS_OVER_BUDGET)

        pure_before, _, cpu_before = timed(time_pure, engine, texts)
        db = open_database(Path(tmp) / "index.db")
        store = KvCacheStore(db, Path(tmp) / "kv", budget_bytes=budget)
        embedder = KvSavingEmbedder(engine, store)
        report, indexed, cpu_index = timed(
            lambda: index_paths(db, embedder, [corpus], IndexOptions(model_path=str(path)))
        )
        pure_after, _, cpu_after = timed(time_pure, engine, texts)
        kept = store.stats()

    pure = (pure_before + pure_after) / 2  # type: ignore[operator]
    cpu_pure = (cpu_before + cpu_after) / 2
    total = sum(written)
    print(f"model {path.name}; {args.files} files, {report.chunks_embedded} chunks, "
          f"{doc_tokens} tokens embedded; KV {per_token / 1024:.1f} KiB/token (f16)")
    print(f"budget {budget / 2**20:.1f} MiB = corpus KV {corpus_kv / 2**20:.1f} MiB "
          f"/ {CORPUS_OVER_BUDGET}")
    print(f"KV written while indexing: {total / 2**20:.1f} MiB in {len(written)} blobs; "
          f"kept {kept.bytes / 2**20:.1f} MiB in {kept.blobs}; not kept: {embedder.skipped} chunks")
    print(f"  written / budget: {total / budget:.3f} (target <= 1.0; "
          f"LRU-evict-to-budget wrote every chunk: {corpus_kv / budget:.1f})")
    print(f"  written per indexed token: {total / doc_tokens / 1024:.2f} KiB "
          f"(LRU rule: {per_token / 1024:.1f} KiB)")
    scale = MISTRAL_7B_F16_PER_TOKEN / per_token
    print(f"  7B shape by arithmetic (128 KiB/token f16, corpus 10x budget): "
          f"{total / doc_tokens * scale / 1024:.2f} KiB per indexed token "
          f"(LRU rule: {MISTRAL_7B_F16_PER_TOKEN / 1024:.0f} KiB)")
    print(f"pure embedding of the same chunks: {pure_before:.2f} s before, "
          f"{pure_after:.2f} s after the index run")
    print(f"index + KV admission: {indexed:.2f} s; index / pure embedding: "
          f"{indexed / pure:.3f} (target <= 1.05)")
    print(f"CPU time: pure {cpu_before:.1f} s before, {cpu_after:.1f} s after; index "
          f"{cpu_index:.1f} s; index / pure: {cpu_index / cpu_pure:.3f}")


if __name__ == "__main__":
    main()
