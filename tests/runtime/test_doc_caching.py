"""What Doc Caching may do with an architecture, read from GGUF metadata (no model loaded;
the layouts themselves are checked against the reference in test_reference_layouts.py)."""

from __future__ import annotations

from pathlib import Path

from gritdesk.runtime.doc_caching import doc_cache_support
from gritdesk.runtime.gguf_check import GgufSummary


def summary(arch: str, **metadata: str) -> GgufSummary:
    return GgufSummary(
        path=Path("x.gguf"), architecture=arch, name="x", n_layer=2, n_embd=64, n_head=2,
        n_head_kv=1, n_ctx_train=4096, n_vocab=32000, file_type=0, tensor_count=1,
        file_size=1, metadata={f"{arch}.{k.replace('__', '.')}": v for k, v in metadata.items()},
    )  # fmt: skip


def test_plain_rope_moves_and_needs_no_window() -> None:
    for arch, pairing in (("llama", "adjacent pairs"), ("qwen2", "NeoX halves")):
        support = doc_cache_support(summary(arch), adds_bos=arch == "llama")
        assert support.rope == pairing and support.can_move and support.window == 0
        assert support.refusal([500, 700], moved=True) is None


def test_rope_scaling_that_does_not_compose_keeps_segments_in_place() -> None:
    yarn = doc_cache_support(summary("qwen2", rope__scaling__type="yarn"), adds_bos=False)
    assert not yarn.can_move and "'yarn'" in yarn.why_not_move
    assert yarn.refusal([10, 10], moved=False) is None  # original placement: no shift
    assert "cannot be moved" in (yarn.refusal([10, 10], moved=True) or "")
    linear = doc_cache_support(summary("llama", rope__scaling__type="linear"), adds_bos=True)
    assert linear.can_move
    factor = summary("phi3", rope__scaling__attn_factor="1.19")
    assert not doc_cache_support(factor, adds_bos=True).can_move
    no_shift = doc_cache_support(summary("llama"), adds_bos=True, memory_can_shift=False)
    assert not no_shift.can_move


def test_sliding_window_bounds_each_segment() -> None:
    gemma = doc_cache_support(summary("gemma3", attention__sliding_window="512"), adds_bos=True)
    assert gemma.window == 512
    assert gemma.refusal([512, 300], moved=True) is None
    why = gemma.refusal([513], moved=False)
    assert why is not None and "513 tokens" in why and "512-token sliding window" in why
    assert "sliding window" in gemma.describe()
    # phi3 GGUFs carry a window llama.cpp ignores; the engine passes llama.cpp's own (0)
    phi = doc_cache_support(summary("phi3", attention__sliding_window="2047"), adds_bos=True)
    assert phi.window == 0
    assert doc_cache_support(summary("gemma3"), adds_bos=True, window=0).window == 0
