"""Sequence 0 (a chat's kept context) survives embedding and reranking passes, and those
passes give what they give on an empty cache (tests/runtime/test_engine_history.py checks
that bit for bit over a longer sequence of operations)."""

from __future__ import annotations

import numpy as np

from gritdesk.runtime.engine import Engine

PROMPT = "<|user|>\nWhat does the harbour office write about?\n<|assistant|>\nIt writes"
DOCS = [
    "The harbour office writes about cargo ships and grain prices.",
    "The lighthouse keeper kept daily notes on fog and lamps.",
]


def continuation_logits(engine: Engine, prompt: list[int]) -> np.ndarray:
    """Logits after one more token decoded on top of what sequence 0 holds."""
    engine.prefill([prompt[-1]], len(prompt))
    return engine.last_logits()


def test_embedding_and_reranking_beside_a_kept_sequence(tiny_engine: Engine) -> None:
    engine = tiny_engine
    prompt = engine.tokenize(PROMPT, add_bos=True)
    engine.reset()
    engine.prefill(prompt, 0)
    expected = continuation_logits(engine, prompt)  # sequence 0 untouched in between
    alone, alone_states = engine.embed_documents_with_kv(DOCS)
    rerank_alone = engine.next_token_logits(prompt)

    engine.reset()
    engine.prefill(prompt, 0)
    epoch = engine.sequence_epoch
    beside, beside_states = engine.embed_documents_with_kv(DOCS)
    rerank_beside = engine.next_token_logits(prompt)
    engine.embed_queries(["harbour"], "Given a question, retrieve passages")
    assert engine.sequence_epoch == epoch
    got = continuation_logits(engine, prompt)

    np.testing.assert_allclose(got, expected, atol=1e-4)
    np.testing.assert_allclose(beside, alone, atol=1e-5)
    np.testing.assert_allclose(rerank_beside, rerank_alone, atol=1e-4)
    assert [s.tokens for s in beside_states] == [s.tokens for s in alone_states]


def test_a_pass_that_would_not_fit_beside_it_keeps_it(tiny_engine: Engine) -> None:
    """Scratch work runs with sequence 0 parked, so even a nearly full context survives."""
    engine = tiny_engine
    engine.reset()
    filler = engine.tokenize(" harbour" * (engine.n_ctx - 8), add_bos=True)[: engine.n_ctx - 8]
    engine.prefill(filler, 0)
    expected = continuation_logits(engine, filler)
    engine.keep_until(len(filler))
    epoch = engine.sequence_epoch
    engine.embed_documents(DOCS)  # needs more than the 8 free cells
    assert engine.sequence_epoch == epoch
    np.testing.assert_array_equal(continuation_logits(engine, filler), expected)
