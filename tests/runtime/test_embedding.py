"""GritLM embedding behaviour: instructions, pooling span, batching, guards."""

from __future__ import annotations

import numpy as np
import pytest

from gritdesk.runtime.engine import Engine, EngineSettings
from gritdesk.runtime.errors import EmptyInputError, InputTooLongError
from gritdesk.runtime.recipes import GRITLM
from reference.llama_numpy import LlamaWeights, forward, mean_pooled

TEXT = "The quarterly report lists revenue by region and product line."
INSTRUCTIONS = (
    "Given a question, retrieve passages that answer the question",
    "Given a web search query, retrieve relevant passages that answer the query",
)


def test_document_prefix_is_seven_tokens(tiny_engine) -> None:
    # GRITLM_NOTES: BOS + "<|embed|>\n" is 7 tokens with a LLaMA/Mistral SentencePiece vocab
    assert len(tiny_engine.tokenize(GRITLM.embedding.document(), add_bos=True)) == 7


def test_instructions_change_vector_but_not_pooled_tokens(tiny_engine, tiny_model_path) -> None:
    weights = LlamaWeights.load(tiny_model_path)
    vectors = tiny_engine.embed([TEXT, TEXT], instruction=None)
    np.testing.assert_allclose(vectors[0], vectors[1], atol=1e-5)
    samples = []
    for instruction in INSTRUCTIONS:
        prefix = GRITLM.embedding.query(instruction)
        tokens = tiny_engine.tokenize(prefix + TEXT, add_bos=True)
        n_prefix = len(tiny_engine.tokenize(prefix, add_bos=True))
        samples.append(tokens[n_prefix:])
        got = tiny_engine.embed([TEXT], instruction=instruction)[0]
        hidden, _ = forward(weights, tokens, causal=False)
        # pooling covers exactly the sample tokens: one token more or less is measurably off
        assert got @ mean_pooled(hidden, n_prefix) >= 0.9999
        assert got @ mean_pooled(hidden, n_prefix - 1) < 0.9999
        assert got @ mean_pooled(hidden, n_prefix + 1) < 0.9999
    assert samples[0] == samples[1]  # same sample tokens under both instructions
    a = tiny_engine.embed([TEXT], instruction=INSTRUCTIONS[0])[0]
    b = tiny_engine.embed([TEXT], instruction=INSTRUCTIONS[1])[0]
    assert a @ b < 0.9999  # yet the instruction, attended to, changes the vector


def test_batched_equals_one_by_one(tiny_engine) -> None:
    texts = [
        "Alpha beta gamma.",
        "A much longer text about the sea, the wind and the boats in the harbour at night.",
        "Zürich, Köln und Genève: noms de villes accentués.",
        "def add(a, b):\n    return a + b\n",
        "short",
    ]
    together = tiny_engine.embed(texts)
    for i, text in enumerate(texts):
        alone = tiny_engine.embed([text])[0]
        assert float(together[i] @ alone) >= 0.99999, i
    np.testing.assert_allclose(
        together, np.stack([tiny_engine.embed([t])[0] for t in texts]), atol=1e-4
    )


def test_batches_split_across_decodes(tiny_model_path) -> None:
    texts = [f"document number {i} talks about topic {i * 7 % 5}" for i in range(12)]
    with Engine(tiny_model_path, EngineSettings(n_ctx=64, n_seq_max=3)) as small:
        groups = list(small._groups([small._prepare(t, "<|embed|>\n", "t") for t in texts]))
        assert len(groups) >= 4  # n_seq_max 3 forces several decodes
        split = small.embed(texts)
    with Engine(tiny_model_path, EngineSettings(n_ctx=1024, n_seq_max=16)) as big:
        whole = big.embed(texts)
    np.testing.assert_allclose(split, whole, atol=1e-4)


def test_empty_and_overlong_text_raise_clear_errors(tiny_model_path) -> None:
    with Engine(tiny_model_path, EngineSettings(n_ctx=64)) as engine:
        with pytest.raises(EmptyInputError, match="text 2 is empty"):
            engine.embed(["fine", "   "])
        with pytest.raises(InputTooLongError, match=r"text 1 is \d+ tokens; the limit is 64"):
            engine.embed(["word " * 200])
        # the engine is still usable afterwards
        assert engine.embed(["still alive"]).shape == (1, engine.embedding_dim)


def test_max_document_tokens_fits_one_decode(tiny_model_path) -> None:
    with Engine(tiny_model_path, EngineSettings(n_ctx=128)) as engine:
        text = "lorem ipsum dolor sit amet " * 200
        tokens = engine.tokenize(text)
        fitting = engine.detokenize(tokens[: engine.max_document_tokens]).strip()
        assert engine.count_tokens(fitting) <= engine.max_document_tokens
        assert engine.embed_documents([fitting]).shape == (1, engine.embedding_dim)
