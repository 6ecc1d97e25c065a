"""Which keyword search? Chunk size, FTS columns and weights, stop words, stemming, prefixes.

The keyword side alone (no vectors), on retrieval_eval.py's corpus and questions, scored
the same way (file level; section level). Chunks are cut by gritdesk's chunker with the
model's own tokenizer (vectors are not computed: they play no part here), once per
chunking policy; each variant is then a scratch FTS5 table over those chunks, queried
like store/fts.py queries `chunks_fts`. The first rows are what `gritdesk search` did
before and does now (`rag.retrieve.keyword_search`, the shipped table and weights).

    .venv/bin/python benchmarks/keyword_variants.py [--model smollm2-135m]

Besides retrieval, chunk size sets the answer prompt (k=4 chunks by default) and the KV
cache: the table prints the tokens indexed (overlap repeats some) and their KV bytes at
the model's f16 KV size.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import retrieval_eval as ev

POLICIES = [(384, 48), (128, 16), (192, 24), (256, 32), (384, 0), (384, 96), (512, 64), (768, 96)]
ANSWER_CHUNKS = 4  # `ask -k` default


class TokenCountingEmbedder:
    """The model's tokenizer for chunking; constant vectors (not measured here)."""

    fingerprint = "keyword-variants-v1"
    embedding_dim = 8
    model_path = "/keyword-variants.gguf"

    def __init__(self, engine) -> None:
        self.engine = engine

    def count_tokens(self, text: str) -> int:
        return self.engine.count_tokens(text)

    @property
    def max_document_tokens(self) -> int:
        return self.engine.max_document_tokens

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return np.tile(np.eye(1, 8, dtype=np.float32), (len(texts), 1))

    def embed_queries(self, texts: Sequence[str], instruction: str) -> np.ndarray:
        return self.embed_documents(texts)


@dataclass(frozen=True)
class Variant:
    name: str
    tokenize: str = "porter unicode61 remove_diacritics 2"
    weights: tuple[float, float, float] = (1.0, 2.0, 2.0)  # text, heading_path, path
    stop_words: bool = True
    prefix: bool = False  # "term*" for terms of 4+ characters


SHIPPED = Variant("now: stop words, weights 1/2/2 (text/heading/path)")
BEFORE = Variant(
    "before: all words, weights 1/1, no path", weights=(1.0, 1.0, 0.0), stop_words=False
)
ABLATIONS = [
    Variant("stop words, weights 1/1/0", weights=(1.0, 1.0, 0.0)),
    Variant("stop words, weights 1/1/1", weights=(1.0, 1.0, 1.0)),
    Variant("stop words, weights 1/2/0", weights=(1.0, 2.0, 0.0)),
    Variant("stop words, weights 1/1/2", weights=(1.0, 1.0, 2.0)),
    Variant("stop words, weights 1/3/3", weights=(1.0, 3.0, 3.0)),
    Variant("stop words, weights 1/5/5", weights=(1.0, 5.0, 5.0)),
    Variant("all words, weights 1/2/2", stop_words=False),
    Variant("stop words, 1/2/2, no stemming", tokenize="unicode61 remove_diacritics 2"),
    Variant("stop words, 1/2/2, prefix terms*", prefix=True),
]


