"""Answer a question over the index: retrieve, assemble the prompt from saved KV caches and
fresh text, stream the answer, cite the sources.

Two phases so an interface can show the sources before the first token: `prepare` (retrieve,
rerank, fit the context) then `stream` (restore caches, prefill the fresh part, generate).

Chat turns: the generator's KV after an answer (its prompt and the answer) is kept. A
follow-up that retrieves the same chunks, in the same order, prefills only itself on top
of it; otherwise the prompt is built anew and `PreparedAnswer.reprefill_reason` says why.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import apsw

from gritdesk.errors import GritdeskError
from gritdesk.ingest.chunk import embedding_text, text_digest
from gritdesk.rag.ask_defaults import DEFAULT_K, DEFAULT_MAX_TOKENS, FocusPlan
from gritdesk.rag.focus import focus_passages
from gritdesk.rag.fusion import fuse_rankings
from gritdesk.rag.layouts import (
    CachedPart,
    CacheMode,
    Layout,
    Placement,
    build_layout,
    follow_up,
    without_passages,
)
from gritdesk.rag.rerank import rerank_hits
from gritdesk.rag.retrieve import Hit, retrieval_instruction
from gritdesk.rag.root_scope import RootScope, scoped_search
from gritdesk.runtime.contrast import Contrast
from gritdesk.runtime.engine import (
    ChatTurn,
    Engine,
    GenerationOptions,
    GenerationStats,
    KvState,
)
from gritdesk.runtime.errors import EmptyInputError, InputTooLongError
from gritdesk.store.citations import Citation, path_in_root
from gritdesk.store.kv_cache import KvCacheStore, KvCacheWriteError
from gritdesk.store.sources import list_roots

# The retrieval query of a follow-up carries earlier questions, but at most this many tokens
# in all (and never more than the model embeds in one pass): the oldest go first.
RETRIEVAL_QUERY_TOKENS = 512


@dataclass
class AskOptions:
    """How to answer; the defaults (rag/ask_defaults.py) are every interface's: `AskService`
    builds these from what a user gave and leaves the rest alone."""

    k: int = DEFAULT_K
    cache_mode: CacheMode | None = None  # None: the recipe's default (off in pair mode)
    placement: Placement = Placement.CONSECUTIVE
    rerank: bool = False
    rerank_candidates: int = 10
    scope: RootScope | None = None  # answer from the files of this folder only (`--root`)
    # What is left None here AskService sets by the answering model (`AskService.resolve`),
    # so an interface that passes AskOptions() gets what every other one gets; an Answerer
    # used alone reads None as whole chunks, no first-line stop, DEFAULT_MAX_TOKENS.
    # the model reads only the best sentences of its passages (rag/focus.py)
    focus: FocusPlan | None = None
    # the answer ends with its first line (the KV kept for a follow-up ends there too)
    first_line: bool | None = None
    # context-aware decoding: each token chosen against what the model would say without
    # the passages (runtime/contrast.py); None (an Answerer used alone) or alpha 0: plain
    contrast: Contrast | None = None
    generation: GenerationOptions | None = None  # max tokens, temperature, seed, stop

    @property
    def sampling(self) -> GenerationOptions:
        """`generation`, or the defaults (DEFAULT_MAX_TOKENS, greedy) when left None."""
        return self.generation or GenerationOptions(max_tokens=DEFAULT_MAX_TOKENS)


@dataclass
class Source:
    number: int
    hit: Hit
    # "cached" (restored), "computed" (embedded now and saved), "fresh" (as text),
    # "kept" (still in the context from the previous turn)
    kv: str = "fresh"
    rerank_score: float | None = None
    # what the model reads of it when focused (rag/focus.py; "" = nothing); None: the chunk
    read: str | None = None

    def citation(self, roots: Sequence[str] = ()) -> Citation:
        """This source as cited; `roots` (the indexed folders) shorten its path for display."""
        hit = self.hit
        return Citation(
            number=self.number,
            path=hit.path,
            start_line=hit.start_line,
            end_line=hit.end_line,
            page=hit.page,
            heading_path=hit.heading_path,
            score=hit.score,
            kv=self.kv,
            text=hit.text,
            display_path=path_in_root(hit.path, roots) if roots else "",
            locator=hit.locator,
            rerank_score=self.rerank_score,
        )


@dataclass
class AnswerTimings:
    retrieval_ms: float = 0.0
    rerank_ms: float = 0.0
    kv_compute_ms: float = 0.0
    kv_restore_ms: float = 0.0
    first_token_ms: float | None = None  # from the start of the answer phase
    total_ms: float = 0.0
    prompt_tokens_computed: int = 0
    prompt_tokens_reused: int = 0
    generated_tokens: int = 0
    tokens_per_second: float = 0.0
    kv_hits: int = 0
    kv_misses: int = 0
    kv_save_failures: int = 0  # computed KV that could not be saved (disk full...)


@dataclass(frozen=True)
class KeptContext:
    """What the generator's sequence 0 holds after an answer: the whole prompt (cached
    chunks, earlier turns, the question) and the answer, KV for positions 0..end-1."""

    epoch: int  # Engine.sequence_epoch then: a change means the KV is gone
    layout: tuple[CacheMode, Placement]
    retrieved: tuple[Hit, ...]  # the chunks retrieved for it, in rank order, before fitting
    n_sources: int  # how many of them the prompt holds
    reads: tuple[str | None, ...]  # what the model read of each (`Source.read`)
    turns: tuple[ChatTurn, ...]  # the conversation it holds, its last answer included
    end: int


@dataclass
class PreparedAnswer:
    question: str
    options: AskOptions
    sources: list[Source]
    history: Sequence[ChatTurn] = ()
    notices: list[str] = field(default_factory=list)
    timings: AnswerTimings = field(default_factory=AnswerTimings)
    finish_reason: str = ""
    retrieved: tuple[Hit, ...] = ()  # before fitting the context
    kept: KeptContext | None = None  # set: this turn continues the previous one's KV
    follow_up_tokens: list[int] = field(default_factory=list)  # prefilled on top of `kept`
    reprefill_reason: str | None = None  # a follow-up that could not continue the KV: why
    text: str = ""  # the answer so far, as streamed
    earlier_questions: tuple[str, ...] = ()  # joined the retrieval query (`Answerer.joining`)
    cannot_answer: str = ""  # why the files cannot answer it (AskService); "": they may


class UnsupportedCacheModeError(GritdeskError):
    pass


def _embedded_text(hit: Hit) -> str:
    """The chunk as the index embedded it (heading path line, then the text)."""
    return embedding_text(hit.text, (hit.heading_path,) if hit.heading_path else ())


def _reading_text(source: Source) -> str:
    """What the model reads of a source: its focused sentences, else the chunk as embedded."""
    return _embedded_text(source.hit) if source.read is None else source.read


def _reading_key(source: Source) -> str:
    """The key of the KV of what the model reads: the chunk's text_hash, or the digest of
    its focused sentences (their KV is computed on first use and saved under it)."""
    if source.read is None:
        return source.hit.text_hash or text_digest(_embedded_text(source.hit))
    return text_digest(source.read)


def _chunk_key(hit: Hit) -> tuple[int, str]:
    return hit.chunk_id, hit.text_hash or text_digest(_embedded_text(hit))


def _short_location(hit: Hit) -> str:
    """`a.md:3`: the file's name and the place in it."""
    return Path(hit.path).name + hit.location[len(hit.path) :]


