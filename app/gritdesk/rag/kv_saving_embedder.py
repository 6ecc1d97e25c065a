"""An embedder for the indexer that also keeps each chunk's KV cache from the same pass.

The bidirectional pass that embeds a chunk at index time computes exactly the KV that Doc
Caching restores later; saving it then costs a write, not a second pass. The indexer
stays unaware: it calls `embed_documents` as with any `DocumentEmbedder`.

Indexing admits KV into the budget's free room only (store/kv_cache.py, the admission rule):
once no text of a batch can fit, the batch is embedded without taking its KV states at all,
so a corpus larger than the budget costs a plain embedding pass beyond the first budget's
worth of chunks.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gritdesk.ingest.chunk import text_digest
from gritdesk.runtime.engine import Engine
from gritdesk.store.kv_cache import KvCacheStore, KvCacheWriteError


class KvSavingEmbedder:
    """Delegates to the engine; `embed_documents` also saves every text's KV state."""

    saves_kv = True  # runs that save KV are slower: their speed is recorded apart

    def __init__(self, engine: Engine, kv_store: KvCacheStore) -> None:
        self.engine = engine
        self.kv_store = kv_store
        self.saved = 0
        self.skipped = 0  # not kept: the budget is full (or one blob is larger than all of it)
        self.failed = 0  # not written (disk full...): the chunks are indexed all the same
        self.last_failure: str | None = None
        self._bytes_per_token: float | None = None  # learnt from the first states taken

    @property
    def fingerprint(self) -> str:
        return self.engine.fingerprint

    @property
    def legacy_fingerprint(self) -> str:
        return self.engine.legacy_fingerprint

    @property
    def embedding_dim(self) -> int:
        return self.engine.embedding_dim

    @property
    def max_document_tokens(self) -> int:
        return self.engine.max_document_tokens

    def count_tokens(self, text: str) -> int:
        return self.engine.count_tokens(text)

    def embed_queries(self, texts: Sequence[str], instruction: str) -> np.ndarray:
        return self.engine.embed_queries(texts, instruction)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        if not self._room_for_any(texts):
            self.skipped += len(texts)
            return self.engine.embed_documents(texts)
        vectors, states = self.engine.embed_documents_with_kv(texts)
        signature = self.engine.kv_signature
        for text, state in zip(texts, states, strict=True):
            self._bytes_per_token = len(state.data) / max(len(state.tokens), 1)
            try:
                saved = self.kv_store.put(
                    text_digest(text), signature, state.tokens, state.data, by="index"
                )
            except KvCacheWriteError as exc:  # best effort: a cache miss later, not a lost file
                self.failed += 1
                self.last_failure = str(exc)
                continue
            if saved:
                self.saved += 1
            else:
                self.skipped += 1
        return vectors

    def _room_for_any(self, texts: Sequence[str]) -> bool:
        """Whether the budget's free room may take the KV of at least one of `texts` (before
        any state was taken, its size per token is unknown: then any free room will do)."""
        free = self.kv_store.free_bytes()
        if free <= 0:
            return False
        if self._bytes_per_token is None:
            return True
        shortest = min(len(self.engine.document_tokens(t)) for t in texts)
        return shortest * self._bytes_per_token < free
