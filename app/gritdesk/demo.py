"""`gritdesk demo`: the README's main job until indexing and Q&A exist.

Embeds a few sentences bidirectionally and generates an answer causally with one model
loaded once. Without a model it makes the synthetic tiny model and says its output is noise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rich.console import Console

from gritdesk.config import resolve_model

SENTENCES = (
    "The invoice from March was paid by bank transfer.",
    "The March invoice was settled with a bank transfer.",
    "Penguins live in the southern hemisphere.",
)


def run_demo(model: Path | None) -> None:
    from gritdesk.models.synthetic import synthetic_model_path
    from gritdesk.runtime.engine import Engine, EngineSettings, GenerationOptions
    from gritdesk.runtime.quantize import quantize_model

    console = Console(stderr=True)
    path = resolve_model(model)
    if path is None:
        path = synthetic_model_path("tiny", quantize=quantize_model)
        console.print(
            "[yellow]No model configured: using the synthetic test model "
            f"({path.name}). Its weights are random, so its answers are noise.[/yellow]\n"
            "Get a real one with: [bold]gritdesk models pull gritlm-7b[/bold]"
        )
    with Engine(path, EngineSettings(n_ctx=2048)) as engine:
        console.print(
            f"model: {engine.summary.name}, {engine.summary.n_layer} layers, "
            f"{engine.embedding_dim}-d embeddings"
        )
        vectors = engine.embed_documents(SENTENCES)
        sims = vectors @ vectors.T
        for i, sentence in enumerate(SENTENCES):
            others = ", ".join(f"{sims[i, j]:.3f}" for j in range(len(SENTENCES)))
            print(f"cosine [{others}]  {sentence}")
        closest = int(np.argsort(-sims[0])[1])
        print(f"closest to sentence 1: sentence {closest + 1}")
        print("answer: ", end="", flush=True)
        for piece in engine.generate(
            "How was the March invoice paid?", GenerationOptions(max_tokens=24)
        ):
            print(piece, end="", flush=True)
        print()
