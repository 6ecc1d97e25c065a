"""One answering service, as every interface answers: `gritdesk ask`, the chat app, the HTTP
server's `gritdesk-rag` model and the MCP `ask` tool all come here (the twin of
`IndexService`), so the same question on the same index gets the same answer, sources and
notices everywhere.

It owns the answering rules: the defaults (k, max tokens, the recipe's cache mode, rerank:
`AskOptions`, from rag/ask_defaults.py), which folder answers (`root_scope.resolve_root`),
how much of a conversation the model sees and retrieves with, when the files cannot
answer (`abstention.cannot_answer`), preparing and streaming
(`Answerer`), and the one result an interface renders (`Answer`): the text, its sources,
the sentences that support it (`evidence.py`) and the facts no passage holds
(`grounding.py`). Interfaces parse input and render output.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from gritdesk.errors import GritdeskError
from gritdesk.rag.abstention import cannot_answer
from gritdesk.rag.answer import (
    Answerer,
    AnswerTimings,
    AskOptions,
    PreparedAnswer,
)
from gritdesk.rag.ask_defaults import (
    CANNOT_ANSWER,
    DEFAULT_MAX_TOKENS,
    MAX_HISTORY_TURNS,
    MAX_K,
    RETRIEVAL_QUESTIONS,
    SMALL_MODEL_CONTRAST_ALPHA,
    SMALL_MODEL_FOCUS,
    SMALL_MODEL_MAX_TOKENS,
    SMALL_MODEL_PARAMS,
)
from gritdesk.rag.evidence import Evidence, choose_evidence, passage_parts
from gritdesk.rag.focus import question_similarity
from gritdesk.rag.grounding import ungrounded_facts
from gritdesk.rag.layouts import CacheMode, Placement
from gritdesk.rag.retrieve import Hit
from gritdesk.rag.root_scope import RootScope, resolve_root, scoped_search
from gritdesk.runtime.contrast import Contrast
from gritdesk.runtime.engine import ChatTurn, GenerationOptions
from gritdesk.runtime.errors import InputTooLongError
from gritdesk.store.citations import Citation

if TYPE_CHECKING:  # the composition layer above rag builds the session and hands it down
    from gritdesk.session import Session

E = TypeVar("E", bound=Enum)


def parse_choice(enum: type[E], value: str, what: str) -> E:
    """`value` as a member of `enum`, or an error that lists the choices."""
    try:
        return enum(value)
    except ValueError:
        choices = ", ".join(str(m.value) for m in enum)
        raise GritdeskError(f"{what} {value!r}: choose one of {choices}") from None


def earlier_questions(history: Sequence[ChatTurn]) -> list[str]:
    """The last few questions before the new one, oldest first, for the retrieval query:
    a follow-up ("and in Asia?") means little alone."""
    return [turn.user for turn in history[-RETRIEVAL_QUESTIONS:]]


def answered_before(history: Sequence[ChatTurn]) -> bool:
    """Whether the conversation's last question was answered from the files (not "I can't
    find that in your files.", nor left unanswered)."""
    last = history[-1].assistant if history else None
    return last is not None and last.strip() != CANNOT_ANSWER


def fit_history(
    prepare: Callable[[list[ChatTurn]], PreparedAnswer], history: Sequence[ChatTurn]
) -> PreparedAnswer:
    """`prepare` with as many recent answered turns as fit the context (at most
    MAX_HISTORY_TURNS), oldest dropped first; InputTooLongError only if the question alone
    does not fit."""
    turns = [t for t in history if t.assistant is not None][-MAX_HISTORY_TURNS:]
    left_out = 0
    while True:
        try:
            prepared = prepare(turns)
        except InputTooLongError:
            if not turns:
                raise
            turns, left_out = turns[1:], left_out + 1
            continue
        if left_out:
            prepared.notices.append(
                f"left out the {left_out} oldest turn(s) of the conversation to fit the context"
            )
        return prepared


@dataclass
class Answer:
    """What every interface shows of an answer: the text, its sources with their locations,
    why it ended, what was noticed on the way, and how long each part took."""

    question: str
    text: str
    finish_reason: str
    cache_mode: CacheMode
    placement: Placement
    sources: list[Citation]
    notices: list[str] = field(default_factory=list)
    timings: AnswerTimings = field(default_factory=AnswerTimings)
    evidence: list[Evidence] = field(default_factory=list)  # the sentences that support it
    not_found: list[str] = field(default_factory=list)  # its facts no given passage holds

    def as_json(self) -> dict[str, object]:
        """The public JSON of an answer (`ask --json`; the server and MCP take its fields)."""
        t = self.timings
        return {
            "question": self.question,
            "answer": self.text,
            "finish_reason": self.finish_reason,
            "cache_mode": self.cache_mode.value,
            "placement": self.placement.value,
            "sources": [c.as_json() for c in self.sources],
            "evidence": [e.as_json() for e in self.evidence],
            "not_found": list(self.not_found),
            "notices": list(self.notices),
            "timings": {
                "retrieval_ms": t.retrieval_ms,
                "rerank_ms": t.rerank_ms,
                "kv_compute_ms": t.kv_compute_ms,
                "kv_restore_ms": t.kv_restore_ms,
                "time_to_first_token_ms": t.first_token_ms,
                "total_ms": t.total_ms,
                "prompt_tokens_computed": t.prompt_tokens_computed,
                "prompt_tokens_reused": t.prompt_tokens_reused,
                "generated_tokens": t.generated_tokens,
                "generated_tokens_per_s": t.tokens_per_second,
                "kv_cache_hits": t.kv_hits,
                "kv_cache_misses": t.kv_misses,
                "kv_cache_save_failures": t.kv_save_failures,
            },
        }