def sources_change(before: Sequence[Hit], after: Sequence[Hit]) -> str:
    """`sources changed: +a.md:3 -b.md:7` (or `sources reordered`)."""
    old = {_chunk_key(h) for h in before}
    new = {_chunk_key(h) for h in after}
    added = [f"+{_short_location(h)}" for h in after if _chunk_key(h) not in old]
    removed = [f"-{_short_location(h)}" for h in before if _chunk_key(h) not in new]
    if not added and not removed:
        return "sources reordered"
    return "sources changed: " + " ".join(added + removed)


class Answerer:
    """Retrieval, cache assembly and generation over one index.

    One engine embeds and generates (GritLM), so saved KV caches carry over. In pair mode
    a separate `chat_engine` generates (cache mode off by default): the index holds no KV
    of it, so with a caching mode a chunk's KV is computed by the chat model the first time
    an answer uses it and saved then (the admission rule's miss path, store/kv_cache.py);
    later answers restore it.
    """

    def __init__(
        self,
        db: apsw.Connection,
        engine: Engine,
        kv_store: KvCacheStore | None,
        chat_engine: Engine | None = None,
    ) -> None:
        self.db = db
        self.engine = engine  # embeds (retrieval); in single-model mode also generates
        self.generator = chat_engine or engine
        self.pair_mode = chat_engine is not None
        self.kv_store = kv_store
        self.kept: KeptContext | None = None  # the last answer's KV, still in the generator

    @property
    def default_cache_mode(self) -> CacheMode:
        """What `AskOptions(cache_mode=None)` means: the answering recipe's default; off in
        pair mode, where the chat model reads the passages as text. Measured on the demo
        question with SmolLM2 beside MiniLM: off answered "140 euros", its doc layout over
        the same three passages did not (the single-model index retrieves other passages,
        and its doc layout answers). `--cache doc` works in pair mode: each chunk's KV is
        computed on first use and restored after."""
        if self.pair_mode:
            return CacheMode.OFF
        return CacheMode(self.generator.recipe.default_cache_mode)

    # --- phase 1 --------------------------------------------------------------------------

    def prepare(
        self,
        question: str,
        options: AskOptions | None = None,
        history: Sequence[ChatTurn] = (),
        earlier_questions: Sequence[str] = (),
    ) -> PreparedAnswer:
        """Retrieve (and rerank) the chunks, then drop the lowest ranked until all fits.

        `earlier_questions` (oldest first) join the question in the retrieval query as far
        as `retrieval_query` lets them (`search`)."""
        options = options or AskOptions()
        if options.cache_mode is None:
            options = replace(options, cache_mode=self.default_cache_mode)
        if not question.strip():
            raise EmptyInputError("the question is empty")
        recipe = self.generator.recipe
        if options.cache_mode.value not in recipe.cache_modes:
            raise UnsupportedCacheModeError(
                f"cache mode {options.cache_mode.value!r}: the {recipe.name!r} recipe cannot "
                f"reuse its embedding pass's KV that way; choose {', '.join(recipe.cache_modes)}"
            )
        prepared = PreparedAnswer(question, options, [], history)
        t0 = time.perf_counter()
        prepared.earlier_questions = tuple(self.joining(question, earlier_questions))
        wanted = max(options.k, options.rerank_candidates if options.rerank else 0)
        hits = self.search(question, prepared.earlier_questions, wanted, options.scope)
        prepared.timings.retrieval_ms = (time.perf_counter() - t0) * 1000
        scores: list[float | None] = [None] * len(hits)
        if options.rerank and hits:
            t0 = time.perf_counter()
            ranked = rerank_hits(self.generator, question, hits)
            hits, scores = [h for h, _ in ranked], [s for _, s in ranked]
            prepared.timings.rerank_ms = (time.perf_counter() - t0) * 1000
        prepared.sources = [
            Source(i + 1, hit, rerank_score=score)
            for i, (hit, score) in enumerate(
                zip(hits[: options.k], scores[: options.k], strict=True)
            )
        ]
        prepared.retrieved = tuple(source.hit for source in prepared.sources)
        if options.focus is not None:
            self.focus(prepared, options.focus)
        self._check_cached_layout(prepared)
        if history:
            reason = self._continue_kept(prepared)
            prepared.reprefill_reason = reason
            if reason is not None and self.kept is not None:  # a kept context had to go
                prepared.notices.append(f"read the conversation again: {reason}")
        if prepared.kept is None:
            self.fit_context(prepared)
        return prepared

    def _check_cached_layout(self, prepared: PreparedAnswer) -> None:
        """A cached layout this model's architecture cannot reuse KV for exactly (a segment
        longer than a sliding window, keys that cannot be moved: runtime/doc_caching.py) is
        answered by plain RAG instead, with a notice."""
        options, engine = prepared.options, self.generator
        support = engine.doc_cache
        if options.cache_mode is CacheMode.OFF or support is None or not prepared.sources:
            return
        docs = [_reading_text(s) for s in _read_sources(prepared)]  # as `_assemble` lays out
        layout = build_layout(options.cache_mode, engine.recipe, prepared.question, docs)
        lengths = [len(self._segment_tokens(part, prepared)) for part in layout.cached]
        moved = bool(self._opening_tokens(layout)) or (
            options.placement is Placement.CONSECUTIVE and len(lengths) > 1
        )
        why = support.refusal(lengths, moved=moved)
        if why is not None:
            prepared.options = replace(options, cache_mode=CacheMode.OFF)
            prepared.notices.append(
                f"answered by plain RAG instead of {options.cache_mode.value} caching: {why}"
            )

    def _continue_kept(self, prepared: PreparedAnswer) -> str | None:
        """Continue the previous turn's KV if it holds this conversation and the same chunks;
        else say why not."""
        kept, options = self.kept, prepared.options
        history = tuple(prepared.history)
        if kept is None:
            return "nothing kept from the previous answer"
        if kept.turns[-len(history) :] != history:
            return "the conversation is not the one kept"
        if kept.epoch != self.generator.sequence_epoch:
            return "the model's context was used for other work since the previous answer"
        if kept.layout != (options.cache_mode, options.placement):
            return "the cache mode changed"
        pieces = follow_up(options.cache_mode, self.generator.recipe, prepared.question)
        if pieces is None:
            return f"cache mode {options.cache_mode.value} caches the question itself"
        if [_chunk_key(h) for h in kept.retrieved] != [_chunk_key(h) for h in prepared.retrieved]:
            return sources_change(kept.retrieved, prepared.retrieved)
        if kept.reads != tuple(s.read for s in prepared.sources[: kept.n_sources]):
            return "other sentences of the sources match this question"
        tokens = self.generator.prompt_tokens(pieces)
        n_ctx = self.generator.n_ctx
        if kept.end + len(tokens) > n_ctx - min(options.sampling.max_tokens, n_ctx // 4):
            return f"the conversation no longer fits the {n_ctx}-token context"
        prepared.kept, prepared.follow_up_tokens = kept, tokens
        prepared.sources = prepared.sources[: kept.n_sources]
        for source in prepared.sources:
            source.kv = "kept"
        return None

    @property
    def sentence_embedder(self) -> Engine | None:
        """The embedder whose cosines rank sentences (focus, evidence): the index's, when it
        was trained to embed (MiniLM's cosines mean something, a chat model's do not)."""
        return self.engine if self.engine.recipe.trained_to_embed else None

    def focus(self, prepared: PreparedAnswer, plan: FocusPlan) -> None:
        """Let the model read only the best sentences of the sources (rag/focus.py), scored
        with the embedder's cosines when it was trained to embed."""
        focused = focus_passages(
            prepared.question,
            prepared.earlier_questions,
            [source.citation() for source in prepared.sources],
            plan,
            self.sentence_embedder,
        )
        for source, chosen in zip(prepared.sources, focused, strict=True):
            source.read = chosen.text

    def citations(self, prepared: PreparedAnswer) -> list[Citation]:
        """The answer's sources as cited, paths shown relative to their indexed folder."""
        roots = [root.path for root in list_roots(self.db)]
        return [source.citation(roots) for source in prepared.sources]

    def search(
        self, question: str, earlier: Sequence[str], k: int, scope: RootScope | None = None
    ) -> list[Hit]:
        """The `k` best chunks for `question`. A follow-up (`earlier` questions, as `joining`
        keeps them) fuses two rankings by reciprocal rank (`retrieve.fuse_rankings`): the
        conversation's (its earlier questions and it, one query) and its own. "And in North
        America?" finds the hotel passage through the question before it; "And when does the
        cafeteria close on Fridays?" after a hotel question finds the onboarding notes
        through its own words, where the joined query still ranked the travel policy first
        (benchmarks/answer_eval.py --decisions-only). A chunk found by both keeps the
        conversation's keyword rank and cosine; its score is the fused one."""
        query = "\n".join([*earlier, question])  # `retrieval_query`
        # the passages to read come by their own score (a listing of files is `search`'s)
        joined = scoped_search(self.db, self.engine, query, k, scope, by_file=False)
        if not earlier:
            return joined
        alone = scoped_search(self.db, self.engine, question, k, scope, by_file=False)
        hits = {hit.chunk_id: hit for hit in alone} | {hit.chunk_id: hit for hit in joined}
        fused = fuse_rankings([[h.chunk_id for h in joined], [h.chunk_id for h in alone]])
        return [replace(hits[chunk_id], score=score) for chunk_id, score in fused[:k]]

    def retrieval_query(self, question: str, earlier: Sequence[str]) -> str:
        """The question after as many of the latest earlier questions as fit in
        RETRIEVAL_QUERY_TOKENS and in one embedding pass, one per line (`joining`)."""
        return "\n".join([*self.joining(question, earlier), question])

    def joining(self, question: str, earlier: Sequence[str]) -> list[str]:
        """The latest of `earlier` that join `question` in the retrieval query: as many as fit
        in RETRIEVAL_QUERY_TOKENS and in one embedding pass. An earlier question that was too
        long (it failed) is dropped instead of failing every question after it (the focus's
        and the evidence's cosines embed the last one with the question too)."""
        engine = self.engine
        prefix = engine.recipe.embedding.query(retrieval_instruction(engine))
        room = engine.max_document_tokens - engine.count_tokens(prefix)
        limit = min(RETRIEVAL_QUERY_TOKENS, room)
        kept = list(earlier)
        while kept and engine.count_tokens("\n".join([*kept, question])) > limit:
            kept.pop(0)
        return kept

    def _prompt_tokens(self, prepared: PreparedAnswer) -> int:
        docs = [_reading_text(s) for s in _read_sources(prepared)]
        layout = build_layout(
            prepared.options.cache_mode, self.generator.recipe, prepared.question, docs
        )
        cached = [len(self._segment_tokens(part, prepared)) for part in layout.cached]
        fresh = len(self._fresh_tokens(layout, prepared.history))
        opening = len(self._opening_tokens(layout))
        if prepared.options.placement is Placement.ORIGINAL:
            return opening + max(cached, default=0) + fresh
        return opening + sum(cached) + fresh

    def fit_context(self, prepared: PreparedAnswer) -> None:
        """Drop the lowest-ranked sources until the prompt and the answer fit the context."""
        n_ctx = self.generator.n_ctx
        room = n_ctx - min(prepared.options.sampling.max_tokens, n_ctx // 4)
        dropped = []
        while prepared.sources and self._prompt_tokens(prepared) > room:
            dropped.append(prepared.sources.pop())
        if dropped:
            prepared.notices.append(
                f"left out {len(dropped)} lower-ranked chunk(s) to fit the "
                f"{n_ctx}-token context: " + ", ".join(s.hit.location for s in reversed(dropped))
            )
        needed = self._prompt_tokens(prepared)
        if needed > room:
            raise InputTooLongError("the question (with the conversation so far)", needed, room)

    # --- prompt pieces ----------------------------------------------------------------------

    def _segment_text(self, part: CachedPart, prepared: PreparedAnswer) -> str:
        """What the segment's KV was computed from: for a chunk, the text the index embedded."""
        if part.kind == "query":
            return prepared.question
        return _reading_text(_read_sources(prepared)[part.index])

    def _segment_tokens(self, part: CachedPart, prepared: PreparedAnswer) -> list[int]:
        return self.generator.document_tokens(self._segment_text(part, prepared))

    def _opening_tokens(self, layout: Layout) -> list[int]:
        """Computed before restored segments: a chat template's system turn, if any."""
        chat = self.generator.recipe.chat
        return self.generator.prompt_tokens(chat.cached_opening()) if layout.cached else []

    def _fresh_tokens(self, layout: Layout, history: Sequence[ChatTurn]) -> list[int]:
        """The uncached tail: earlier turns of the conversation, then this turn, rendered by
        the recipe's one chat renderer (the same one `Engine.chat_tokens` uses)."""
        engine = self.generator
        pieces = engine.recipe.chat.render(history, layout.current, opening=layout.opening)
        return engine.prompt_tokens(pieces)

    def _contrast_tokens(self, question: str, history: Sequence[ChatTurn]) -> list[int]:
        """The prompt the answer is contrasted with: the same conversation and question,
        no passages (`layouts.without_passages`), opened as a chat of its own."""
        engine = self.generator
        current = without_passages(engine.recipe, question)
        return engine.prompt_tokens(engine.recipe.chat.render(history, current, opening=True))

    def _kv_state(
        self, text_hash: str | None, tokens: list[int], text: str, prepared: PreparedAnswer
    ) -> tuple[KvState, str]:
        """The saved KV of a segment, or compute it now and admit it (evicting blobs no answer
        used first: store/kv_cache.py), best effort."""
        signature = self.generator.kv_signature
        if self.kv_store is not None and text_hash is not None:
            payload = self.kv_store.get(text_hash, signature, tokens)
            if payload is not None:
                return KvState(tuple(tokens), payload), "cached"
        _, states = self.generator.embed_documents_with_kv([text])
        state = states[0]
        if state.tokens != tuple(tokens):
            raise RuntimeError("document tokenization differs between embedding and caching")
        if self.kv_store is not None and text_hash is not None:
            try:
                self.kv_store.put(text_hash, signature, tokens, state.data, by="answer")
            except KvCacheWriteError as exc:  # the answer goes on; the next one recomputes
                prepared.timings.kv_save_failures += 1
                if prepared.timings.kv_save_failures == 1:
                    prepared.notices.append(str(exc))
        return state, "computed"

    # --- phase 2 --------------------------------------------------------------------------

    def stream(
        self, prepared: PreparedAnswer, should_stop: Callable[[], bool] | None = None
    ) -> Iterator[str]:
        """Restore cached segments into place, prefill the fresh tail, stream the answer.
        A follow-up that continues the kept KV prefills only itself."""
        engine, options, timings = self.generator, prepared.options, prepared.timings
        t_start = time.perf_counter()
        kept, self.kept = prepared.kept, None  # kept again only if this answer completes
        if kept is not None and kept.epoch != engine.sequence_epoch:
            kept = None  # the KV went between prepare and stream: lay the prompt out anew
            for source in prepared.sources:
                source.kv = "fresh"
            self.fit_context(prepared)
        if kept is not None:
            engine.keep_until(kept.end)  # nothing past the kept answer (a no-op normally)
            fresh, position, reused, computed = prepared.follow_up_tokens, kept.end, kept.end, 0
            turns = kept.turns
        else:
            fresh, position, reused, computed = self._assemble(prepared)
            turns = tuple(prepared.history)
        stats = GenerationStats(started_at=t_start)
        answer: list[str] = []
        contrast = options.contrast if _read_sources(prepared) else None  # no passages: none
        pieces = engine.stream(
            fresh,
            position=position,
            reused_tokens=reused,
            options=options.sampling,
            stats=stats,
            should_stop=should_stop,
            contrast=contrast,
            contrast_prompt=self._contrast_tokens(prepared.question, turns) if contrast else (),
        )
        for piece in pieces:
            line_end = piece.find("\n") if options.first_line else -1
            said = ("".join(answer) + piece[: max(line_end, 0)]).strip()
            if not said or said.endswith(":"):  # "The answer is:" leads to the answer
                line_end = -1
            if line_end >= 0:  # the piece's token is not decoded: the KV ends before it
                piece = piece[:line_end]
                pieces.close()
                stats.finish_reason = "stop"
            if piece:
                answer.append(piece)
                prepared.text += piece
                yield piece
            if line_end >= 0:
                break
        timings.prompt_tokens_computed = stats.prompt_tokens_computed + computed
        timings.prompt_tokens_reused = reused
        timings.generated_tokens = stats.generated_tokens
        timings.tokens_per_second = stats.tokens_per_second
        if stats.seconds_to_first_token is not None:
            timings.first_token_ms = stats.seconds_to_first_token * 1000
        timings.total_ms = (time.perf_counter() - t_start) * 1000
        prepared.finish_reason = stats.finish_reason
        if stats.contrast_skipped:
            prepared.notices.append(f"decoded without the contrast: {stats.contrast_skipped}")
        if not options.sampling.stop:  # a stop string's tokens are in the KV, not the text
            self.kept = KeptContext(
                epoch=engine.sequence_epoch,
                layout=(options.cache_mode, options.placement),
                retrieved=prepared.retrieved,
                n_sources=len(prepared.sources),
                reads=tuple(s.read for s in prepared.sources),
                turns=(*turns, ChatTurn(prepared.question, "".join(answer))),
                end=stats.end_position,
            )

    def _assemble(self, prepared: PreparedAnswer) -> tuple[list[int], int, int, int]:
        """Put the cached segments into a cleared sequence 0; returns the fresh tokens, where
        they start, and how many tokens were restored and computed before them."""
        engine, options, timings = self.generator, prepared.options, prepared.timings
        read = _read_sources(prepared)
        docs = [_reading_text(s) for s in read]
        layout = build_layout(options.cache_mode, engine.recipe, prepared.question, docs)
        states: list[tuple[KvState, str]] = []
        for part in layout.cached:
            tokens = self._segment_tokens(part, prepared)
            text = self._segment_text(part, prepared)
            t0 = time.perf_counter()
            if part.kind == "doc":
                source = read[part.index]
                key = _reading_key(source)  # chunks.text_hash, unless focused
                state, how = self._kv_state(key, tokens, text, prepared)
                source.kv = how
            else:
                state, how = self._kv_state(None, tokens, text, prepared)  # queries are not kept
            if how == "cached":
                timings.kv_hits += 1
            else:
                timings.kv_misses += 1
                timings.kv_compute_ms += (time.perf_counter() - t0) * 1000
            states.append((state, how))

        t0 = time.perf_counter()
        engine.reset()
        opening = self._opening_tokens(layout)
        if opening:
            engine.prefill(opening, 0)
        position = computed = len(opening)
        reused = 0
        for state, how in states:
            at = len(opening) if options.placement is Placement.ORIGINAL else position
            n = engine.restore_at(state, at)
            position = max(position, at + n)
            if how == "cached":
                reused += n
            else:
                computed += n
        timings.kv_restore_ms = (time.perf_counter() - t0) * 1000
        return self._fresh_tokens(layout, prepared.history), position, reused, computed


def _read_sources(prepared: PreparedAnswer) -> list[Source]:
    """The sources the model reads, in rank order: all but those a focus left empty."""
    return [s for s in prepared.sources if s.read is None or s.read]