def variant_ranking(db, variant: Variant) -> Callable[[str], list[int]]:
    """A scratch FTS5 table over the chunks, and a query function for it."""
    from gritdesk.rag.retrieve import keyword_terms, query_terms
    from gritdesk.store.fts import match_expression

    db.execute("DROP TABLE IF EXISTS variant_fts")
    db.execute(
        "CREATE VIRTUAL TABLE variant_fts USING fts5(text, heading_path, path, "
        f"tokenize = '{variant.tokenize}')"
    )
    db.execute(
        "INSERT INTO variant_fts (rowid, text, heading_path, path) "
        "SELECT c.id, c.text, c.heading_path, s.rel_path FROM chunks c "
        "JOIN sources s ON s.id = c.source_id"
    )
    rank = "bm25({})".format(", ".join(f"{w:g}" for w in variant.weights))

    def ranked(question: str) -> list[int]:
        terms = keyword_terms(question) if variant.stop_words else query_terms(question)
        match = match_expression(terms)
        if match is None:
            return []
        if variant.prefix:
            match = " OR ".join(
                part + ("*" if len(part) >= 6 else "") for part in match.split(" OR ")
            )  # '"term"' is 4+ characters once its quotes are off
        return [
            i
            for (i,) in db.execute(
                "SELECT rowid FROM variant_fts WHERE variant_fts MATCH ? AND rank MATCH ? "
                "ORDER BY rank LIMIT ?",
                (match, rank, ev.POOL),
            )
        ]

    return ranked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", default="smollm2-135m",
        help="whose tokenizer cuts the chunks, and whose KV size is shown (default: smollm2-135m)",
    )  # fmt: skip
    parser.add_argument("--questions", type=Path, default=ev.QUESTIONS)
    args = parser.parse_args()

    from gritdesk.ingest.chunk import ChunkingPolicy
    from gritdesk.ingest.indexer import IndexOptions, index_paths
    from gritdesk.model_choice import require_model
    from gritdesk.models.model_info import kv_bytes_per_token
    from gritdesk.rag.retrieve import keyword_search
    from gritdesk.runtime.engine import Engine, EngineSettings
    from gritdesk.store.connection import open_database

    spec, questions = ev.load_questions(args.questions)
    corpus = ev.select_corpus(spec)
    model = Path(require_model(ev.model_reference(args.model)))
    engine = Engine(model, EngineSettings())
    shape = engine.summary
    kv_per_token = kv_bytes_per_token(
        shape.n_layer, shape.n_head_kv, shape.n_embd // max(shape.n_head, 1)
    )["f16"]
    embedder = TokenCountingEmbedder(engine)
    rows: list[tuple[str, str, ev.Row]] = [("-", "-", ev.plain_bm25(corpus, questions))]
    facts = []
    work = Path(tempfile.mkdtemp(prefix="keyword_variants-"))
    try:
        corpus_dir = work / corpus.package
        corpus_dir.mkdir()
        for page in corpus.files:
            shutil.copy2(page, corpus_dir / page.name)
        for target, overlap in POLICIES:
            policy = ChunkingPolicy(target_tokens=target, overlap_tokens=overlap)
            db = open_database(work / f"chunks-{target}-{overlap}.db")
            index_paths(db, embedder, [corpus_dir], IndexOptions(policy=policy))
            place = dict(
                (cid, (rel, heads))
                for cid, rel, heads in db.execute(
                    "SELECT c.id, s.rel_path, c.heading_path FROM chunks c "
                    "JOIN sources s ON s.id = c.source_id"
                )
            )
            n, mean, total = db.execute(
                "SELECT count(*), avg(token_count), sum(token_count) FROM chunks"
            ).fetchone()
            facts.append((f"{target}/{overlap}", n, mean, total))
            label = f"{target}/{overlap}"
            variants = [BEFORE, SHIPPED] + (ABLATIONS if (target, overlap) == POLICIES[0] else [])
            for variant in variants:
                ranked = variant_ranking(db, variant)
                row = ev.Row(label, variant.name)
                for q in questions:
                    row.add(q, [place[i] for i in ranked(q.text)])
                rows.append((label, variant.name, row))
            shipped = ev.Row(label, "check: rag.retrieve.keyword_search")
            for q in questions:
                shipped.add(q, [place[i] for i in keyword_search(db, q.text, ev.POOL)])
            rows.append((label, shipped.ranking, shipped))
            db.close()
    finally:
        engine.close()
        shutil.rmtree(work, ignore_errors=True)

    print(
        f"Keyword side alone: {corpus.package} {corpus.version}, {len(corpus.files)} pages, "
        f"{len(questions)} questions; chunks cut with {model.name}'s tokenizer.\n"
    )
    print("| chunks (target/overlap tokens) | keyword search | hit@1 | hit@3 | hit@10 | MRR "
          "| section hit@3 | section MRR |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for label, name, row in rows:
        f, s = row.file_ranks, row.section_ranks
        section = f"{row.hits(s, 3)} | {row.mrr(s):.3f}" if row.has_sections else "- | -"
        print(
            f"| {label} | {name} | {row.hits(f, 1)} | {row.hits(f, 3)} | {row.hits(f, 10)} "
            f"| {row.mrr(f):.3f} | {section} |"
        )
    print(
        f"\n| chunks | count | mean tokens | tokens indexed | KV at f16 "
        f"({kv_per_token:,} B/token) | answer prompt, {ANSWER_CHUNKS} chunks |"
    )
    print("|---|---|---|---|---|---|")
    for label, n, mean, total in facts:
        print(
            f"| {label} | {n} | {mean:.0f} | {total:,} | {total * kv_per_token / 2**20:,.0f} MiB "
            f"| ~{ANSWER_CHUNKS * mean:.0f} tokens |"
        )


if __name__ == "__main__":
    main()
