"""What Doc Caching needs from a model's architecture, read from its GGUF at load.

A cached segment is the KV an embedding pass left: its tokens' keys and values, computed
with bidirectional attention among themselves, at positions 0..n-1. Reusing it needs:

- **RoPE that composes**: moving a segment (`Placement.CONSECUTIVE`) re-rotates its keys by
  the shift (llama.cpp's `llama_memory_seq_add`, per layer with that layer's RoPE base and
  the architecture's pairing: `llama` rotates adjacent pairs, `qwen2`, `qwen3`, `gemma3`,
  `phi3` the two halves of a head, GPT-NeoX style). Plain RoPE and linear scaling compose
  (rotating by p then by d is rotating by p + d); YaRN/LongRoPE-style scaling multiplies the
  rotation by an attention factor that a second rotation would apply twice, so a model with
  them cannot move segments: only `Placement.ORIGINAL` (no shift) is exact there.
- **Windows that cover the segment** (`gemma3`'s sliding-window layers): in those layers a
  token sees only keys less than `window` positions back. A segment no longer than the window
  was computed with every token seeing every other (as its bidirectional pass means); a
  longer one was not (llama.cpp hides the keys more than a window back but none ahead, an
  attention no Gemma 3 checkpoint defines), so Doc Caching reuses only segments that fit in
  one window. Where segments then sit is free: the suffix's window hides what is far back,
  in RAG and Doc Caching alike, and llama.cpp keeps (and saves) every key a window can reach.
- **BOS as the embedding pass saw it**: a segment starts with BOS when the tokenizer adds one
  (Llama, Mistral, Gemma, Phi-3) and without it when it does not (Qwen); the plain-RAG prompt
  does the same, so both layouts read the text the same way.

A layout this cannot do exactly is answered by plain RAG with a notice
(`rag/answer.py`, `Answerer.prepare`).
"""

from __future__ import annotations

from dataclasses import dataclass

from gritdesk.runtime.gguf_check import GgufSummary

# llama.cpp's rope type of each decoder architecture gritdesk runs (llama_model_rope_type)
ROPE_PAIRING = {
    "llama": "adjacent pairs",
    "qwen2": "NeoX halves",
    "qwen3": "NeoX halves",
    "gemma3": "NeoX halves",
    "phi3": "NeoX halves",
}
# Architectures whose sliding-window layers llama.cpp honours (phi3 GGUFs may carry a window
# that llama.cpp ignores, and so does gritdesk)
SLIDING_WINDOW_ARCHITECTURES = ("gemma3",)
SHIFTABLE_ROPE_SCALING = ("", "none", "linear")


@dataclass(frozen=True)
class DocCacheSupport:
    """What a model allows of Doc Caching (and the other cached layouts)."""

    architecture: str
    rope: str  # how RoPE pairs a head's values
    can_move: bool  # cached keys re-rotate exactly (segments may be moved)
    why_not_move: str  # when they cannot
    window: int  # sliding window of some layers, 0 for none
    adds_bos: bool

    def refusal(self, segment_tokens: list[int], moved: bool) -> str | None:
        """Why cached segments of these lengths cannot be reused exactly, `moved` (some
        restored at other positions than their own) or not; None when they can."""
        if moved and not self.can_move:
            return f"cached keys cannot be moved: {self.why_not_move}"
        too_long = [n for n in segment_tokens if self.window and n > self.window]
        if too_long:
            return (
                f"a cached segment of {max(too_long)} tokens is longer than this "
                f"{self.architecture} model's {self.window}-token sliding window"
            )
        return None

    def describe(self) -> str:
        """One line for `models info`."""
        parts = [f"RoPE {self.rope}"]
        parts.append("segments movable" if self.can_move else f"fixed: {self.why_not_move}")
        if self.window:
            parts.append(f"segments up to {self.window} tokens (sliding window)")
        parts.append("BOS first" if self.adds_bos else "no BOS")
        return ", ".join(parts)


def doc_cache_support(
    summary: GgufSummary,
    *,
    adds_bos: bool,
    memory_can_shift: bool = True,
    window: int | None = None,
) -> DocCacheSupport:
    """Read what Doc Caching needs from a decoder GGUF's metadata; the engine adds llama.cpp's
    own answers (`llama_memory_can_shift` for its context, `llama_model_n_swa`)."""
    arch, meta = summary.architecture, summary.metadata
    scaling = meta.get(f"{arch}.rope.scaling.type", "")
    attn_factor = meta.get(f"{arch}.rope.scaling.attn_factor")
    why_not = ""
    if not memory_can_shift:
        why_not = "llama.cpp cannot shift this model's KV cache"
    elif scaling not in SHIFTABLE_ROPE_SCALING:
        why_not = f"RoPE scaling {scaling!r} is not checked to compose under a shift"
    elif attn_factor is not None and float(attn_factor) != 1.0:
        why_not = f"RoPE attention factor {attn_factor} would apply twice under a shift"
    if window is None:
        window = 0
        if arch in SLIDING_WINDOW_ARCHITECTURES:
            window = int(meta.get(f"{arch}.attention.sliding_window", 0) or 0)
    return DocCacheSupport(
        architecture=arch,
        rope=ROPE_PAIRING.get(arch, "unknown"),
        can_move=not why_not,
        why_not_move=why_not,
        window=window,
        adds_bos=adds_bos,
    )