class AskService:
    """Answers questions over one opened index (`Session`). Not thread-safe: like the
    engine, one thread uses it at a time. It keeps the last answer's KV (`Answerer.kept`),
    so a follow-up in the same conversation prefills only itself."""

    def __init__(self, session: Session) -> None:
        engine = session.engine
        assert engine is not None, "open the session with its model"
        self.session = session
        self.answerer = Answerer(session.db, engine, session.kv_store, session.chat_engine)

    @property
    def default_cache_mode(self) -> CacheMode:
        return self.answerer.default_cache_mode

    # --- what a user asked for, as options --------------------------------------------------

    def scope(self, root: str | Path | None) -> RootScope | None:
        """The folder to answer from (`--root`), None for the whole index."""
        return resolve_root(self.session.db, root) if root is not None else None

    def options(
        self,
        *,
        k: int | None = None,
        cache: str | None = None,
        placement: str | None = None,
        rerank: bool | None = None,
        max_tokens: int | None = None,
        max_tokens_limit: int | None = None,
        root: str | Path | None = None,
        sampling: GenerationOptions | None = None,
    ) -> AskOptions:
        """Options from what an interface was given; what is None takes this service's
        default (`resolve`). `max_tokens_limit` caps the default too (the server's own
        limit); `sampling` carries temperature, seed and stop strings (its max_tokens is
        not read)."""
        if k is not None and not 1 <= k <= MAX_K:
            raise GritdeskError(f"k {k}: choose 1 to {MAX_K} chunks")
        limit = self.default_max_tokens
        if max_tokens_limit is not None:
            limit = min(limit, max_tokens_limit)
        base = AskOptions()
        given = AskOptions(
            k=k if k is not None else base.k,
            cache_mode=parse_choice(CacheMode, cache, "cache mode") if cache else None,
            placement=(
                parse_choice(Placement, placement, "placement") if placement else base.placement
            ),
            rerank=base.rerank if rerank is None else rerank,
            scope=self.scope(root),
            generation=replace(sampling or GenerationOptions(), max_tokens=max_tokens or limit),
        )
        return self.resolve(given)

    def resolve(self, options: AskOptions) -> AskOptions:
        """`options` with what was left None set to this service's defaults, the one place
        every interface's defaults come from (the chat app passes AskOptions() as it was
        given it): the recipe's cache mode; for a small model (`small_model`) focused
        sentences, a stop at the answer's first line, SMALL_MODEL_MAX_TOKENS and
        context-aware decoding (SMALL_MODEL_CONTRAST_ALPHA; `Contrast(0)` turns it off);
        else whole chunks, DEFAULT_MAX_TOKENS and plain decoding."""
        small = self.small_model
        cache_mode = options.cache_mode or self.default_cache_mode
        # focused sentences are not what the index saved KV of: only where no saved KV of
        # whole chunks is reused (pair mode, or no caching)
        reads_text = self.answerer.pair_mode or cache_mode is CacheMode.OFF
        focus = options.focus
        if focus is None and small and reads_text:
            focus = SMALL_MODEL_FOCUS
        contrast = options.contrast
        if contrast is None and small:  # a small model copies its passage instead of guessing
            contrast = Contrast(SMALL_MODEL_CONTRAST_ALPHA)
        return replace(
            options,
            cache_mode=cache_mode,
            focus=focus,
            # a small model's first line holds its answer, then it wanders
            first_line=small if options.first_line is None else options.first_line,
            contrast=contrast,
            generation=options.generation or GenerationOptions(max_tokens=self.default_max_tokens),
        )

    @property
    def default_max_tokens(self) -> int:
        """The tokens an answer may have unless an interface says otherwise."""
        return SMALL_MODEL_MAX_TOKENS if self.small_model else DEFAULT_MAX_TOKENS

    @property
    def small_model(self) -> bool:
        """Whether the answering model is small enough to read focused sentences and stop at
        its first line (ask_defaults.SMALL_MODEL_PARAMS)."""
        return self.answerer.generator.n_params < SMALL_MODEL_PARAMS

    # --- answering ---------------------------------------------------------------------------

    def prepare(
        self,
        question: str,
        options: AskOptions | None = None,
        history: Sequence[ChatTurn] = (),
    ) -> PreparedAnswer:
        """Retrieve (with the conversation's last questions) and fit the prompt (with as many
        recent turns as fit); the sources are known from here on."""
        self.session.require_answering_model()
        options = self.resolve(options or AskOptions())
        earlier = earlier_questions(history)
        prepared = fit_history(
            lambda turns: self.answerer.prepare(question, options, turns, earlier), history
        )
        recipe = self.answerer.engine.recipe
        hits = [source.hit for source in prepared.sources]
        prepared.cannot_answer = cannot_answer(
            question,
            hits,
            recipe.no_match_similarity,
            best_sentence=lambda: self.best_sentence_similarity(prepared),
            stated_similarity=recipe.stated_similarity,
            follows_answer=answered_before(history),
        )
        if prepared.cannot_answer:
            prepared.notices.append(f"not answered: {prepared.cannot_answer}")
        return prepared

    def best_sentence_similarity(self, prepared: PreparedAnswer) -> float:
        """The embedder's best cosine of a sentence of the sources to the question; 0 without
        an embedder trained to embed."""
        embedder = self.answerer.sentence_embedder
        if embedder is None:
            return 0.0
        sentences = [
            part.text for source in prepared.sources for part in passage_parts(source.citation())
        ]
        similarity = question_similarity(prepared.question, embedder)
        return max(similarity(sentences), default=0.0)

    def stream(
        self, prepared: PreparedAnswer, should_stop: Callable[[], bool] | None = None
    ) -> Iterator[str]:
        """The answer's text as it is generated; `prepared.text` holds it all afterwards.
        Nothing is generated when the files cannot answer (`cannot_answer`): the answer says
        so, and the evidence shows the closest sentences. An answer never stays empty: if
        the model says nothing, the best evidence sentence is the answer."""
        if prepared.cannot_answer:
            prepared.text, prepared.finish_reason = CANNOT_ANSWER, "stop"
            yield CANNOT_ANSWER
            return
        yield from self.answerer.stream(prepared, should_stop=should_stop)
        if not prepared.text.strip() and prepared.finish_reason != "cancelled":
            evidence = self.evidence(prepared, "", self.citations(prepared))
            if evidence:
                fallback = f"{evidence[0].short_location}: {evidence[0].text}"
            else:
                fallback = CANNOT_ANSWER
            prepared.text = fallback
            prepared.notices.append("the model gave no answer: the best evidence shows instead")
            yield fallback

    def evidence(
        self, prepared: PreparedAnswer, answer: str, sources: Sequence[Citation]
    ) -> list[Evidence]:
        """The sentences of `sources` that support `answer` (`evidence.choose_evidence`),
        ranked by the embedder's cosine to the question where it was trained to embed, as
        the focus ranks what a small model reads."""
        embedder = self.answerer.sentence_embedder
        question, earlier = prepared.question, prepared.earlier_questions
        if embedder is None:
            return choose_evidence(question, answer, sources, earlier)
        return choose_evidence(
            question,
            answer,
            sources,
            earlier,
            similarity=question_similarity(question, embedder),
            min_similarity=embedder.recipe.no_match_similarity,
        )

    def citations(self, prepared: PreparedAnswer) -> list[Citation]:
        """The sources as cited (store/citations.py), paths also shown within their folder."""
        return self.answerer.citations(prepared)

    def result(self, prepared: PreparedAnswer) -> Answer:
        """The answer as every interface renders it, once streaming is over: with the
        sentences that support it (`evidence`) and the facts nothing given to the model
        holds (`not_found`)."""
        options = prepared.options
        assert options.cache_mode is not None
        sources = self.citations(prepared)
        question, text = prepared.question, prepared.text
        earlier = prepared.earlier_questions
        given = [question, *earlier, *(f"{c.heading_path}\n{c.text}" for c in sources)]
        return Answer(
            question=question,
            text=text,
            finish_reason=prepared.finish_reason,
            cache_mode=options.cache_mode,
            placement=options.placement,
            sources=sources,
            notices=list(prepared.notices),
            timings=prepared.timings,
            evidence=self.evidence(prepared, text, sources),
            not_found=ungrounded_facts(text, given),
        )

    def ask(
        self,
        question: str,
        options: AskOptions | None = None,
        history: Sequence[ChatTurn] = (),
        *,
        on_prepared: Callable[[PreparedAnswer], None] | None = None,
        on_piece: Callable[[str], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> Answer:
        """Prepare, stream and finish in one call; `on_prepared` sees the sources before the
        first token, `on_piece` each piece as it comes."""
        prepared = self.prepare(question, options, history)
        if on_prepared is not None:
            on_prepared(prepared)
        for piece in self.stream(prepared, should_stop):
            if on_piece is not None:
                on_piece(piece)
        return self.result(prepared)

    # --- passages without an answer -------------------------------------------------------------

    def search(self, query: str, k: int, root: str | Path | None = None) -> list[Hit]:
        """The `k` best passages for `query` (`gritdesk search`, MCP's `search`)."""
        assert self.answerer.engine is not None
        return scoped_search(self.session.db, self.answerer.engine, query, k, self.scope(root))
