"""Fusion weights by what the embedder is worth: the vectors of a chat model never trained to
embed (SmolLM2's recipe) cannot push a keyword hit down; a trained embedder's ranking counts
as much as BM25. (What a model claiming to embed is measured to be worth on an index:
test_vector_probe.py.)"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from gritdesk.rag.retrieve import FUSION_WEIGHTS, fusion_weights
from gritdesk.runtime.engine import Engine, EngineSettings
from gritdesk.runtime.recipes import GRITLM, SMOLLM2

UNTRAINED = dataclasses.replace(GRITLM, trained_to_embed=False)


def test_weights_follow_what_the_model_is(
    tiny_model_path: Path, smollm2_path: Path, minilm_path: Path
) -> None:
    with Engine(tiny_model_path, EngineSettings(n_ctx=512), recipe=UNTRAINED) as tiny:
        assert fusion_weights(tiny) == (1.0, 0.0)
    with Engine(smollm2_path, EngineSettings(n_ctx=512), recipe=SMOLLM2) as smol:
        assert fusion_weights(smol) == (1.0, 0.0)  # a chat model not trained to embed
    with Engine(minilm_path, EngineSettings(n_ctx=512)) as minilm:
        assert fusion_weights(minilm) == FUSION_WEIGHTS == (1.0, 1.0)
