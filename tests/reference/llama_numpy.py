"""An independent forward pass of gritdesk's decoder architectures in numpy, written from
each architecture's definition (its paper / reference implementation), not from llama.cpp.

The common trunk is llama's: RMSNorm -> attention (RoPE, grouped-query heads, causal or
full mask) -> residual -> RMSNorm -> SwiGLU -> residual, then a final RMSNorm and the LM
head. Each other architecture differs in a few named places (`Architecture`):

- qwen2: biases on the Q, K and V projections; RoPE rotates the two halves of a head
  (GPT-NeoX style) instead of adjacent pairs.
- qwen3: no biases; an RMSNorm over each head's q and k before RoPE; NeoX RoPE.
- gemma3: token embeddings scaled by sqrt(n_embd); q/k norms; RMSNorm after attention and
  after the FFN (before each residual add); GELU (tanh form) gating; sliding-window layers
  (a key more than `n_swa - 1` positions back is hidden; every `pattern`-th layer is global)
  whose RoPE base is 10000 while global layers use the file's; NeoX RoPE; the LM head is
  the embedding matrix. (Gemma's "1 + weight" norms are stored with the 1 added in GGUF.)
- phi3: one fused QKV matrix and one fused gate/up matrix (gate rows first); NeoX RoPE.

Reads weights with the `gguf` reader (f32 files only), in GGUF's own tensor layout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import gguf
import numpy as np


@dataclass(frozen=True)
class Architecture:
    """Where an architecture departs from llama (each flag switched off must break a test)."""

    neox_rope: bool = False  # rotate (x[i], x[i + d/2]) instead of (x[2i], x[2i+1])
    qkv_bias: bool = False
    qk_norm: bool = False
    embed_scale: bool = False  # x *= sqrt(n_embd) after the lookup
    post_norms: bool = False
    gelu: bool = False  # GELU (tanh) instead of SiLU on the gate
    sliding_window: bool = False  # honour the file's sliding_window on its SWA layers
    fused: bool = False  # attn_qkv and ffn_up = [gate; up]


ARCHITECTURES = {
    "llama": Architecture(),
    "qwen2": Architecture(neox_rope=True, qkv_bias=True),
    "qwen3": Architecture(neox_rope=True, qk_norm=True),
    "gemma3": Architecture(
        neox_rope=True,
        qk_norm=True,
        embed_scale=True,
        post_norms=True,
        gelu=True,
        sliding_window=True,
    ),
    "phi3": Architecture(neox_rope=True, fused=True),
}
GEMMA3_SWA_PATTERN = 6  # Gemma 3's config: five sliding-window layers, then a global one
GEMMA3_SWA_ROPE_BASE = 10000.0  # Gemma 3's rope_local_base_freq


@dataclass
class LlamaWeights:
    """Weights and hyperparameters of one decoder GGUF (any of `ARCHITECTURES`)."""

    n_layer: int
    n_head: int
    n_head_kv: int
    eps: float
    rope_base: float
    tensors: dict[str, np.ndarray]
    arch_name: str = "llama"
    arch: Architecture = field(default_factory=Architecture)
    n_swa: int = 0  # 0: no sliding window
    swa_layers: tuple[bool, ...] = ()
    rope_base_swa: float = GEMMA3_SWA_ROPE_BASE
    softcap: float = 0.0

    @classmethod
    def load(cls, path: Path) -> LlamaWeights:
        reader = gguf.GGUFReader(path)
        name = reader.fields["general.architecture"].contents()

        def field(key: str, default: object = None):
            f = reader.fields.get(f"{name}.{key}")
            return default if f is None else f.contents()

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
        arch = ARCHITECTURES[name]
        n_layer = int(field("block_count"))
        n_swa = int(field("attention.sliding_window", 0)) if arch.sliding_window else 0
        pattern = int(field("attention.sliding_window_pattern", GEMMA3_SWA_PATTERN))
        swa_layers = tuple(n_swa > 0 and i % pattern < pattern - 1 for i in range(n_layer))
        return cls(
            n_layer=n_layer,
            n_head=int(field("attention.head_count")),
            n_head_kv=int(field("attention.head_count_kv")),
            eps=float(field("attention.layer_norm_rms_epsilon")),
            rope_base=float(field("rope.freq_base")),
            tensors=tensors,
            arch_name=name,
            arch=arch,
            n_swa=n_swa,
            swa_layers=swa_layers,
            rope_base_swa=float(field("rope.freq_base_swa", GEMMA3_SWA_ROPE_BASE)),
            softcap=float(field("final_logit_softcapping", 0.0)),
        )

    def layer_rope_base(self, layer: int) -> float:
        return self.rope_base_swa if self.is_swa(layer) else self.rope_base

    def is_swa(self, layer: int) -> bool:
        return bool(self.swa_layers and self.swa_layers[layer])

    def lm_head(self, hidden: np.ndarray) -> np.ndarray:
        t = self.tensors
        logits = hidden @ t.get("output.weight", t["token_embd.weight"]).T  # tied when absent
        if self.softcap:
            logits = self.softcap * np.tanh(logits / self.softcap)
        return logits


def rms_norm(x: np.ndarray, weight: np.ndarray, eps: float) -> np.ndarray:
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * weight


def rope(x: np.ndarray, positions: np.ndarray, base: float, neox: bool = False) -> np.ndarray:
    """x: (tokens, heads, head_dim). Pairs (x[2i], x[2i+1]) rotate by position * base^(-2i/d);
    NeoX style pairs (x[i], x[i + d/2]) instead."""
    head_dim = x.shape[-1]
    inv_freq = base ** (-np.arange(0, head_dim, 2) / head_dim)
    angles = positions[:, None] * inv_freq[None, :]  # (tokens, head_dim/2)
    cos, sin = np.cos(angles)[:, None, :], np.sin(angles)[:, None, :]
    if neox:
        first, second = slice(0, head_dim // 2), slice(head_dim // 2, None)
    else:
        first, second = slice(0, None, 2), slice(1, None, 2)
    a, b = x[..., first], x[..., second]
    out = np.empty_like(x)
    out[..., first] = a * cos - b * sin
    out[..., second] = a * sin + b * cos
    return out


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x**3)))


def forward(
    w: LlamaWeights, tokens: list[int], *, causal: bool, positions: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Returns (final-norm hidden states (T, n_embd), logits (T, n_vocab))."""
    n = len(tokens)
    pos = np.arange(n, dtype=np.float64) if positions is None else positions.astype(np.float64)
    mask = np.tril(np.ones((n, n), dtype=bool)) if causal else np.ones((n, n), dtype=bool)
    hidden, _ = forward_over_cache(w, tokens, pos, mask, past=None)
    return hidden, w.lm_head(hidden)


