"""The paper's cache layouts computed from the architecture, independently of llama.cpp.

A cached segment is what an embedding pass leaves: the keys/values of its tokens computed
with bidirectional attention among themselves only, at positions 0..n-1. Moving a segment
to other positions re-rotates its keys (RoPE composes: rotating by p then by d equals
rotating by p + d), each layer with its own RoPE base and pairing (`rope`'s `neox`). A fresh
suffix then attends causally to every cached token and to itself; in a sliding-window layer
only to those less than a window back (the same rule as in the pass that made the segment).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reference.llama_numpy import LlamaWeights, forward_over_cache, rope


@dataclass(frozen=True)
class Segment:
    """One cached segment: each layer's (K, V) and the positions its tokens sit at."""

    kv: list[tuple[np.ndarray, np.ndarray]]
    positions: np.ndarray

    @property
    def end(self) -> int:
        return int(self.positions.max()) + 1


def cached_segment(w: LlamaWeights, tokens: list[int], *, bidirectional: bool = True) -> Segment:
    """The KV an embedding pass of `tokens` leaves, at positions 0..n-1."""
    n = len(tokens)
    positions = np.arange(n, dtype=np.float64)
    allowed = np.ones((n, n), dtype=bool) if bidirectional else np.tril(np.ones((n, n), bool))
    _, kv = forward_over_cache(w, tokens, positions, allowed, past=None)
    return Segment(kv, positions)


def moved(w: LlamaWeights, segment: Segment, start: int) -> Segment:
    """The segment shifted so its first token sits at `start`: keys re-rotated by the shift."""
    delta = np.full(len(segment.positions), float(start - segment.positions[0]))
    kv = [
        (rope(k, delta, w.layer_rope_base(layer), w.arch.neox_rope), v)
        for layer, (k, v) in enumerate(segment.kv)
    ]
    return Segment(kv, segment.positions + delta)


def suffix_logits(
    w: LlamaWeights, segments: list[Segment], suffix: list[int], start: int
) -> np.ndarray:
    """Logits (len(suffix), n_vocab) of a causal suffix at positions start.. over the cache."""
    past = None
    past_positions = None
    n_past = 0
    if segments:
        past = [
            (
                np.concatenate([s.kv[layer][0] for s in segments]),
                np.concatenate([s.kv[layer][1] for s in segments]),
            )
            for layer in range(w.n_layer)
        ]
        n_past = sum(len(s.positions) for s in segments)
        past_positions = np.concatenate([s.positions for s in segments])
    n = len(suffix)
    allowed = np.concatenate(
        [np.ones((n, n_past), dtype=bool), np.tril(np.ones((n, n), dtype=bool))], axis=1
    )
    positions = np.arange(start, start + n, dtype=np.float64)
    hidden, _ = forward_over_cache(w, suffix, positions, allowed, past, past_positions)
    return w.lm_head(hidden)


def greedy_continuation(
    w: LlamaWeights, segments: list[Segment], suffix: list[int], start: int, n_tokens: int
) -> tuple[np.ndarray, list[int]]:
    """The logits after the suffix, and `n_tokens` greedy tokens generated from there."""
    tokens = list(suffix)
    first = None
    generated: list[int] = []
    for _ in range(n_tokens):
        logits = suffix_logits(w, segments, tokens, start)[-1]
        if first is None:
            first = logits
        token = int(np.argmax(logits))
        generated.append(token)
        tokens.append(token)
    assert first is not None
    return first, generated
