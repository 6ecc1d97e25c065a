"""The runtime against an independent numpy forward pass of the same tiny model."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from gritdesk.runtime.engine import ChatTurn, Engine, EngineSettings
from gritdesk.runtime.recipes import GRITLM
from reference.llama_numpy import LlamaWeights, forward, mean_pooled

TEXT = "Invoices are paid within thirty days of receipt, by bank transfer only."


@pytest.fixture(scope="module")
def weights(tiny_model_path) -> LlamaWeights:
    return LlamaWeights.load(tiny_model_path)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_bidirectional_embedding_matches_reference(tiny_engine, weights) -> None:
    prefix = GRITLM.embedding.document()
    tokens = tiny_engine.tokenize(prefix + TEXT, add_bos=True)
    n_prefix = len(tiny_engine.tokenize(prefix, add_bos=True))
    hidden, _ = forward(weights, tokens, causal=False)
    expected = mean_pooled(hidden, n_prefix)
    got = tiny_engine.embed([TEXT])[0]
    assert got.dtype == np.float32
    assert abs(np.linalg.norm(got) - 1.0) < 1e-5
    assert cosine(got, expected) >= 0.9999


def test_causal_next_token_logits_match_reference(tiny_engine, weights) -> None:
    tokens = tiny_engine.chat_tokens([ChatTurn(TEXT)])
    _, logits = forward(weights, tokens, causal=True)
    got = tiny_engine.next_token_logits(tokens)
    assert cosine(got, logits[-1]) >= 0.9999
    assert int(np.argmax(got)) == int(np.argmax(logits[-1]))
    np.testing.assert_allclose(got, logits[-1], atol=2e-3 * np.abs(logits[-1]).max())


def test_bidirectional_and_causal_embeddings_differ(tiny_model_path, tiny_engine, weights) -> None:
    causal_recipe = dataclasses.replace(
        GRITLM, embedding=dataclasses.replace(GRITLM.embedding, attention="causal")
    )
    with Engine(tiny_model_path, EngineSettings(n_ctx=512), recipe=causal_recipe) as causal:
        causal_vec = causal.embed([TEXT])[0]
    bidir_vec = tiny_engine.embed([TEXT])[0]
    prefix = GRITLM.embedding.document()
    tokens = tiny_engine.tokenize(prefix + TEXT, add_bos=True)
    n_prefix = len(tiny_engine.tokenize(prefix, add_bos=True))
    hidden, _ = forward(weights, tokens, causal=True)
    assert cosine(causal_vec, mean_pooled(hidden, n_prefix)) >= 0.9999  # causal path is right too
    assert cosine(causal_vec, bidir_vec) < 0.999  # and it is a different embedding
