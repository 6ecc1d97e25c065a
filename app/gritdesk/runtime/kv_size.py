"""KV cache bytes per token from a model's shape (GRITLM_NOTES section 4).

n_layer x 2 (K and V) x row size of n_kv_heads x head_dim values in the cache type.
"""

from __future__ import annotations

# bytes per block and values per block of each cache type (ggml's block layouts)
_BLOCKS = {"f16": (2, 1), "q8_0": (34, 32), "q4_0": (18, 32)}


def kv_bytes_per_token(n_layer: int, n_head_kv: int, head_dim: int, kv_type: str) -> int:
    if kv_type not in _BLOCKS:
        raise ValueError(f"KV type {kv_type!r}: choose one of {', '.join(_BLOCKS)}")
    block_bytes, block_values = _BLOCKS[kv_type]
    row = n_head_kv * head_dim
    return n_layer * 2 * (row // block_values) * block_bytes
