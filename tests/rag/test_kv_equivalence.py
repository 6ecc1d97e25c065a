"""Answers from restored KV caches equal one uninterrupted pass with the same attention layout.

Layout: each document is computed with bidirectional attention among its own tokens (as the
embedding pass does), the fresh suffix causally over everything before it.
"""

from __future__ import annotations

import llama_cpp as ll
import numpy as np

from gritdesk.runtime.engine import Engine, GenerationOptions
from gritdesk.runtime.recipes import GRITLM

DOCS = [
    "The Aurora project ships its first release on the ninth of March, after a security review.",
    "Invoices above five thousand euros need two signatures: the team lead and finance.",
    "The cafeteria on the second floor closes at three on Fridays during the summer months.",
]
SUFFIX = GRITLM.rag.doc_cached_suffix.format(query="When does Aurora ship?")
GREEDY = GenerationOptions(max_tokens=24)
LOGIT_TOLERANCE = 1e-4


def doc_tokens(engine: Engine, text: str) -> list[int]:
    return engine.tokenize(engine.recipe.embedding.document() + text, add_bos=True)


def answer(engine: Engine, position: int) -> tuple[np.ndarray, str]:
    """Logits after the suffix (the first answer token's distribution), then the greedy answer.

    The sequence-0 cache is copied aside first so both come from the same prompt state.
    """
    memory = ll.llama_get_memory(engine._ctx)
    ll.llama_memory_seq_cp(memory, 0, 7, -1, -1)
    engine.prefill(engine.tokenize(SUFFIX), position)
    logits = engine.last_logits()
    ll.llama_memory_seq_rm(memory, 0, -1, -1)
    ll.llama_memory_seq_cp(memory, 7, 0, -1, -1)
    ll.llama_memory_seq_rm(memory, 7, -1, -1)
    text = "".join(engine.stream(engine.tokenize(SUFFIX), position=position, options=GREEDY))
    return logits, text


def assert_same_answer(a: tuple[np.ndarray, str], b: tuple[np.ndarray, str]) -> None:
    assert a[1] == b[1] and a[1]
    np.testing.assert_allclose(a[0], b[0], atol=LOGIT_TOLERANCE)


def test_one_chunk_restored_equals_uninterrupted(tiny_engine: Engine) -> None:
    _, states = tiny_engine.embed_documents_with_kv([DOCS[0]])
    n = len(states[0].tokens)
    uninterrupted = answer(tiny_engine, n)  # the embedding pass's KV is still in sequence 0

    tiny_engine.reset()
    assert tiny_engine.restore_at(states[0], 0) == n
    restored = answer(tiny_engine, n)
    assert_same_answer(restored, uninterrupted)


def test_several_chunks_moved_equal_uninterrupted(tiny_engine: Engine) -> None:
    token_lists = [doc_tokens(tiny_engine, d) for d in DOCS]
    offsets = [0]
    for tokens in token_lists[:-1]:
        offsets.append(offsets[-1] + len(tokens))
    end = offsets[-1] + len(token_lists[-1])

    # uninterrupted: each chunk computed bidirectionally right at its final positions
    tiny_engine.reset()
    tiny_engine._set_mode(embeddings=True, causal=False)
    memory = ll.llama_get_memory(tiny_engine._ctx)
    for seq, (tokens, offset) in enumerate(zip(token_lists, offsets, strict=True), start=1):
        for i, token in enumerate(tokens):
            tiny_engine._fill(i, token, offset + i, seq, True)
        tiny_engine._decode(len(tokens))
        ll.llama_memory_seq_cp(memory, seq, 0, -1, -1)
        ll.llama_memory_seq_rm(memory, seq, -1, -1)
    uninterrupted = answer(tiny_engine, end)

    # restored: computed at positions 0.. by the embedding pass, saved, moved into place
    _, states = tiny_engine.embed_documents_with_kv(DOCS)
    tiny_engine.reset()
    for state, offset in zip(states, offsets, strict=True):
        tiny_engine.restore_at(state, offset)
    restored = answer(tiny_engine, end)
    assert_same_answer(restored, uninterrupted)

    # and placement matters: the chunks left overlapping at 0.. give another prompt
    tiny_engine.reset()
    for state in states:
        tiny_engine.restore_at(state, 0)
    overlapped = answer(tiny_engine, max(len(s.tokens) for s in states))
    # (the tiny random model barely looks at its context, so the effect is small, yet
    # ten times the tolerance the equality above allows)
    assert np.abs(overlapped[0] - restored[0]).max() > 10 * LOGIT_TOLERANCE
