"""The work each endpoint hands the engine thread: embed, chat, answer from the index,
rerank, search. Every method named `run` runs on that thread and nowhere else.
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np

from gritdesk.errors import GritdeskError
from gritdesk.rag.answer import PreparedAnswer
from gritdesk.rag.ask_service import AskService
from gritdesk.rag.rerank import relevance_score
from gritdesk.rag.retrieve import Hit
from gritdesk.runtime.engine import ChatTurn, Engine, GenerationOptions, GenerationStats
from gritdesk.runtime.errors import EmptyInputError, InputTooLongError
from gritdesk.server.engine_worker import Job, WorkerMetrics
from gritdesk.session import Session


def answering_engine(session: Session) -> Engine:
    """The engine that generates: the chat model in pair mode, else the one model."""
    session.require_answering_model()
    engine = session.chat_engine or session.engine
    assert engine is not None
    return engine


@dataclass
class Embedded:
    vectors: np.ndarray
    prompt_tokens: int  # tokens of the texts themselves (format prefix excluded)


class EmbedJob(Job):
    """Texts to embed in one format: a query instruction, or None for documents."""

    def __init__(
        self, texts: Sequence[str], instruction: str | None, max_input_tokens: int | None = None
    ) -> None:
        super().__init__()
        self.texts = list(texts)
        self.instruction = instruction
        self.max_input_tokens = max_input_tokens
        self.tokens = 0  # of the texts themselves, counted on the engine thread

    def count_tokens(self, engine: Engine) -> None:
        """Count the texts' tokens, refusing an empty text or one longer than one embedding
        decode takes (or `max_input_tokens`) before it joins a batch, so a bad request
        fails alone and the others still share their decodes."""
        fmt = engine.recipe.embedding
        limit = engine.max_document_tokens
        if self.instruction is not None:  # a query's prefix is longer than a document's
            prefix_tokens = engine.count_tokens(fmt.query(self.instruction))
            limit -= max(0, prefix_tokens - engine.count_tokens(fmt.document()))
        if self.max_input_tokens is not None:
            limit = min(limit, self.max_input_tokens)
        total = 0
        for i, text in enumerate(self.texts):
            if not text.strip():
                raise EmptyInputError(f"text {i + 1} is empty: nothing to embed")
            n = engine.count_tokens(text)
            if n > limit:
                raise InputTooLongError(f"text {i + 1}", n, limit)
            total += n
        self.tokens = total

    def batch_key(self) -> Hashable | None:
        return ("embed", self.instruction)

    def run(self, session: Session, metrics: WorkerMetrics) -> None:
        self.run_batch([self], session, metrics)

    @classmethod
    def run_batch(cls, jobs: Sequence[Job], session: Session, metrics: WorkerMetrics) -> None:
        """One Engine.embed over every job's texts; a job whose texts fail is retried alone,
        so one bad request does not fail the others merged with it."""
        engine = session.engine
        assert engine is not None
        embed_jobs = []
        for job in jobs:
            assert isinstance(job, EmbedJob)
            try:
                job.count_tokens(engine)
                embed_jobs.append(job)
            except GritdeskError as exc:
                if len(jobs) == 1:
                    raise
                job.emit("error", exc)
        if not embed_jobs:
            return
        texts = [text for job in embed_jobs for text in job.texts]
        try:
            vectors = engine.embed(texts, instruction=embed_jobs[0].instruction)
        except GritdeskError:
            if len(embed_jobs) == 1:
                raise
            for job in embed_jobs:
                try:
                    cls.run_batch([job], session, metrics)
                except GritdeskError as exc:
                    job.emit("error", exc)
            return
        metrics.embed_batches += 1
        metrics.embed_requests += len(embed_jobs)
        metrics.embed_texts += len(texts)
        start = 0
        for job in embed_jobs:
            rows = vectors[start : start + len(job.texts)]
            start += len(job.texts)
            job.emit("done", Embedded(rows, job.tokens))


@dataclass
class ChatOutcome:
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # OpenAI's: "stop" or "length" ("cancelled" when the client left)


def openai_finish_reason(engine_reason: str) -> str:
    return {"context": "length"}.get(engine_reason, engine_reason)


class ChatJob(Job):
    """Generate a chat answer from scratch, streaming pieces as events."""

    def __init__(
        self, turns: Sequence[ChatTurn], options: GenerationOptions, max_input_tokens: int | None
    ) -> None:
        super().__init__()
        self.turns = list(turns)
        self.options = options
        self.max_input_tokens = max_input_tokens
        self.stats: GenerationStats | None = None
        self._tokens_at_cancel: int | None = None

    def cancel(self) -> None:
        if self.stats is not None and self._tokens_at_cancel is None:
            self._tokens_at_cancel = self.stats.generated_tokens
        super().cancel()

    def run(self, session: Session, metrics: WorkerMetrics) -> None:
        engine = answering_engine(session)
        prompt_tokens = len(engine.chat_tokens(self.turns))
        limit = min(self.max_input_tokens or engine.n_ctx, engine.n_ctx - 1)
        if prompt_tokens > limit:
            raise InputTooLongError("the prompt (messages in chat format)", prompt_tokens, limit)
        self.stats = stats = GenerationStats()
        metrics.generations += 1
        pieces = engine.generate(self.turns, self.options, stats, should_stop=self._stop_now)
        for piece in pieces:
            self.emit("piece", piece)
        metrics.generated_tokens += stats.generated_tokens
        if self.cancelled and self.cancelled_at is not None:
            at_cancel = self._tokens_at_cancel or 0
            metrics.record_cancel(
                stats.generated_tokens - at_cancel, time.perf_counter() - self.cancelled_at
            )
        self.emit(
            "done",
            ChatOutcome(
                prompt_tokens, stats.generated_tokens, openai_finish_reason(stats.finish_reason)
            ),
        )

    def _stop_now(self) -> bool:
        return self.cancelled


@dataclass(frozen=True)
class RagRequest:
    """What a client asked of the `gritdesk-rag` model or MCP's `ask`, as given: None takes
    the answering service's default."""

    question: str
    history: Sequence[ChatTurn] = ()
    k: int | None = None
    cache: str | None = None
    rerank: bool | None = None
    max_tokens: int | None = None
    max_tokens_limit: int | None = None
    root: str | None = None
    sampling: GenerationOptions | None = None


