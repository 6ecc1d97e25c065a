"""Every public engine operation gives the same numbers whatever ran on the engine before it.

One long-lived engine (the chat, the server and MCP keep one) runs a fixed sequence of
operations: a generation, documents embedded with their KV, a restore, a prefill, a rerank,
a chat turn continued on its kept context while a query is embedded, a passage reranked and
a file indexed beside it. Each result is compared with the same operation on a fresh engine,
bit for bit, and (for the f32 synthetic model) with the numpy reference forward pass.

Issue 20: on an AVX2 CPU, SmolLM2 (Q4_1 weights) computed 0.44 off after a generation,
because the scratch passes ran in KV cells further along the cache than on a fresh engine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from gritdesk.rag.rerank import _prompt as rerank_prompt
from gritdesk.rag.rerank import relevance_score
from gritdesk.runtime.engine import ChatTurn, Engine, EngineSettings, GenerationOptions
from gritdesk.runtime.recipes import SMOLLM2, Recipe
from reference.cache_layouts import cached_segment, suffix_logits
from reference.llama_numpy import LlamaWeights, forward, mean_pooled

DOCS = [
    "Meals on a business trip are covered by a daily allowance of 45 euros. Hotel costs are "
    "refunded up to 140 euros a night in Europe and 180 dollars in North America.",
    "The cafeteria serves lunch from noon until half past one; the coffee bar opens at eight.",
]
QUESTION = "How much food money do I get per day on a trip?"
FOLLOW_UP = "And the hotel in North America?"
SETTINGS = EngineSettings(n_ctx=2048)


@dataclass
class Results:
    generated: str = ""
    vectors: np.ndarray | None = None
    states: list[bytes] | None = None
    restored: np.ndarray | None = None
    prefilled: np.ndarray | None = None
    rerank: float = 0.0
    turn_two: np.ndarray | None = None
    streamed_turn_two: np.ndarray | None = None
    beside_chat_states: list[bytes] | None = None
    query_vector: np.ndarray | None = None


def suffix_tokens(engine: Engine) -> list[int]:
    return engine.tokenize("\nQuestion: " + QUESTION + "\nAnswer:")


def drain(engine: Engine, turns: list[ChatTurn], max_tokens: int = 24) -> str:
    return "".join(engine.generate(turns, GenerationOptions(max_tokens=max_tokens)))


def restore_then_prefill(engine: Engine, state: bytes, doc_tokens: list[int]) -> np.ndarray:
    from gritdesk.runtime.engine import KvState

    engine.reset()
    engine.restore_at(KvState(tuple(doc_tokens), state), 0)
    engine.prefill(suffix_tokens(engine), len(doc_tokens))
    return engine.last_logits()


def kept_turn_two(engine: Engine, interleave: Callable[[Engine], None] | None) -> np.ndarray:
    """Turn one prefilled into sequence 0, optional scratch work, turn two on top of it."""
    first, second = turn_tokens(engine)
    engine.reset()
    engine.prefill(first, 0)
    if interleave is not None:
        epoch = engine.sequence_epoch
        interleave(engine)
        assert engine.sequence_epoch == epoch, "the kept context was dropped"
    engine.prefill(second, len(first))
    return engine.last_logits()


def streamed_turn_two(engine: Engine, interleave: Callable[[Engine], None] | None) -> np.ndarray:
    """Turn one generated (the real chat path), then turn two prefilled after its answer."""
    from gritdesk.runtime.engine import GenerationStats

    stats = GenerationStats()
    answer = "".join(engine.generate([ChatTurn(QUESTION)], GenerationOptions(max_tokens=16), stats))
    if interleave is not None:
        interleave(engine)
    follow = engine.chat_tokens([ChatTurn(QUESTION, answer), ChatTurn(FOLLOW_UP)])
    start = min(stats.end_position, len(follow) - 1)
    engine.keep_until(start)
    engine.prefill(follow[start:], start)
    return engine.last_logits()


def turn_tokens(engine: Engine) -> tuple[list[int], list[int]]:
    first = engine.chat_tokens([ChatTurn(QUESTION)])
    both = engine.chat_tokens([ChatTurn(QUESTION, "45 euros a day."), ChatTurn(FOLLOW_UP)])
    assert both[: len(first)] == first
    return first, both[len(first) :]


def scratch_work(engine: Engine) -> None:
    """What a chat does beside its kept turn: retrieve, rerank, index a changed file."""
    engine.embed_queries([FOLLOW_UP], engine.recipe.retrieval_instruction)
    relevance_score(engine, FOLLOW_UP, DOCS[0])
    engine.embed_documents_with_kv(DOCS)


def run_sequence(engine: Engine, *, history: bool) -> Results:
    """Each operation; with `history` they run one after another on this engine, else each
    gets the engine as it was built (the caller passes a fresh one per operation)."""
    r = Results()
    r.generated = drain(engine, [ChatTurn("Say hello.")], max_tokens=64)
    vectors, states = engine.embed_documents_with_kv(DOCS)
    r.vectors, r.states = vectors, [bytes(s.data) for s in states]
    doc_tokens = engine.document_tokens(DOCS[0])
    r.restored = restore_then_prefill(engine, r.states[0], doc_tokens)
    r.prefilled = engine.next_token_logits(doc_tokens + suffix_tokens(engine))
    r.rerank = relevance_score(engine, QUESTION, DOCS[0])
    r.turn_two = kept_turn_two(engine, scratch_work if history else None)
    r.streamed_turn_two = streamed_turn_two(engine, scratch_work if history else None)
    first, _ = turn_tokens(engine)
    engine.reset()
    engine.prefill(first, 0)  # a chat context kept while a file is indexed
    r.beside_chat_states = [bytes(s.data) for s in engine.embed_documents_with_kv(DOCS)[1]]
    r.query_vector = engine.embed_queries([QUESTION], engine.recipe.retrieval_instruction)[0]
    return r


def fresh_results(path: Path, recipe: Recipe | None) -> Results:
    """The same operations, each on an engine that has run nothing else."""

    def new() -> Engine:
        return Engine(path, SETTINGS, recipe=recipe)

    r = Results()
    with new() as e:
        r.generated = drain(e, [ChatTurn("Say hello.")], max_tokens=64)
    with new() as e:
        vectors, states = e.embed_documents_with_kv(DOCS)
        r.vectors, r.states = vectors, [bytes(s.data) for s in states]
    with new() as e:
        r.restored = restore_then_prefill(e, r.states[0], e.document_tokens(DOCS[0]))
    with new() as e:
        r.prefilled = e.next_token_logits(e.document_tokens(DOCS[0]) + suffix_tokens(e))
    with new() as e:
        r.rerank = relevance_score(e, QUESTION, DOCS[0])
    with new() as e:
        r.turn_two = kept_turn_two(e, None)
    with new() as e:
        r.streamed_turn_two = streamed_turn_two(e, None)
    with new() as e:
        r.beside_chat_states = [bytes(s.data) for s in e.embed_documents_with_kv(DOCS)[1]]
    with new() as e:
        r.query_vector = e.embed_queries([QUESTION], e.recipe.retrieval_instruction)[0]
    return r


def assert_same(used: Results, fresh: Results) -> None:
    assert used.generated == fresh.generated
    for name in (
        "vectors",
        "restored",
        "prefilled",
        "turn_two",
        "streamed_turn_two",
        "query_vector",
    ):
        got, want = getattr(used, name), getattr(fresh, name)
        assert np.array_equal(got, want), (
            f"{name}: max difference {float(np.abs(got - want).max())} after other operations"
        )
    assert used.rerank == fresh.rerank
    assert used.states == fresh.states, "KV of an embedding pass differs after a generation"
    assert used.beside_chat_states == fresh.states, "KV computed beside a kept chat differs"


@pytest.mark.parametrize("model", ["tiny", "smollm2"])
def test_a_used_engine_computes_what_a_fresh_one_does(
    model: str, tiny_model_path: Path, smollm2_path: Path
) -> None:
    path, recipe = (tiny_model_path, None) if model == "tiny" else (smollm2_path, SMOLLM2)
    with Engine(path, SETTINGS, recipe=recipe) as engine:
        used = run_sequence(engine, history=True)
    assert_same(used, fresh_results(path, recipe))


def test_the_used_engine_matches_the_reference(tiny_model_path: Path) -> None:
    """The same sequence on the f32 synthetic model, against the numpy forward pass."""
    w = LlamaWeights.load(tiny_model_path)
    with Engine(tiny_model_path, SETTINGS) as engine:
        used = run_sequence(engine, history=True)
        doc = engine.document_tokens(DOCS[0])
        suffix = suffix_tokens(engine)
        n_prefix = len(engine.tokenize(engine.recipe.embedding.document(), add_bos=True))
        first, second = turn_tokens(engine)
        rerank_tokens = rerank_prompt(engine, QUESTION, DOCS[0])
        yes = engine.tokenize(engine.recipe.rag.rerank_yes)[-1]

    def close(got: np.ndarray, want: np.ndarray) -> None:
        np.testing.assert_allclose(got, want, atol=2e-3 * np.abs(want).max())

    hidden, _ = forward(w, doc, causal=False)
    want_vec = mean_pooled(hidden, n_prefix)
    assert float(used.vectors[0] @ want_vec / np.linalg.norm(want_vec)) >= 0.9999
    close(used.restored, suffix_logits(w, [cached_segment(w, doc)], suffix, len(doc))[-1])
    close(used.prefilled, forward(w, doc + suffix, causal=True)[1][-1])
    rerank_logits = forward(w, rerank_tokens, causal=True)[1][-1]
    assert abs(used.rerank - rerank_logits[yes]) <= 2e-3 * np.abs(rerank_logits).max()
    close(used.turn_two, forward(w, first + second, causal=True)[1][-1])
