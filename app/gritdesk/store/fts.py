"""Keyword search over chunks: BM25 on the FTS5 table `chunks_fts` (store/migrations.py m009).

The table holds, per chunk, its text, its heading path ("Guide > Install") and its file's
path under the root ("docs/install.md"), stemmed (porter). A word in the heading path or
the file path says what the whole chunk is about, so it counts as two occurrences in the
text (`COLUMN_WEIGHTS`: FTS5's bm25() multiplies each column's term frequency by its
weight before BM25 saturates it; benchmarks/retrieval_eval.py measured 1 to 5, README,
Benchmarks). rag/retrieve.py decides which words of a question to look for; the SQL is
here.
"""

from __future__ import annotations

from collections.abc import Sequence

import apsw

COLUMN_WEIGHTS = (1.0, 2.0, 2.0)  # bm25() weights of text, heading_path, path
MAX_MATCH_TERMS = 64
COMMON_TERM_SHARE = 0.05  # a word in more than 5% of the chunks is not a keyword
COMMON_TERM_MIN_CHUNKS = 500  # ... unless the index is small enough for it not to matter

_RANK = "bm25({})".format(", ".join(f"{w:g}" for w in COLUMN_WEIGHTS))


def match_expression(terms: Sequence[str]) -> str | None:
    """An FTS5 MATCH expression that user text cannot break: each term quoted, OR-ed.

    Quoting makes AND/NOT/NEAR, quotes and parentheses plain words, and OR lets BM25 rank
    chunks by how many rare terms they hold instead of demanding all of them.
    """
    unique = [term.replace('"', '""') for term in dict.fromkeys(terms) if term]
    if not unique:
        return None
    return " OR ".join(f'"{term}"' for term in unique[:MAX_MATCH_TERMS])


def ranked_chunk_ids(
    db: apsw.Connection, terms: Sequence[str], limit: int, root_id: int | None = None
) -> list[int]:
    """Chunk ids by weighted BM25 over the terms (any may match), best first."""
    match = match_expression(terms)
    if match is None:
        return []
    if root_id is not None:
        rows = db.execute(
            "SELECT f.rowid FROM chunks_fts AS f JOIN chunks AS c ON c.id = f.rowid "
            "JOIN sources AS s ON s.id = c.source_id "
            "WHERE chunks_fts MATCH ? AND f.rank MATCH ? AND s.root_id = ? "
            "ORDER BY f.rank LIMIT ?",
            (match, _RANK, root_id, limit),
        )
    else:
        rows = db.execute(
            "SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ? AND rank MATCH ? "
            "ORDER BY rank LIMIT ?",
            (match, _RANK, limit),
        )
    return [chunk_id for (chunk_id,) in rows]


def informative_terms(db: apsw.Connection, terms: Sequence[str]) -> list[str]:
    """The terms found in at most COMMON_TERM_SHARE of the chunks (counted cheaply, capped).

    A word in a large share of the chunks carries almost no BM25 weight, yet ranking every
    chunk that holds it is what makes an FTS query slow on a big index.
    """
    (highest_id,) = db.execute("SELECT coalesce(max(id), 0) FROM chunks").fetchone()
    cap = max(COMMON_TERM_MIN_CHUNKS, int(highest_id * COMMON_TERM_SHARE))
    if highest_id <= cap:
        return list(terms)  # a small index: every term is cheap
    kept = []
    for term in terms[:MAX_MATCH_TERMS]:
        (matches,) = db.execute(
            "SELECT count(*) FROM (SELECT 1 FROM chunks_fts WHERE chunks_fts MATCH ? LIMIT ?)",
            (match_expression([term]), cap + 1),
        ).fetchone()
        if matches <= cap:
            kept.append(term)
    return kept
