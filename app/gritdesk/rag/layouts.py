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

from gritdesk.runtime.recipes import Recipe


class CacheMode(StrEnum):
    OFF = "off"
    DOC = "doc"
    QUERY = "query"
    QUERY_DOC = "query-doc"
    DOC_QUERY = "doc-query"


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
    cached: tuple[CachedPart, ...]
    fresh_text: str  # tokenized without BOS, unless `fresh_has_bos`
    fresh_has_bos: bool = False


def build_layout(mode: CacheMode, recipe: Recipe, query: str, docs: list[str]) -> Layout:
    """The parts of the prompt for `mode`, in order; `docs` are ranked chunk texts."""
    rag = recipe.rag
    doc_parts = tuple(CachedPart("doc", i) for i in range(len(docs)))
    joined = rag.doc_separator.join(docs)
    if mode is CacheMode.OFF:
        return Layout(
            (), rag.rag_doc_then_query.format(doc=joined, query=query), fresh_has_bos=True
        )
    if mode is CacheMode.DOC:
        return Layout(doc_parts, rag.doc_cached_suffix.format(query=query))
    if mode is CacheMode.QUERY:
        return Layout((CachedPart("query"),), rag.query_cached_suffix.format(doc=joined))
    if mode is CacheMode.QUERY_DOC:
        return Layout((CachedPart("query"), *doc_parts), rag.query_doc_suffix)
    if mode is CacheMode.DOC_QUERY:
        return Layout((*doc_parts, CachedPart("query")), rag.doc_query_suffix)
    raise ValueError(f"unknown cache mode {mode!r}")
