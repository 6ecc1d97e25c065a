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
    t = w.tensors
    n = len(tokens)
    pos = np.arange(n, dtype=np.float64) if positions is None else positions.astype(np.float64)
    x = t["token_embd.weight"][tokens]  # (T, n_embd)
    mask = np.triu(np.full((n, n), -np.inf), k=1) if causal else np.zeros((n, n))
    for i in range(w.n_layer):
        h = rms_norm(x, t[f"blk.{i}.attn_norm.weight"], w.eps)
        q = h @ t[f"blk.{i}.attn_q.weight"].T
        k = h @ t[f"blk.{i}.attn_k.weight"].T
        v = h @ t[f"blk.{i}.attn_v.weight"].T
        head_dim = q.shape[1] // w.n_head
        q = rope(q.reshape(n, w.n_head, head_dim), pos, w.rope_base)
        k = rope(k.reshape(n, w.n_head_kv, head_dim), pos, w.rope_base)
        v = v.reshape(n, w.n_head_kv, head_dim)
        group = w.n_head // w.n_head_kv
        k = np.repeat(k, group, axis=1)
        v = np.repeat(v, group, axis=1)
        scores = np.einsum("qhd,khd->hqk", q, k) / np.sqrt(head_dim) + mask
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        probs = scores / scores.sum(axis=-1, keepdims=True)
        attn = np.einsum("hqk,khd->qhd", probs, v).reshape(n, -1)
        x = x + attn @ t[f"blk.{i}.attn_output.weight"].T
        h = rms_norm(x, t[f"blk.{i}.ffn_norm.weight"], w.eps)
        gate = h @ t[f"blk.{i}.ffn_gate.weight"].T
        up = h @ t[f"blk.{i}.ffn_up.weight"].T
        x = x + ((gate / (1 + np.exp(-gate))) * up) @ t[f"blk.{i}.ffn_down.weight"].T
    hidden = rms_norm(x, t["output_norm.weight"], w.eps)
    return hidden, hidden @ t["output.weight"].T


def mean_pooled(hidden: np.ndarray, n_prefix: int) -> np.ndarray:
    """GritLM pooling: mean over sample tokens (prefix excluded), then L2-normalise."""
    pooled = hidden[n_prefix:].mean(axis=0)
    return pooled / np.linalg.norm(pooled)
