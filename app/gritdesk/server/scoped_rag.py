"""Retrieval and answer preparation limited to one folder of the index (`root`).

`rag.retrieve.search` ranks the whole index; until it takes a scope, this module asks it
for a wider pool and keeps the hits under the folder, then prepares the answer from them
the way `Answerer.prepare` does.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import apsw

from gritdesk.errors import GritdeskError
from gritdesk.rag.answer import Answerer, AskOptions, PreparedAnswer, Source
from gritdesk.rag.layouts import CacheMode
from gritdesk.rag.rerank import rerank_hits
from gritdesk.rag.retrieve import Hit, search
from gritdesk.runtime.engine import ChatTurn, Engine
from gritdesk.runtime.errors import EmptyInputError
from gritdesk.store.sources import list_roots, root_containing

SCOPE_POOL_FACTOR = 8  # hits fetched per hit wanted before filtering by folder
SCOPE_POOL_MIN = 50


class UnknownRootError(GritdeskError):
    pass


def resolve_root(db: apsw.Connection, root: str) -> str:
    """The folder as an absolute path, refused with the known roots if the index has none of it."""
    path = str(Path(root).expanduser().resolve())
    if root_containing(db, path) is None:
        known = ", ".join(r.path for r in list_roots(db)) or "none yet"
        raise UnknownRootError(f"root {root!r} is not inside an indexed folder (indexed: {known})")
    return path


def in_scope(hit: Hit, root: str) -> bool:
    return hit.path == root or hit.path.startswith(root.rstrip(os.sep) + os.sep)


def scoped_search(
    db: apsw.Connection, engine: Engine, query: str, k: int, root: str | None
) -> list[Hit]:
    """The `k` best chunks for `query`, only from files under `root` when it is given."""
    if root is None:
        return search(db, engine, query, k)
    folder = resolve_root(db, root)
    hits = search(db, engine, query, max(SCOPE_POOL_MIN, SCOPE_POOL_FACTOR * k))
    return [hit for hit in hits if in_scope(hit, folder)][:k]


def prepare_answer(
    answerer: Answerer,
    question: str,
    options: AskOptions,
    history: Sequence[ChatTurn] = (),
    root: str | None = None,
) -> PreparedAnswer:
    """`Answerer.prepare`, with retrieval limited to `root` when it is given."""
    if root is None:
        return answerer.prepare(question, options, history)
    if not question.strip():
        raise EmptyInputError("the question is empty")
    if answerer.pair_mode and options.cache_mode is not CacheMode.OFF:
        raise GritdeskError('pair mode shares no KV between its two models: use cache "off"')
    wanted = max(options.k, options.rerank_candidates if options.rerank else 0)
    hits = scoped_search(answerer.db, answerer.engine, question, wanted, root)
    scores: list[float | None] = [None] * len(hits)
    if options.rerank and hits:
        ranked = rerank_hits(answerer.generator, question, hits)
        hits, scores = [h for h, _ in ranked], [s for _, s in ranked]
    prepared = PreparedAnswer(question, options, [], history)
    prepared.sources = [
        Source(i + 1, hit, rerank_score=score)
        for i, (hit, score) in enumerate(zip(hits[: options.k], scores[: options.k], strict=True))
    ]
    answerer.fit_context(prepared)  # the same context budget as an unscoped answer
    return prepared
