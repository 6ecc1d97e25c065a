"""Fusion weights by what the embedder is worth: the vectors of a chat model never trained to
embed (SmolLM2's recipe) cannot push a keyword hit down; a trained embedder's ranking counts
as much as BM25. The hybrid check runs the random-weight tiny model (noise vectors) under a
recipe that says it was not trained to embed."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from gritdesk.rag.retrieve import FUSION_WEIGHTS, fusion_weights, keyword_search, search
from gritdesk.runtime.engine import Engine, EngineSettings
from gritdesk.runtime.recipes import GRITLM, SMOLLM2
from gritdesk.session import open_session
from gritdesk.settings import Settings
from ingest.cli_runs import run_index

CORPUS = Path(__file__).resolve().parents[2] / "app" / "gritdesk" / "demo_corpus"
UNTRAINED = dataclasses.replace(GRITLM, trained_to_embed=False)
QUESTIONS = [
    "Hotel costs are refunded up to how many euros a night in Europe?",
    "When is lunch served in the cafeteria?",
    "Which shortcut opens the command palette?",
    "Does an interrupted upload continue where it stopped?",
]


def test_weights_follow_what_the_model_is(
    tiny_model_path: Path, smollm2_path: Path, minilm_path: Path
) -> None:
    with Engine(tiny_model_path, EngineSettings(n_ctx=512), recipe=UNTRAINED) as tiny:
        assert fusion_weights(tiny) == (1.0, 0.0)
    with Engine(smollm2_path, EngineSettings(n_ctx=512), recipe=SMOLLM2) as smol:
        assert fusion_weights(smol) == (1.0, 0.0)  # a chat model not trained to embed
    with Engine(minilm_path, EngineSettings(n_ctx=512)) as minilm:
        assert fusion_weights(minilm) == FUSION_WEIGHTS == (1.0, 1.0)


def test_hybrid_keeps_the_keyword_ranking_of_a_weak_embedder(
    tiny_model_path: Path, tmp_path: Path
) -> None:
    db = tmp_path / "index.db"
    run_index(tiny_model_path, db, CORPUS)
    session = open_session(Settings(db=db, model=str(tiny_model_path), context=1024))
    try:
        assert session.engine is not None
        session.engine.recipe = UNTRAINED  # same formats, flagged as never trained to embed
        reordered_by_noise = 0
        for question in QUESTIONS:
            keywords = keyword_search(session.db, question, 50)[:4]
            hybrid = [hit.chunk_id for hit in search(session.db, session.engine, question, 4)]
            assert hybrid[: len(keywords)] == keywords, question
            naive = search(session.db, session.engine, question, 4, weights=(1.0, 1.0))
            reordered_by_noise += [h.chunk_id for h in naive][: len(keywords)] != keywords
        assert reordered_by_noise  # equal weights would have let the noise in
    finally:
        session.close()
