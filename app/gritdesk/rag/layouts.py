"""Prompt layouts for answering: which parts come from saved KV caches, which are fresh text.

The paper (GritLM, caching section) defines five: plain RAG (doc then query, all fresh),
Doc Caching, Query Caching, Query-Doc and Doc-Query. It handles one passage and keeps
each cached segment at the positions it was computed at. We also place several
retrieved chunks one after another (their KV shifted into place with RoPE re-rotation):
`Placement.CONSECUTIVE`. `Placement.ORIGINAL` keeps the paper's layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from gritdesk.runtime.recipes import CacheMode, Markup, Piece, Recipe, Text, fill, join_texts


class Placement(StrEnum):
    CONSECUTIVE = "consecutive"  # each cached segment moved right after the previous one
    ORIGINAL = "original"  # the paper's: every cached segment stays at positions 0..n-1


@dataclass(frozen=True)
class CachedPart:
    """A segment restored from KV: a document chunk (index into the chunks) or the query."""

    kind: str  # "doc" or "query"
    index: int = 0


@dataclass(frozen=True)
class Layout:
    """`current` is this turn in the recipe's format (its text filled in as Text, never parsed
    for special tokens); the recipe's chat renderer puts earlier turns before it. `opening`:
    no cached part comes first, so the prompt opens with BOS (and a system turn)."""

    cached: tuple[CachedPart, ...]
    current: tuple[Piece, ...]
    opening: bool = False


def build_layout(mode: CacheMode, recipe: Recipe, query: str, docs: list[str]) -> Layout:
    """The parts of the prompt for `mode`, in order; `docs` are ranked chunk texts."""
    rag = recipe.rag
    order = range(len(docs))[::-1] if rag.best_last else range(len(docs))
    doc_parts = tuple(CachedPart("doc", i) for i in order)
    joined = join_texts([docs[i] for i in order], rag.doc_separator)
    if mode is CacheMode.OFF:
        return Layout((), tuple(fill(rag.rag_doc_then_query, doc=joined, query=query)), True)
    if mode is CacheMode.DOC:
        return Layout(doc_parts, tuple(fill(rag.doc_cached_suffix, query=query)))
    if mode is CacheMode.QUERY:
        return Layout((CachedPart("query"),), tuple(fill(rag.query_cached_suffix, doc=joined)))
    if mode is CacheMode.QUERY_DOC:
        return Layout((CachedPart("query"), *doc_parts), tuple(fill(rag.query_doc_suffix)))
    if mode is CacheMode.DOC_QUERY:
        return Layout((*doc_parts, CachedPart("query")), tuple(fill(rag.doc_query_suffix)))
    raise ValueError(f"unknown cache mode {mode!r}")


def follow_up(mode: CacheMode, recipe: Recipe, query: str) -> tuple[Piece, ...] | None:
    """What follows a kept turn (its prompt and answer still in the KV) to ask the next
    question over the same chunks: the answer's end, then the question as `mode` asks it
    after its cached part. None: the mode caches the question itself (query, query-doc,
    doc-query), so a new question needs a new layout."""
    chat, rag = recipe.chat, recipe.rag
    if mode is CacheMode.DOC:
        turn = fill(rag.doc_cached_suffix, query=query)
    elif mode is CacheMode.OFF:
        turn = [Markup(chat.turn_sep), *chat.user_turn(query)]
    else:
        return None
    pieces = (*chat.answer_end, *turn)
    return tuple(p for p in pieces if not isinstance(p, Markup | Text) or p.text)


def without_passages(recipe: Recipe, query: str) -> tuple[Piece, ...]:
    """This turn as it would be asked with no passages at all (the same instruction): what
    context-aware decoding contrasts the answer with (runtime/contrast.py). The recipe's
    chat renderer opens the prompt and puts the conversation's earlier turns before it."""
    return tuple(fill(recipe.rag.query_alone, query=query))
