"""An embedder for the indexer that also keeps each chunk's KV cache from the same pass.

The bidirectional pass that embeds a chunk at index time computes exactly the KV that Doc
Caching restores later; saving it then costs a write, not a second pass. The indexer
stays unaware: it calls `embed_documents` as with any `DocumentEmbedder`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gritdesk.rag.answer import text_digest
from gritdesk.runtime.engine import Engine
from gritdesk.store.kv_cache import KvCacheStore, KvCacheWriteError


class KvSavingEmbedder:
    """Delegates to the engine; `embed_documents` also saves every text's KV state."""

    saves_kv = True  # runs that save KV are slower: their speed is recorded apart

    def __init__(self, engine: Engine, kv_store: KvCacheStore) -> None:
        self.engine = engine
        self.kv_store = kv_store
        self.saved = 0
        self.skipped = 0  # larger than the whole budget
        self.failed = 0  # not written (disk full...): the chunks are indexed all the same
        self.last_failure: str | None = None

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
        vectors, states = self.engine.embed_documents_with_kv(texts)
        signature = self.engine.kv_signature
        for text, state in zip(texts, states, strict=True):
            try:
                saved = self.kv_store.put(text_digest(text), signature, state.tokens, state.data)
            except KvCacheWriteError as exc:  # best effort: a cache miss later, not a lost file
                self.failed += 1
                self.last_failure = str(exc)
                continue
            if saved:
                self.saved += 1
            else:
                self.skipped += 1
        return vectors
