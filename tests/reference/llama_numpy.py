"""An independent llama forward pass in numpy, written from the architecture, not llama.cpp.

RMSNorm -> attention (RoPE on adjacent pairs, grouped-query heads, causal or full mask)
-> residual -> RMSNorm -> SwiGLU -> residual, then a final RMSNorm and the LM head.
Reads weights with the `gguf` reader (f32 files only), in GGUF's own tensor layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gguf
import numpy as np


@dataclass
class LlamaWeights:
    n_layer: int
    n_head: int
    n_head_kv: int
    eps: float
    rope_base: float
    tensors: dict[str, np.ndarray]

    @classmethod
    def load(cls, path: Path) -> LlamaWeights:
        reader = gguf.GGUFReader(path)

        def field(key: str):
            return reader.fields[key].contents()

        tensors = {}
        for t in reader.tensors:
            if t.tensor_type != gguf.GGMLQuantizationType.F32:
                raise ValueError(
                    f"reference reads f32 tensors only, {t.name} is {t.tensor_type.name}"
                )
            # gguf stores ne0 (the row length) first; numpy wants rows last
            tensors[t.name] = np.asarray(t.data, dtype=np.float64).reshape(
                tuple(reversed([int(d) for d in t.shape]))
            )
        return cls(
            n_layer=int(field("llama.block_count")),
            n_head=int(field("llama.attention.head_count")),
            n_head_kv=int(field("llama.attention.head_count_kv")),
            eps=float(field("llama.attention.layer_norm_rms_epsilon")),
            rope_base=float(field("llama.rope.freq_base")),
            tensors=tensors,
        )


def rms_norm(x: np.ndarray, weight: np.ndarray, eps: float) -> np.ndarray:
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * weight


def rope(x: np.ndarray, positions: np.ndarray, base: float) -> np.ndarray:
    """x: (tokens, heads, head_dim); rotates adjacent pairs (x[2i], x[2i+1])."""
    head_dim = x.shape[-1]
    inv_freq = base ** (-np.arange(0, head_dim, 2) / head_dim)
    angles = positions[:, None] * inv_freq[None, :]  # (tokens, head_dim/2)
    cos, sin = np.cos(angles)[:, None, :], np.sin(angles)[:, None, :]
    even, odd = x[..., 0::2], x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2] = even * cos - odd * sin
    out[..., 1::2] = even * sin + odd * cos
    return out


def forward(
    w: LlamaWeights, tokens: list[int], *, causal: bool, positions: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Returns (final-norm hidden states (T, n_embd), logits (T, n_vocab))."""
    n = len(tokens)
    pos = np.arange(n, dtype=np.float64) if positions is None else positions.astype(np.float64)
    mask = np.tril(np.ones((n, n), dtype=bool)) if causal else np.ones((n, n), dtype=bool)
    hidden, _ = forward_over_cache(w, tokens, pos, mask, past=None)
    return hidden, hidden @ w.tensors["output.weight"].T


def forward_over_cache(
    w: LlamaWeights,
    tokens: list[int],
    positions: np.ndarray,
    allowed: np.ndarray,
    past: list[tuple[np.ndarray, np.ndarray]] | None,
) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """One pass of `tokens` over a KV cache: `past[layer] = (K, V)` for P cached tokens (K
    already rotated to its positions, shape (P, n_head_kv, head_dim)); `allowed` (T, P + T)
    says which cached and new tokens each new token attends to. Returns the final-norm hidden
    states and each layer's (K, V) of the new tokens (K rotated to `positions`)."""
    t = w.tensors
    n = len(tokens)
    pos = positions.astype(np.float64)
    bias = np.where(allowed, 0.0, -np.inf)
    x = t["token_embd.weight"][tokens]  # (T, n_embd)
    new_kv: list[tuple[np.ndarray, np.ndarray]] = []
    for i in range(w.n_layer):
        h = rms_norm(x, t[f"blk.{i}.attn_norm.weight"], w.eps)
        q = h @ t[f"blk.{i}.attn_q.weight"].T
        k = h @ t[f"blk.{i}.attn_k.weight"].T
        v = h @ t[f"blk.{i}.attn_v.weight"].T
        head_dim = q.shape[1] // w.n_head
        q = rope(q.reshape(n, w.n_head, head_dim), pos, w.rope_base)
        k = rope(k.reshape(n, w.n_head_kv, head_dim), pos, w.rope_base)
        v = v.reshape(n, w.n_head_kv, head_dim)
        new_kv.append((k, v))
        if past is not None:
            k = np.concatenate([past[i][0], k])
            v = np.concatenate([past[i][1], v])
        group = w.n_head // w.n_head_kv
        k = np.repeat(k, group, axis=1)
        v = np.repeat(v, group, axis=1)
        scores = np.einsum("qhd,khd->hqk", q, k) / np.sqrt(head_dim) + bias
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        probs = scores / scores.sum(axis=-1, keepdims=True)
        attn = np.einsum("hqk,khd->qhd", probs, v).reshape(n, -1)
        x = x + attn @ t[f"blk.{i}.attn_output.weight"].T
        h = rms_norm(x, t[f"blk.{i}.ffn_norm.weight"], w.eps)
        gate = h @ t[f"blk.{i}.ffn_gate.weight"].T
        up = h @ t[f"blk.{i}.ffn_up.weight"].T
        x = x + ((gate / (1 + np.exp(-gate))) * up) @ t[f"blk.{i}.ffn_down.weight"].T
    return rms_norm(x, t["output_norm.weight"], w.eps), new_kv


def mean_pooled(hidden: np.ndarray, n_prefix: int) -> np.ndarray:
    """GritLM pooling: mean over sample tokens (prefix excluded), then L2-normalise."""
    pooled = hidden[n_prefix:].mean(axis=0)
    return pooled / np.linalg.norm(pooled)
