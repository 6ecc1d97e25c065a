"""Why the chat cannot answer, in words for the problem screen instead of a traceback."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gritdesk.errors import GritdeskError
from gritdesk.runtime.errors import ModelFileError
from gritdesk.session import EmbeddingOnlyModelError
from gritdesk.settings import ConfigError
from gritdesk.store.model_record import EmptyIndexError, ModelMismatchError

ProblemKind = Literal["empty", "mismatch", "model", "database", "unexpected"]


@dataclass(frozen=True)
class Problem:
    kind: ProblemKind
    title: str
    detail: str

    @property
    def can_index(self) -> bool:
        """An empty index is fixed by indexing a folder from here."""
        return self.kind == "empty"


def problem_from_error(error: BaseException) -> Problem:
    """Name the problem an exception from opening or checking the index stands for."""
    if isinstance(error, EmptyIndexError):
        return Problem("empty", "Nothing is indexed in this database yet", str(error))
    if isinstance(error, ModelMismatchError):
        return Problem("mismatch", "This index was built with another model", str(error))
    if isinstance(error, EmbeddingOnlyModelError):
        return Problem("model", "This model only embeds", str(error))
    if isinstance(error, ConfigError | ModelFileError):
        return Problem("model", "The model could not be loaded", str(error))
    if isinstance(error, GritdeskError):
        return Problem("database", "The index could not be opened", str(error))
    return Problem(
        "unexpected", "Something went wrong opening the index", f"{type(error).__name__}: {error}"
    )
