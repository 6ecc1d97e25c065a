"""How an engine's context is built: size, KV type, batch sizes, threads.

Kept apart from `engine.py` (which loads llama.cpp) so settings and model tools can name
KV types and defaults without loading the native library.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class KvType(StrEnum):
    """The KV cache's element type (keys and values alike)."""

    F16 = "f16"
    Q8_0 = "q8_0"
    Q4_0 = "q4_0"


DEFAULT_CONTEXT = 4096  # tokens


@dataclass(frozen=True)
class EngineSettings:
    """Context settings. `n_ubatch` bounds one bidirectional decode, so it is the longest
    text that can be embedded; by default it equals the context."""

    n_ctx: int = DEFAULT_CONTEXT
    n_ubatch: int | None = None
    n_seq_max: int = 16
    # Texts share one embedding decode only up to this many tokens in all: in a shared
    # non-causal decode every token's attention spans the whole batch (the other texts
    # masked out), so on a CPU packing long texts costs more than it saves (measured:
    # 8 x 117 tokens packed ran at 0.74x one-by-one). Short texts gain from sharing.
    pack_tokens: int = 256
    n_threads: int | None = None
    kv_type: KvType = KvType.F16
    flash_attn: bool = False
    n_gpu_layers: int | None = None  # None: all layers with a GPU backend, else 0 (engine.py)

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "kv_type", KvType(self.kv_type))
        except ValueError:
            choices = ", ".join(KvType)
            raise ValueError(f"kv_type {self.kv_type!r}: choose one of {choices}") from None

    def resolved_flash_attn(self) -> bool:
        # a quantized V cache needs flash attention (GRITLM_NOTES section 4)
        return self.flash_attn or self.kv_type is not KvType.F16


def describe_gpu_layers(gpu_layers: int, n_layer: int) -> str:
    """Resolved `gpu_layers` for people: "all 32 on GPU", "none (CPU)", "12 of 32 on GPU"."""
    if gpu_layers < 0 or gpu_layers >= n_layer > 0:
        return f"all {n_layer} on GPU"
    if gpu_layers == 0:
        return "none (CPU)"
    return f"{gpu_layers} of {n_layer} on GPU"
