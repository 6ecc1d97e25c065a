"""A deterministic stand-in for the model in tests that are about indexing, not embedding.

Tokens are words and punctuation marks; a vector is a hashed bag of words, so texts
sharing words are close. Implements `TokenCounter` and `DocumentEmbedder`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

_TOKEN = re.compile(r"\w+|[^\w\s]")


class WordCounter:
    def __init__(self, max_document_tokens: int = 64) -> None:
        self._max = max_document_tokens

    def count_tokens(self, text: str) -> int:
        return len(_TOKEN.findall(text))

    @property
    def max_document_tokens(self) -> int:
        return self._max


class BagOfWordsEmbedder(WordCounter):
    def __init__(
        self, dim: int = 64, max_document_tokens: int = 64, fingerprint: str = "bag-of-words-v1"
    ) -> None:
        super().__init__(max_document_tokens)
        self._dim = dim
        self._fingerprint = f"{fingerprint}-{dim}"
        self.document_calls: list[int] = []  # batch sizes, to check batching
        self.model_path = f"/models/{fingerprint}.gguf"

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    @property
    def embedding_dim(self) -> int:
        return self._dim

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        self.document_calls.append(len(texts))
        for text in texts:
            assert self.count_tokens(text) <= self.max_document_tokens, "chunk over the limit"
        return np.stack([self._vector(t) for t in texts]) if texts else self._empty()

    def embed_queries(self, texts: Sequence[str], instruction: str) -> np.ndarray:
        return np.stack([self._vector(t) for t in texts]) if texts else self._empty()

    def _empty(self) -> np.ndarray:
        return np.zeros((0, self._dim), dtype=np.float32)

    def _vector(self, text: str) -> np.ndarray:
        vector = np.zeros(self._dim, dtype=np.float32)
        for word in re.findall(r"\w+", text.lower()):
            digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
            index = int.from_bytes(digest[:4], "little") % self._dim
            vector[index] += 1.0 if digest[4] & 1 else -1.0
        norm = np.linalg.norm(vector)
        if norm == 0:
            vector[0] = 1.0
            return vector
        return vector / norm
