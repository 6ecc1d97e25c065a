"""Every embedding recipe against the independent numpy forward pass (f32 tiny model)."""

from __future__ import annotations

import numpy as np
import pytest

from gritdesk.runtime.engine import Engine, EngineSettings
from gritdesk.runtime.recipes import E5_MISTRAL, ECHO, GEM, GRITLM, LLM2VEC, RECIPES
from reference.llama_numpy import LlamaWeights, forward

TEXT = "Quarterly revenue grew in the northern region after the new product line."
INSTRUCTION = "Given a question, retrieve passages that answer the question"


@pytest.fixture(scope="module")
def weights(tiny_model_path) -> LlamaWeights:
    return LlamaWeights.load(tiny_model_path)


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def reference(
    engine: Engine, weights: LlamaWeights, name: str, instruction: str | None
) -> np.ndarray:
    """Each family's pooling, spelled out from its description, not from the engine's code."""
    tok = engine.tokenize
    if name == "gritlm":
        prefix = f"<|user|>\n{instruction}\n<|embed|>\n" if instruction else "<|embed|>\n"
        tokens = tok(prefix + TEXT, add_bos=True)
        hidden, _ = forward(weights, tokens, causal=False)
        return unit(hidden[len(tok(prefix, add_bos=True)) :].mean(axis=0))
    if name == "e5-mistral":
        prefix = f"Instruct: {instruction}\nQuery: " if instruction else ""
        tokens = [*tok(prefix + TEXT, add_bos=True), engine.eos]
        hidden, _ = forward(weights, tokens, causal=True)
        return unit(hidden[-1])  # the EOS token's state
    if name == "echo":
        first = f"{instruction}\nRewrite the query:\n" if instruction else "Rewrite the passage:\n"
        head = first + TEXT + "\nRewritten:\n"
        tokens = tok(head + TEXT, add_bos=True)
        hidden, _ = forward(weights, tokens, causal=True)
        return unit(hidden[len(tok(head, add_bos=True)) :].mean(axis=0))  # the second copy
    if name == "llm2vec":
        prefix = f"{instruction}: " if instruction else ""
        tokens = tok(prefix + TEXT, add_bos=True)
        hidden, _ = forward(weights, tokens, causal=False)
        return unit(hidden[len(tok(prefix, add_bos=True)) :].mean(axis=0))
    if name == "gem":
        prefix = f"{instruction}\n" if instruction else ""
        body = tok(prefix + TEXT, add_bos=True)
        tokens = tok(prefix + TEXT + "\n<|emb_1|><|emb_2|><|emb_3|><|emb_4|>", add_bos=True)
        hidden, _ = forward(weights, tokens, causal=True)
        return unit(hidden[len(body) :].mean(axis=0))  # the appended marker tokens only
    raise AssertionError(name)


@pytest.mark.parametrize("recipe", [GRITLM, E5_MISTRAL, ECHO, LLM2VEC, GEM], ids=lambda r: r.name)
def test_recipe_matches_reference(tiny_model_path, weights, recipe) -> None:
    with Engine(tiny_model_path, EngineSettings(n_ctx=512, n_seq_max=4), recipe=recipe) as engine:
        document = engine.embed_documents([TEXT])[0]
        query = engine.embed_queries([TEXT], INSTRUCTION)[0]
        batched = engine.embed_documents([TEXT, "another text entirely", TEXT])
        assert float(document @ reference(engine, weights, recipe.name, None)) >= 0.9999
        assert float(query @ reference(engine, weights, recipe.name, INSTRUCTION)) >= 0.9999
    np.testing.assert_allclose(batched[0], document, atol=1e-4)
    np.testing.assert_allclose(batched[2], document, atol=1e-4)


def test_recipes_give_different_embeddings(tiny_model_path) -> None:
    vectors = {}
    for name, recipe in RECIPES.items():
        if recipe.chat.template == "gguf":  # read from a file's own template (tiny has none):
            continue  # tests/runtime/test_template_recipe.py
        with Engine(tiny_model_path, EngineSettings(n_ctx=512), recipe=recipe) as engine:
            vectors[name] = engine.embed_documents([TEXT])[0]
    names = sorted(vectors)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert float(vectors[a] @ vectors[b]) < 0.9999, (a, b)


def test_echo_document_limit_accounts_for_two_copies(tiny_model_path) -> None:
    with (
        Engine(tiny_model_path, EngineSettings(n_ctx=256), recipe=ECHO) as echo,
        Engine(tiny_model_path, EngineSettings(n_ctx=256)) as grit,
    ):
        assert echo.max_document_tokens < grit.max_document_tokens / 2 + 8
        text = "word " * 1000
        fitting = echo.detokenize(echo.tokenize(text)[: echo.max_document_tokens])
        assert echo.embed_documents([fitting]).shape == (1, echo.embedding_dim)
