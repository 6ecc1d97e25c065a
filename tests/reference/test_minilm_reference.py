"""all-MiniLM-L6-v2 through gritdesk's own runtime equals an independent numpy BERT
(reference/bert_numpy.py, reading the original safetensors and tokenizer.json, never the
GGUF): same token ids, embeddings with cosine >= 0.9999. And the check can fail: pooling
only [CLS], a tokenizer that does not lower-case, or a mean that leaves out [CLS]/[SEP] all
fall below it, on the reference side and in the real engine.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import gguf
import numpy as np
import pytest

from gritdesk.models.bert_gguf import KEY_LOWERCASE
from gritdesk.runtime.engine import Engine, EngineSettings
from gritdesk.runtime.recipes import MINILM
from reference.bert_numpy import BertReference

TOLERANCE = 0.9999
LONG = " ".join(
    f"Section {i}: the quarterly report lists revenue, travel refunds and on-call duties."
    for i in range(30)
)  # about 500 tokens: cut at 256 like sentence-transformers
SENTENCES = [
    "Hello, World! How are YOU today?",  # punctuation, upper case
    "The invoice total was 1,234.56 EUR, due on 2024-03-15.",  # numbers
    "Antidisestablishmentarianism is unbelievably hard to tokenize.",  # ## pieces
    "Crème brûlée at the Café Déjà Vu",  # accents, stripped by the uncased tokenizer
    "hotel costs are refunded up to 140 euros a night in europe",
    LONG,
]
CASED = [s for s in SENTENCES if s != s.lower()]


@pytest.fixture(scope="module")
def reference(minilm_source: Path) -> BertReference:
    return BertReference.load(minilm_source)


@pytest.fixture(scope="module")
def expected(reference: BertReference) -> np.ndarray:
    return np.array([reference.embed(s) for s in SENTENCES])


@pytest.fixture(scope="module")
def engine(minilm_path: Path):
    engine = Engine(minilm_path, EngineSettings())
    yield engine
    engine.close()


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_the_gguf_names_its_recipe_and_the_engine_takes_it(engine: Engine) -> None:
    assert engine.recipe is MINILM and engine.embedding_only and engine.embedding_dim == 384


def test_token_ids_equal_hugging_face_tokenizers(engine: Engine, reference: BertReference) -> None:
    vocab = reference.tokenizer.get_vocab()
    pieces = {i: t for t, i in vocab.items()}
    for sentence in SENTENCES:
        ours, theirs = engine.document_tokens(sentence), reference.tokens(sentence)
        assert ours == theirs, sentence
        assert ours[0] == vocab["[CLS]"] and ours[-1] == vocab["[SEP]"]
    assert len(engine.document_tokens(LONG)) == reference.max_seq_length == 256
    assert any(pieces[t].startswith("##") for t in engine.document_tokens(SENTENCES[2]))


def test_embeddings_equal_the_numpy_reference(engine: Engine, expected: np.ndarray) -> None:
    packed = engine.embed_documents(SENTENCES)  # the short ones share one encode call
    assert cosines(packed, expected).min() >= TOLERANCE, cosines(packed, expected)
    queries = engine.embed_queries(SENTENCES, "any instruction")  # MiniLM has none: the same
    assert cosines(queries, expected).min() >= TOLERANCE


def test_one_text_per_call_equals_packed(minilm_path: Path, engine: Engine) -> None:
    with Engine(minilm_path, EngineSettings(pack_tokens=1)) as alone:
        single = alone.embed_documents(SENTENCES)
    assert cosines(single, engine.embed_documents(SENTENCES)).min() >= 0.99999


# --- the same check fails for a wrong pipeline ------------------------------------------------


def test_cls_pooling_fails_the_check(engine: Engine, reference: BertReference) -> None:
    ours = engine.embed_documents(SENTENCES[:5])
    cls = np.array([reference.embed(s, pooling="cls") for s in SENTENCES[:5]])
    assert cosines(ours, cls).max() < TOLERANCE


def test_a_tokenizer_that_keeps_case_fails_the_check(
    engine: Engine, minilm_source: Path
) -> None:
    cased = BertReference.load(minilm_source, lowercase=False)
    short = [s for s in CASED if s != LONG]
    wrong = np.array([cased.embed(s) for s in short])
    assert cosines(engine.embed_documents(short), wrong).max() < TOLERANCE


def test_the_engine_with_the_mean_over_the_text_only_fails_the_check(
    minilm_path: Path, expected: np.ndarray
) -> None:
    """The pooling of gritdesk's other recipes (text tokens only, [CLS]/[SEP] left out). Two
    tokens of 256 barely move the mean (measured 0.99993 on the long text), so the check
    is made where they weigh: every short sentence fails it (0.994 to 0.997 measured)."""
    text_only = dataclasses.replace(
        MINILM, embedding=dataclasses.replace(MINILM.embedding, pooled="text")
    )
    with Engine(minilm_path, EngineSettings(), recipe=text_only) as wrong:
        got = cosines(wrong.embed_documents(SENTENCES[:5]), expected[:5])
    assert got.max() < TOLERANCE, got


def test_the_engine_on_a_gguf_that_does_not_lower_case_fails_the_check(
    minilm_path: Path, expected: np.ndarray, tmp_path: Path
) -> None:
    """A conversion that got the normalizer wrong: the same GGUF, one flag flipped."""
    broken = tmp_path / "cased.gguf"
    shutil.copyfile(minilm_path, broken)
    field = gguf.GGUFReader(broken, "r+").fields[KEY_LOWERCASE]
    field.parts[field.data[0]][0] = False  # written through the reader's memory map
    with Engine(broken, EngineSettings()) as wrong:
        got = cosines(wrong.embed_documents(SENTENCES), expected)
    for sentence, cos in zip(SENTENCES, got, strict=True):
        assert (cos < TOLERANCE) == (sentence in CASED), (sentence, cos)
