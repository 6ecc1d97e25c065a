"""Find the chunks that answer a query: vector KNN and FTS5 BM25, fused by rank.

The query is embedded in the GritLM query format with a retrieval instruction;
documents were embedded without one. Semantic (vector) and lexical (BM25) rankings
fail differently: an exact rare word, a function name or an error code is found by
BM25 even when its embedding is vague. Reciprocal rank fusion (RRF) merges the two
rankings without having to calibrate their scores against each other, the vector ranking
weighted by what the embedder is worth (rag/vector_probe.py), and the merged chunks are
listed one per file first (rag/fusion.py).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import apsw

from gritdesk.rag.fusion import files_first, fuse_rankings
from gritdesk.runtime.protocols import DocumentEmbedder
from gritdesk.runtime.recipes import RETRIEVAL_INSTRUCTION, Recipe
from gritdesk.store import fts
from gritdesk.store.chunk_rows import chunk_rows, chunk_sources
from gritdesk.store.citations import chunk_location
from gritdesk.store.connection import read_transaction
from gritdesk.store.model_record import ModelRecord, check_model
from gritdesk.store.vector_worth import stored_vector_worth
from gritdesk.store.vectors import default_candidates, nearest_chunks

SNIPPET_CHARS = 240
FUSION_WEIGHTS = (1.0, 1.0)  # RRF weight of the keyword ranking, of the vector ranking


@dataclass(frozen=True)
class Hit:
    chunk_id: int
    path: str  # absolute
    start_line: int | None
    end_line: int | None
    page: int | None
    heading_path: str
    score: float  # fused RRF score: higher is better, comparable within one search only
    snippet: str
    text: str
    vector_similarity: float | None = None  # cosine, when the vector search found it
    keyword_rank: int | None = None  # 1-based BM25 rank, when the keyword search found it
    text_hash: str | None = None  # sha256 of the embedded text (chunks.text_hash)
    locator: str | None = None  # "slide 3", "Sheet1!A1:D20" (chunks.locator)

    @property
    def location(self) -> str:
        """`path:12-30`, `path:p4`, `path:slide 3`, `path:Sheet1!A1:D20` or `path`."""
        return chunk_location(self.path, self.start_line, self.end_line, self.page, self.locator)


def search(
    db: apsw.Connection,
    embedder: DocumentEmbedder,
    query: str,
    k: int = 10,
    instruction: str | None = None,
    *,
    pool: int | None = None,
    candidates: int | None = None,
    root_id: int | None = None,
    weights: Sequence[float] | None = None,
    by_file: bool = True,
) -> list[Hit]:
    """The `k` best chunks for `query`. `by_file` (a listing: `gritdesk search`, the
    server's and MCP's search) puts each file's best chunk first, best file first, then the
    files' second chunks, and so on (`files_first`); without it (the passages an answer
    reads) chunks come by their own fused score, so a file's second passage may come before
    another file's first.

    `instruction` defaults to the embedder recipe's retrieval instruction (GritLM:
    "Given a question, retrieve passages that answer the question"). Each ranking
    contributes its top `pool` (default max(50, 2k)) to the fusion, with `weights`
    (keyword, vector; see `fuse_rankings`; default `fusion_weights(embedder, db)`). `root_id`
    keeps to the files of one root (`--root`).
    Raises ModelMismatchError if `embedder` is not the model the index was built with,
    EmptyIndexError if nothing was indexed yet.
    """
    if k <= 0 or not query.strip():
        return []
    pool = pool or max(50, 2 * k)
    check_model(db, ModelRecord.of(embedder))
    if instruction is None:
        instruction = retrieval_instruction(embedder)
    query_vector = embedder.embed_queries([query], instruction)[0]
    with read_transaction(db):
        candidates = max(candidates or default_candidates(db), pool)
        vector_ranked = nearest_chunks(
            db, query_vector, pool, candidates=candidates, root_id=root_id
        )
        keyword_ranked = keyword_search(db, query, pool, root_id)
        vector_ids = [c for c, _ in vector_ranked]
        if weights is None:
            weights = fusion_weights(embedder, db)
        # keywords first: on a tie, an exact lexical hit beats a vector neighbour
        rankings = [keyword_ranked, vector_ids]
        if by_file:
            file_of = chunk_sources(db, set(keyword_ranked) | set(vector_ids))
            fused = files_first(rankings, file_of, weights=weights)[:k]
        else:
            fused = fuse_rankings(rankings, weights=weights)[:k]
        similarity = dict(vector_ranked)
        keyword_rank = {chunk_id: rank for rank, chunk_id in enumerate(keyword_ranked, 1)}
        rows = chunk_rows(db, [chunk_id for chunk_id, _ in fused])
    terms = keyword_terms(query)
    return [
        Hit(
            chunk_id=chunk_id,
            path=str(Path(row.root) / row.rel_path),
            start_line=row.start_line,
            end_line=row.end_line,
            page=row.page,
            heading_path=row.heading_path,
            score=score,
            snippet=make_snippet(row.text, terms),
            text=row.text,
            vector_similarity=similarity.get(chunk_id),
            keyword_rank=keyword_rank.get(chunk_id),
            text_hash=row.text_hash,
            locator=row.locator,
        )
        for chunk_id, score in fused
        if (row := rows.get(chunk_id)) is not None
    ]


def fusion_weights(embedder: object, db: apsw.Connection | None = None) -> tuple[float, float]:
    """(keyword, vector) weights by what the embedder is worth: a chat model run through an
    embedding recipe it was never trained for (SmolLM2) ranks worse than keywords alone
    (benchmarks/retrieval_eval.py), so its ranking only orders what no keyword found; a
    trained embedder counts as much as BM25, unless the index's own probe (`db`: measured
    after each index run by rag/vector_probe.py) found its vectors worth less."""
    recipe = getattr(embedder, "recipe", None)
    vector = 0.0 if recipe is not None and not recipe.trained_to_embed else FUSION_WEIGHTS[1]
    if db is not None:
        worth = stored_vector_worth(db)
        if worth is not None and worth.fingerprint == getattr(embedder, "fingerprint", None):
            vector = min(vector, worth.weight)
    return (FUSION_WEIGHTS[0], vector)


def retrieval_instruction(embedder: object) -> str:
    """The embedder recipe's query instruction; RETRIEVAL_INSTRUCTION for an embedder
    without a recipe (the test doubles) or a recipe without one."""
    recipe: Recipe | None = getattr(embedder, "recipe", None)
    return (recipe.retrieval_instruction if recipe is not None else "") or RETRIEVAL_INSTRUCTION


def keyword_search(
    db: apsw.Connection, query: str, limit: int, root_id: int | None = None
) -> list[int]:
    """Chunk ids by BM25 over chunk text, headings and file path, best first; any keyword
    of the query may match (store/fts.py).

    Words found in a large share of the chunks ("the", "how") are left out on a big index
    (`fts.informative_terms`); if every word is that common, there is no keyword ranking
    (the vector search still answers).
    """
    terms = fts.informative_terms(db, keyword_terms(query))
    return fts.ranked_chunk_ids(db, terms, limit, root_id)


# English function words: any chunk holds them, so they rank chunks by length, not topic
STOP_WORDS = frozenset(
    """
    a about am an and any are as at be been but by can could did do does doing for from
    had has have how i if in into is it its just me my no not of on or our so some such
    than that the their them then there these they this those to too us was we were what
    when where which while who whom why will with would you your
    d ll m re s t ve don didn doesn isn wasn aren couldn won wouldn shouldn
    """.split()
)
# words written as a term keep their stop words: `--all`, `-a`, `core.editor`, `do-not-track`
_WRITTEN_TERM = re.compile(r"(?<![\w-])--?\w[\w-]*|\w+(?:[._/-]\w+)+")


def query_terms(query: str) -> list[str]:
    """The words of a query, as FTS5's unicode61 tokenizer would split them."""
    return [term for term in re.findall(r"\w+", query.lower()) if term]


def keyword_terms(query: str) -> list[str]:
    """The query's words to match, once each: STOP_WORDS are left out unless written as
    part of a term (`--all`, `core.editor`) or every word is one ("what is it")."""
    words = list(dict.fromkeys(query_terms(query)))
    kept_as_written = {w for t in _WRITTEN_TERM.findall(query) for w in query_terms(t)}
    keywords = [w for w in words if w not in STOP_WORDS or w in kept_as_written]
    return keywords or words


def make_snippet(text: str, terms: list[str], width: int = SNIPPET_CHARS) -> str:
    """About `width` characters of `text` around the first query word it contains."""
    flat = " ".join(text.split())
    if len(flat) <= width:
        return flat
    lowered = flat.lower()
    positions = [
        match.start()
        for term in terms
        if (match := re.search(rf"\b{re.escape(term)}", lowered)) is not None
    ]
    start = max(0, min(positions) - width // 4) if positions else 0
    if start:
        space = flat.find(" ", start)
        start = space + 1 if 0 <= space < start + 20 else start
    end = min(len(flat), start + width)
    return ("…" if start else "") + flat[start:end].strip() + ("…" if end < len(flat) else "")
