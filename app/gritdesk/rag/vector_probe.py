"""How much is this index's vector ranking worth? Measured on the index itself.

A model's recipe says whether it was trained to embed, but a GGUF of unknown make, a
broken conversion or a random-weight test model claims nothing true. So after an index
run the embedder is probed: a dozen words from the middle of a few chunks are searched
for, and the rank of the chunk's file is read from the vector ranking and from keyword
search (which finds such words almost always). Its skill is the vector ranking's mean
reciprocal rank, 0 at chance and 1 at keyword search's. Weight: 0 below NO_WEIGHT_SKILL,
1 from FULL_WEIGHT_SKILL, linear between. Measured on git-doc's 26 pages (README,
"Retrieval on real documentation"): all-MiniLM-L6-v2 0.77, SmolLM2's own vectors 0.18, the
random-weight test model 0.15; on that corpus's real questions fusing the first helps
(hit@3 43 of 51 against keywords' 38) and fusing either of the others at full weight
hurts (27 and 25).
"""

from __future__ import annotations

import apsw

from gritdesk.rag.fusion import files_in_order
from gritdesk.rag.retrieve import keyword_search, retrieval_instruction
from gritdesk.runtime.protocols import DocumentEmbedder
from gritdesk.store.chunk_rows import chunk_sources
from gritdesk.store.connection import read_transaction
from gritdesk.store.vector_worth import (
    VectorWorth,
    chunk_count,
    file_count,
    probe_chunks,
    store_vector_worth,
    stored_vector_worth,
)
from gritdesk.store.vectors import default_candidates, nearest_chunks

PROBES = 24
PROBE_WORDS = 12
MIN_PROBE_TOKENS = 40
MIN_PROBES = 6
MIN_FILES = 3  # with fewer files, any ranking finds the file
POOL = 50
NO_WEIGHT_SKILL = 0.3
FULL_WEIGHT_SKILL = 0.6
REMEASURE_GROWTH = 0.25  # the index changed by more than this share of its chunks


def weight_for(skill: float) -> float:
    span = FULL_WEIGHT_SKILL - NO_WEIGHT_SKILL
    return min(1.0, max(0.0, (skill - NO_WEIGHT_SKILL) / span))


def probe_query(text: str) -> str:
    """PROBE_WORDS words from a third into the text: inside the chunk, past its heading."""
    words = text.split()
    start = len(words) // 3
    return " ".join(words[start : start + PROBE_WORDS])


def _file_rank(ranking: list[int], file_of: dict[int, int], target: int) -> int | None:
    files = files_in_order(ranking, file_of)
    return files.index(target) + 1 if target in files else None


def _mrr(ranks: list[int | None]) -> float:
    return sum(1 / r for r in ranks if r) / len(ranks)


def measure_vector_worth(db: apsw.Connection, embedder: DocumentEmbedder) -> VectorWorth | None:
    """Probe the index (see the module's docstring); None when it is too small to tell."""
    with read_transaction(db):
        files = file_count(db)
        probes = probe_chunks(db, PROBES, MIN_PROBE_TOKENS)
        chunks = chunk_count(db)
    if files < MIN_FILES or len(probes) < MIN_PROBES:
        return None
    queries = [probe_query(text) for _, _, text in probes]
    vectors = embedder.embed_queries(queries, retrieval_instruction(embedder))
    keyword_ranks: list[int | None] = []
    vector_ranks: list[int | None] = []
    with read_transaction(db):
        candidates = max(default_candidates(db), POOL)
        for (_, file_id, _), query, vector in zip(probes, queries, vectors, strict=True):
            keyword = keyword_search(db, query, POOL)
            nearest = [c for c, _ in nearest_chunks(db, vector, POOL, candidates=candidates)]
            file_of = chunk_sources(db, set(keyword) | set(nearest))
            keyword_ranks.append(_file_rank(keyword, file_of, file_id))
            vector_ranks.append(_file_rank(nearest, file_of, file_id))
    chance = sum(1 / r for r in range(1, files + 1)) / files  # a random order of the files
    keyword_mrr = _mrr(keyword_ranks)
    if keyword_mrr - chance < 0.1:
        return None  # keyword search cannot tell the files apart either: no yardstick
    skill = (_mrr(vector_ranks) - chance) / (keyword_mrr - chance)
    return VectorWorth(
        fingerprint=embedder.fingerprint,
        weight=round(weight_for(skill), 3),
        skill=round(skill, 3),
        probes=len(probes),
        chunks=chunks,
    )


def refresh_vector_worth(db: apsw.Connection, embedder: DocumentEmbedder) -> VectorWorth | None:
    """The stored measure, measured again when missing, of another embedder, or when the
    index grew or shrank by more than REMEASURE_GROWTH since."""
    stored = stored_vector_worth(db)
    if stored is not None and stored.fingerprint == embedder.fingerprint:
        with read_transaction(db):
            chunks = chunk_count(db)
        if abs(chunks - stored.chunks) <= REMEASURE_GROWTH * max(stored.chunks, 1):
            return stored
    worth = measure_vector_worth(db, embedder)
    if worth is not None:
        store_vector_worth(db, worth)
    return worth
