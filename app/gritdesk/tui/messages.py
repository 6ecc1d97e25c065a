"""Messages the workers post to the UI thread (posting is thread-safe in Textual).

Answer messages carry the turn they belong to, so pieces of an answer that was stopped
(Esc) or replaced by a new conversation are recognised and dropped.
"""

from __future__ import annotations

from collections.abc import Sequence

from textual.message import Message

from gritdesk.ingest.indexer import IndexProgress, IndexReport
from gritdesk.rag.answer import AnswerTimings
from gritdesk.rag.evidence import Evidence
from gritdesk.store.citations import Citation
from gritdesk.tui.backend import ChatBackend
from gritdesk.tui.problem import Problem


class AnswerStarted(Message):
    """Retrieval is done: these chunks will be given to the model."""

    def __init__(self, turn: int, sources: list[Citation], notices: list[str]) -> None:
        super().__init__()
        self.turn = turn
        self.sources = sources
        self.notices = notices


class SourcesKnown(Message):
    """The KV of every source is restored or computed: now each says which."""

    def __init__(self, turn: int, sources: list[Citation]) -> None:
        super().__init__()
        self.turn = turn
        self.sources = sources


class AnswerPiece(Message):
    """Text the model produced since the last piece; `rate` is tokens/s so far."""

    def __init__(self, turn: int, text: str, rate: float = 0.0) -> None:
        super().__init__()
        self.turn = turn
        self.text = text
        self.rate = rate


class AnswerFinished(Message):
    """Generation ended: `error` is set when it failed; `timings`, the sentences that support
    the answer (`evidence`) and its facts no source holds (`not_found`) when it ran."""

    def __init__(
        self,
        turn: int,
        *,
        finish_reason: str,
        timings: AnswerTimings | None = None,
        error: str | None = None,
        evidence: Sequence[Evidence] = (),
        not_found: Sequence[str] = (),
    ) -> None:
        super().__init__()
        self.turn = turn
        self.finish_reason = finish_reason
        self.timings = timings
        self.error = error
        self.evidence = list(evidence)
        self.not_found = list(not_found)


class BackendReady(Message):
    """The model is loaded; `problem` says why it cannot answer yet (empty index...).

    `generation` counts database switches: a load that finishes after another switch
    is stale.
    """

    def __init__(self, backend: ChatBackend, problem: Problem | None, generation: int) -> None:
        super().__init__()
        self.backend = backend
        self.problem = problem
        self.generation = generation


class BackendProblem(Message):
    """The index or model could not be opened (model missing, unreadable database...)."""

    def __init__(self, problem: Problem, generation: int) -> None:
        super().__init__()
        self.problem = problem
        self.generation = generation


class IndexingProgress(Message):
    def __init__(self, progress: IndexProgress) -> None:
        super().__init__()
        self.progress = progress


class IndexingFinished(Message):
    def __init__(
        self, report: IndexReport | None, *, error: str | None = None, cancelled: bool = False
    ) -> None:
        super().__init__()
        self.report = report
        self.error = error
        self.cancelled = cancelled


class StopIndexingRequested(Message):
    """Esc on the chat screen while an index run goes: the app stops it."""


class IndexSizeChanged(Message):
    """The chat screen wrote to the index database (an answer): the app shows its new size."""


class StoreFailed(Message):
    """A chat-history write failed on the store thread."""

    def __init__(self, error: BaseException) -> None:
        super().__init__()
        self.error = error
