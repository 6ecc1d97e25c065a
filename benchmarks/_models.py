"""Model selection shared by the benchmark scripts: a synthetic shape name or a GGUF path."""

from __future__ import annotations

from pathlib import Path


def resolve_model(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.suffix == ".gguf" and path.exists():
        return path
    from gritdesk.models.synthetic import synthetic_model_path
    from gritdesk.runtime.quantize import quantize_model

    return synthetic_model_path(name_or_path, quantize=quantize_model)
