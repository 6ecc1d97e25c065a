"""Context-aware decoding (Shi et al. 2023, "Trusting Your Evidence: Hallucinate Less with
Context-aware Decoding", arXiv 2305.14739): each next token is chosen from

    (1 + alpha) * logits(with the passages) - alpha * logits(without them)

What reading the passages changed in the model's belief counts 1 + alpha times; what it
would have said anyway counts less. A small model that writes "10 euros a night" from habit
where its passage says eighteen is pushed towards the passage's words.

`Engine.stream(..., contrast=, contrast_prompt=)` runs it: the prompt without the passages
(the recipe's `query_alone` turn, built by rag) is prefilled into a scratch sequence beside
sequence 0, each chosen token is decoded into both in one llama_decode (two rows, two logit
rows), and the token is sampled from `Contrast.combine` of the two rows. Afterwards the
scratch sequence is gone and sequence 0 holds the prompt and the answer at the positions
and cells plain generation leaves them in. Its numbers are not plain generation's to the
last bit: llama.cpp multiplies two rows with other kernels than one (its sgemm runs for
batches of two or more), which on SmolLM2's Q4_1 weights moves logits by up to ~0.5, enough
to reword 20 of 79 answers when both sequences are decoded without any contrast (README,
"Answers"); on f32 weights it is exact but for a few K/V values' last bit
(tests/runtime/test_contrast.py). An alpha of 0 is therefore plain generation, not the
two-sequence path with a zero weight.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Contrast:
    """How much the answer is pushed away from what the model says without its passages.

    `plausibility` (beta, the adaptive plausibility constraint of contrastive decoding, Li
    et al. 2023): only tokens whose probability with the passages is at least beta times
    the likeliest one's may be chosen, so the contrast cannot pick a token the model finds
    implausible in context merely because it is even less likely without. 0: no constraint.
    """

    alpha: float  # 0: no contrast, plain decoding
    plausibility: float = 0.0

    def __post_init__(self) -> None:
        if self.alpha < 0:
            raise ValueError(f"contrast alpha {self.alpha}: choose 0 or more")
        if not 0 <= self.plausibility < 1:
            raise ValueError(f"plausibility {self.plausibility}: choose 0 to below 1")

    def combine(self, with_context: np.ndarray, without: np.ndarray) -> np.ndarray:
        """The logits a token is sampled from (-inf where the constraint rules it out)."""
        combined = (1 + self.alpha) * with_context - self.alpha * without
        if self.plausibility > 0:
            # p_i >= beta * p_max  <=>  logit_i >= logit_max + log(beta): one softmax's terms
            plausible = with_context >= with_context.max() + np.log(self.plausibility)
            combined = np.where(plausible, combined, np.float32(-np.inf))
        return combined
