"""What the layers above the runtime may rely on, so store/ingest/rag never import llama.cpp.

`gritdesk.runtime.engine.Engine` implements both protocols; tests and other layers type
against these.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np


class TokenCounter(Protocol):
    """The loaded model's own tokenizer, as far as chunking needs it.

    The indexer counts tokens on its preparing thread while another thread embeds, so
    `count_tokens` must be safe alongside `embed_documents` (the engine's reads only the
    vocabulary, which llama.cpp keeps safe to tokenize with from any thread)."""

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` alone (no BOS, no format prefix)."""
        ...

    @property
    def max_document_tokens(self) -> int:
        """Largest document text (in tokens, format prefix excluded) one embedding decode takes."""
        ...


class DocumentEmbedder(TokenCounter, Protocol):
    """Embeds documents and queries in the model's recipe format (GritLM by default)."""

    @property
    def fingerprint(self) -> str:
        """Stable identity of the GGUF file (sha256 of header + sampled tensor data)."""
        ...

    @property
    def embedding_dim(self) -> int: ...

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) float32, L2-normalised, document format, no instruction."""
        ...

    def embed_queries(self, texts: Sequence[str], instruction: str) -> np.ndarray:
        """(len(texts), dim) float32, L2-normalised, query format with `instruction`."""
        ...
