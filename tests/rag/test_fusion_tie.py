"""When vectors are noise, an exact rare term still comes first.

Every chunk gets a random vector; the query's vector happens to point straight at an
unrelated long file indexed first (lowest chunk ids), and away from the one file holding
the rare word. Keywords alone rank that file first, vectors alone the unrelated one: both
score 1/61 in the fusion, and the tie must go to the keyword match.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from gritdesk.ingest.indexer import index_paths
from gritdesk.rag.retrieve import search
from gritdesk.store.connection import open_database
from gritdesk.store.vectors import nearest_chunks
from ingest.fake_embedder import WordCounter

RARE = "zygomorphic"
DECOY = "Quarterly budget meeting minutes. " * 20


def _random_unit(text: str, dim: int) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    vector = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return vector / np.linalg.norm(vector)


class NoiseEmbedder(WordCounter):
    """Random vectors; any query lands on the decoy, and the rare-word chunk is its opposite."""

    fingerprint = "noise-v1"
    embedding_dim = 32
    model_path = "/models/noise.gguf"

    def __init__(self) -> None:
        super().__init__(max_document_tokens=256)

    def _decoy(self) -> np.ndarray:
        return _random_unit("decoy", self.embedding_dim)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        rows = []
        for text in texts:
            if "Quarterly budget" in text:
                rows.append(self._decoy())
            elif RARE in text:
                rows.append(-self._decoy())
            else:
                rows.append(_random_unit(text, self.embedding_dim))
        return np.stack(rows)

    def embed_queries(self, texts: Sequence[str], instruction: str) -> np.ndarray:
        return np.stack([self._decoy() for _ in texts])


def test_a_rare_exact_term_beats_a_vector_tie(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a-minutes.md").write_text(DECOY + "\n")
    for i in range(80):
        (docs / f"m-note{i:02}.md").write_text(f"Note {i} about gardening and weather {i * 7}.\n")
    (docs / "z-glossary.md").write_text(f"A {RARE} flower is bilaterally symmetric.\n")
    db = open_database(tmp_path / "index.db")
    embedder = NoiseEmbedder()
    index_paths(db, embedder, [docs])

    hits = search(db, embedder, RARE, k=3)
    vector_ranked = [
        c for c, _ in nearest_chunks(db, embedder.embed_queries([RARE], "")[0], 50, candidates=200)
    ]
    # the set-up: the rare word's chunk is not among the vector candidates, and the decoy
    # (first by vectors, lower chunk id) would win a tie decided by chunk id
    assert hits[0].keyword_rank == 1 and hits[0].chunk_id not in vector_ranked
    assert vector_ranked[0] < hits[0].chunk_id
    assert hits[0].path.endswith("z-glossary.md"), [h.path for h in hits]
    assert hits[1].path.endswith("a-minutes.md")
    assert hits[0].score == hits[1].score  # a true tie, decided for the keyword match