class RagJob(Job):
    """Answer from the index through the answering service: ("sources", PreparedAnswer), the
    pieces, ("done", Answer)."""

    def __init__(self, service: AskService, request: RagRequest) -> None:
        super().__init__()
        self.service = service
        self.request = request
        self._pieces_at_cancel: int | None = None
        self._pieces = 0

    def cancel(self) -> None:
        if self._pieces_at_cancel is None:
            self._pieces_at_cancel = self._pieces
        super().cancel()

    def run(self, session: Session, metrics: WorkerMetrics) -> None:
        r = self.request
        options = self.service.options(
            k=r.k,
            cache=r.cache,
            rerank=r.rerank,
            max_tokens=r.max_tokens,
            max_tokens_limit=r.max_tokens_limit,
            root=r.root,
            sampling=r.sampling,
        )

        def started(prepared: PreparedAnswer) -> None:
            self.emit("sources", prepared)
            metrics.generations += 1

        def piece(text: str) -> None:
            self._pieces += 1
            self.emit("piece", text)

        answer = self.service.ask(
            r.question,
            options,
            r.history,
            on_prepared=started,
            on_piece=piece,
            should_stop=lambda: self.cancelled,
        )
        metrics.generated_tokens += answer.timings.generated_tokens
        if self.cancelled and self.cancelled_at is not None:
            after = self._pieces - (self._pieces_at_cancel or 0)  # pieces: about one a token
            metrics.record_cancel(after, time.perf_counter() - self.cancelled_at)
        self.emit("done", answer)


@dataclass
class Reranked:
    scores: list[float]  # one per document, in the order given
    prompt_tokens: int


class RerankJob(Job):
    def __init__(self, query: str, documents: Sequence[str]) -> None:
        super().__init__()
        self.query = query
        self.documents = list(documents)

    def run(self, session: Session, metrics: WorkerMetrics) -> None:
        engine = answering_engine(session)
        if not self.query.strip():
            raise GritdeskError("the query is empty")
        scores = []
        for document in self.documents:
            if self.cancelled:
                return
            scores.append(relevance_score(engine, self.query, document))
        query_tokens = engine.count_tokens(self.query)
        tokens = sum(query_tokens + engine.count_tokens(d) for d in self.documents)
        self.emit("done", Reranked(scores, tokens))


class SearchJob(Job):
    def __init__(self, service: AskService, query: str, k: int, root: str | None) -> None:
        super().__init__()
        self.service = service
        self.query = query
        self.k = k
        self.root = root

    def run(self, session: Session, metrics: WorkerMetrics) -> None:
        hits: list[Hit] = self.service.search(self.query, self.k, self.root)
        self.emit("done", hits)