def forward_over_cache(
    w: LlamaWeights,
    tokens: list[int],
    positions: np.ndarray,
    allowed: np.ndarray,
    past: list[tuple[np.ndarray, np.ndarray]] | None,
    past_positions: np.ndarray | None = None,
) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """One pass of `tokens` over a KV cache: `past[layer] = (K, V)` for P cached tokens (K
    already rotated to its positions `past_positions`, shape (P, n_head_kv, head_dim));
    `allowed` (T, P + T) says which cached and new tokens each new token attends to (a
    sliding-window layer hides further the keys more than a window back). Returns the
    final-norm hidden states and each layer's (K, V) of the new tokens (K rotated to
    `positions`)."""
    t, a = w.tensors, w.arch
    n = len(tokens)
    pos = positions.astype(np.float64)
    key_pos = pos if past_positions is None else np.concatenate([past_positions, pos])
    window = (pos[:, None] - key_pos[None, :]) < w.n_swa  # (T, P + T)
    x = t["token_embd.weight"][tokens]  # (T, n_embd)
    if a.embed_scale:
        x = x * np.sqrt(x.shape[1])
    new_kv: list[tuple[np.ndarray, np.ndarray]] = []
    for i in range(w.n_layer):
        blk = f"blk.{i}."
        h = rms_norm(x, t[blk + "attn_norm.weight"], w.eps)
        if a.fused:
            q, k, v = np.split(h @ t[blk + "attn_qkv.weight"].T, _qkv_splits(w), axis=1)
        else:
            q = h @ t[blk + "attn_q.weight"].T
            k = h @ t[blk + "attn_k.weight"].T
            v = h @ t[blk + "attn_v.weight"].T
        if a.qkv_bias:
            q, k, v = (q + t[blk + "attn_q.bias"], k + t[blk + "attn_k.bias"],
                       v + t[blk + "attn_v.bias"])  # fmt: skip
        head_dim = q.shape[1] // w.n_head
        q = q.reshape(n, w.n_head, head_dim)
        k = k.reshape(n, w.n_head_kv, head_dim)
        v = v.reshape(n, w.n_head_kv, head_dim)
        if a.qk_norm:
            q = rms_norm(q, t[blk + "attn_q_norm.weight"], w.eps)
            k = rms_norm(k, t[blk + "attn_k_norm.weight"], w.eps)
        base = w.layer_rope_base(i)
        q = rope(q, pos, base, a.neox_rope)
        k = rope(k, pos, base, a.neox_rope)
        new_kv.append((k, v))
        if past is not None:
            k = np.concatenate([past[i][0], k])
            v = np.concatenate([past[i][1], v])
        group = w.n_head // w.n_head_kv
        k = np.repeat(k, group, axis=1)
        v = np.repeat(v, group, axis=1)
        mask = allowed & window if w.is_swa(i) else allowed
        scores = np.einsum("qhd,khd->hqk", q, k) / np.sqrt(head_dim)
        scores = scores + np.where(mask, 0.0, -np.inf)
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        probs = scores / scores.sum(axis=-1, keepdims=True)
        attn = np.einsum("hqk,khd->qhd", probs, v).reshape(n, -1)
        out = attn @ t[blk + "attn_output.weight"].T
        if a.post_norms:
            out = rms_norm(out, t[blk + "post_attention_norm.weight"], w.eps)
        x = x + out
        h = rms_norm(x, t[blk + "ffn_norm.weight"], w.eps)
        if a.fused:
            gate, up = np.split(h @ t[blk + "ffn_up.weight"].T, 2, axis=1)
        else:
            gate = h @ t[blk + "ffn_gate.weight"].T
            up = h @ t[blk + "ffn_up.weight"].T
        act = gelu_tanh(gate) if a.gelu else gate / (1 + np.exp(-gate))
        out = (act * up) @ t[blk + "ffn_down.weight"].T
        if a.post_norms:
            out = rms_norm(out, t[blk + "post_ffw_norm.weight"], w.eps)
        x = x + out
    return rms_norm(x, t["output_norm.weight"], w.eps), new_kv


def _qkv_splits(w: LlamaWeights) -> list[int]:
    """Where a fused QKV output splits: [q | k | v] along the row."""
    width = w.tensors["blk.0.attn_qkv.weight"].shape[0]
    head_dim = width // (w.n_head + 2 * w.n_head_kv)
    return [w.n_head * head_dim, (w.n_head + w.n_head_kv) * head_dim]


def mean_pooled(hidden: np.ndarray, n_prefix: int) -> np.ndarray:
    """GritLM pooling: mean over sample tokens (prefix excluded), then L2-normalise."""
    pooled = hidden[n_prefix:].mean(axis=0)
    return pooled / np.linalg.norm(pooled)
