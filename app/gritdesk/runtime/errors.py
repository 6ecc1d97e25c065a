"""Errors the runtime raises instead of letting llama.cpp abort; each names the bad value."""

from __future__ import annotations

from pathlib import Path

from gritdesk.errors import GritdeskError


class RuntimeFailure(GritdeskError):
    """Base class: everything here is reported to the user as a clear message."""


class ModelFileError(RuntimeFailure):
    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class InputTooLongError(RuntimeFailure):
    def __init__(self, what: str, n_tokens: int, limit: int) -> None:
        self.n_tokens = n_tokens
        self.limit = limit
        super().__init__(f"{what} is {n_tokens} tokens; the limit is {limit}")


class EmptyInputError(RuntimeFailure):
    pass


class DecodeError(RuntimeFailure):
    def __init__(self, code: int, detail: str = "") -> None:
        self.code = code
        super().__init__(
            f"llama_decode failed with code {code}" + (f": {detail}" if detail else "")
        )


class EmbeddingOnlyError(RuntimeFailure):
    """A call that needs a KV cache or logits (generate, save or restore KV) on an encoder
    model, which llama.cpp runs without either: refused before llama.cpp sees it."""


class KvStateError(RuntimeFailure):
    """A saved KV state could not be restored (llama.cpp refused it)."""


class NonFiniteOutputError(RuntimeFailure):
    """The model computed NaN or infinity: its weights are broken, and nothing it produced
    may reach an index or an answer."""

    def __init__(self, path: Path | str, what: str) -> None:
        self.path = Path(path)
        super().__init__(
            f"{path}: the model produced non-finite values (NaN or infinity) in its {what}; "
            "its weights are broken. Re-download or re-quantize it."
        )
