"""How far a quantized model's embeddings drift from its source model's.

Both models embed the same fixed sentences as documents; the report is the cosine
between the two embeddings of each sentence (1.0 = no drift), its mean and its
minimum. The sentences are fixed so reports of different quantizations compare.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gritdesk.models.errors import ModelsError

SAMPLE_SENTENCES: tuple[str, ...] = (
    "The invoice from March is still unpaid and the supplier has sent a reminder.",
    "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen.",
    "To reset the router, hold the button on the back for ten seconds.",
    "The meeting moved to Thursday at 3 pm in the small conference room.",
    "def parse(path): return json.loads(Path(path).read_text())",
    "Die Bahn fährt heute wegen Bauarbeiten nur bis zum Hauptbahnhof.",
    "Side effects may include headache, nausea and mild dizziness.",
    "Q3 revenue grew 12% year over year, driven by subscriptions in Europe.",
)


@dataclass(frozen=True)
class DriftReport:
    cosines: tuple[float, ...]

    @property
    def mean(self) -> float:
        return float(np.mean(self.cosines))

    @property
    def min(self) -> float:
        return float(np.min(self.cosines))

    def to_json(self) -> dict[str, object]:
        return {"mean_cosine": self.mean, "min_cosine": self.min, "cosines": list(self.cosines)}


def embed_samples(path: Path, texts: Sequence[str] = SAMPLE_SENTENCES) -> np.ndarray:
    """Document embeddings of `texts` by the model at `path` (loaded, used, closed)."""
    from gritdesk.runtime.engine import Engine, EngineSettings

    with Engine(path, EngineSettings(n_ctx=512, n_seq_max=len(texts))) as engine:
        return np.asarray(engine.embed(list(texts)), dtype=np.float64)


def rowwise_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return np.sum(a * b, axis=1)


def compare(reference: np.ndarray, candidate: np.ndarray, what: str = "candidate") -> DriftReport:
    if reference.shape != candidate.shape:
        raise ModelsError(
            f"{what}: embeddings are {candidate.shape[1]}-d, the source gives "
            f"{reference.shape[1]}-d; these are not the same model"
        )
    return DriftReport(tuple(float(c) for c in rowwise_cosine(reference, candidate)))


def embedding_drift(
    reference: Path, candidate: Path, texts: Sequence[str] = SAMPLE_SENTENCES
) -> DriftReport:
    """Embed `texts` with each model in turn (one loaded at a time) and compare."""
    return compare(embed_samples(reference, texts), embed_samples(candidate, texts), str(candidate))
