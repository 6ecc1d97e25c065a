"""A `bert` GGUF (the real all-MiniLM-L6-v2) in the engine: llama.cpp gives it no KV memory,
so every call that would need one is refused with a clear error before llama.cpp sees it
(a NULL memory or a missing logits buffer must never crash the process), a recipe that
would generate or attend causally is refused at load, and the chunker's limit fits the
model's 256 trained positions exactly."""

from __future__ import annotations

import shutil
from pathlib import Path

import gguf
import pytest

from gritdesk.runtime import engine as engine_module
from gritdesk.runtime.engine import ChatTurn, Engine, EngineSettings, KvState
from gritdesk.runtime.errors import EmbeddingOnlyError, ModelFileError
from gritdesk.runtime.recipes import get_recipe


@pytest.fixture(scope="module")
def engine(minilm_path: Path):
    engine = Engine(minilm_path, EngineSettings())
    yield engine
    engine.close()


def test_no_kv_memory_and_a_small_encoder_context(engine: Engine) -> None:
    assert engine._memory is None  # llama_get_memory returned NULL: nothing to clear or save
    assert engine.n_ctx == engine.n_ubatch == 512  # its position table; 4096 is the default


@pytest.mark.parametrize(
    "call",
    [
        lambda e: e.embed_documents_with_kv(["a text"]),
        lambda e: list(e.generate("hello")),
        lambda e: e.chat_tokens([ChatTurn("hello")]),
        lambda e: e.prefill([101, 102], 0),
        lambda e: list(e.stream([101, 102])),
        lambda e: e.next_token_logits([101, 102]),
        lambda e: e.last_logits(),
        lambda e: e.restore_at(KvState((101,), b"\0" * 64), 0),
        lambda e: e.keep_until(0),
    ],
    ids=["kv-save", "generate", "chat", "prefill", "stream", "rerank", "logits", "restore", "keep"],
)
def test_calls_that_need_kv_or_logits_are_refused(engine: Engine, call) -> None:
    with pytest.raises(EmbeddingOnlyError, match="embeds only and has no KV cache"):
        call(engine)
    engine.reset()  # no memory to clear: a no-op, not a NULL dereference
    assert engine.embed_documents(["still embedding"]).shape == (1, 384)


@pytest.mark.parametrize("recipe", ["gritlm", "smollm2", "e5-mistral"])
def test_a_recipe_that_generates_or_is_causal_is_refused_at_load(
    minilm_path: Path, recipe: str
) -> None:
    with pytest.raises(ModelFileError, match="--recipe minilm"):
        Engine(minilm_path, EngineSettings(), recipe=get_recipe(recipe))


def test_chunks_get_256_tokens_minus_cls_and_sep(engine: Engine) -> None:
    assert engine.max_document_tokens == 254
    words = " ".join(f"word{i}" for i in range(400))
    text = words
    while engine.count_tokens(text) > engine.max_document_tokens:
        text = text.rsplit(" ", 1)[0]
    assert len(engine.document_tokens(text)) <= 256  # a chunk at the limit is never cut


def test_longer_texts_are_cut_at_256_tokens_not_refused(engine: Engine) -> None:
    long = "refund " * 600
    tokens = engine.document_tokens(long)
    assert len(tokens) == 256 and tokens[-1] == engine.eos  # [SEP] kept, like the reference
    assert engine.embed_queries([long], "").shape == (1, 384)


def test_many_texts_pack_into_few_encode_calls(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Short texts share llama_encode calls, each with its own sequence id (n_seq_max per
    call); positions restart at 0 for each (the reference test checks the vectors)."""
    calls: list[int] = []
    real = engine_module.ll.llama_encode

    def counting(ctx, batch):
        calls.append(batch.n_tokens)
        return real(ctx, batch)

    monkeypatch.setattr(engine_module.ll, "llama_encode", counting)
    texts = [f"short text number {i}" for i in range(40)]
    assert engine.embed_documents(texts).shape == (40, 384)
    per_call = engine.settings.n_seq_max
    assert len(calls) == -(-len(texts) // per_call)  # 16 texts a call: 3 calls
    assert sum(calls) == sum(len(engine.document_tokens(t)) for t in texts)


def test_a_model_trained_on_its_cls_vector_is_refused_by_a_mean_recipe(
    minilm_path: Path, tmp_path: Path
) -> None:
    """bge and other BERTs pool [CLS]; the GGUF says so, and the mean recipe would be wrong."""
    cls_model = tmp_path / "cls.gguf"
    shutil.copyfile(minilm_path, cls_model)
    field = gguf.GGUFReader(cls_model, "r+").fields["bert.pooling_type"]
    field.parts[field.data[0]][0] = int(gguf.PoolingType.CLS)
    with pytest.raises(ModelFileError, match="trained with pooling type 2"):
        Engine(cls_model, EngineSettings())
