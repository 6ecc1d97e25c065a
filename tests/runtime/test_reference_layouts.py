"""Embeddings and every cache layout the app answers with, checked against the numpy
reference, for each decoder architecture gritdesk runs (a tiny synthetic model of each, with
its family's tokenizer kind: models/synthetic.toml).

The app runs for real: a CLI-built index (its embedding pass saved each chunk's KV), the
Answerer restoring blobs and moving them into place, llama.cpp prefilling the suffix.
The expected logits and greedy tokens come from `tests/reference/`, which computes each
layout from the architecture (documents under a bidirectional mask among their own tokens,
keys re-rotated when moved, the suffix causal over everything), and the prompt texts come
from GRITLM_NOTES section 2, not from our recipes. Context-aware decoding over a Doc
Caching layout is checked the same way: each token's logits are (1 + a) times the layout's
reference minus a times the reference of the question alone. The last tests show the
comparison fails for a cache from a causal pass and for a cache of another document, for
each architecture, and for a contrast that leaves out its minus term.
`tests/reference/test_architecture_differences.py` shows each architecture's
difference is needed: the reference without it disagrees with llama.cpp.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from gritdesk.rag.answer import Answerer, AskOptions
from gritdesk.rag.layouts import CacheMode, Placement
from gritdesk.rag.rerank import relevance_score
from gritdesk.runtime.contrast import Contrast
from gritdesk.runtime.engine import Engine, EngineSettings, GenerationOptions
from gritdesk.runtime.recipes import GRITLM
from gritdesk.session import Session, open_session
from gritdesk.settings import Settings
from ingest.cli_runs import index_texts
from reference.cache_layouts import (
    Segment,
    cached_segment,
    greedy_continuation,
    moved,
    suffix_logits,
)
from reference.llama_numpy import LlamaWeights, forward, mean_pooled

if TYPE_CHECKING:
    from conftest import SpyOn

CORPUS = {
    "aurora.txt": "The Aurora project ships its first release on the ninth of March, after a "
    "security review by the platform team.",
    "invoices.txt": "Invoices above five thousand euros need two signatures: the team lead "
    "and someone from finance.",
    "cafeteria.txt": "The cafeteria on the second floor closes at three on Fridays during "
    "the summer months.",
}
QUESTION = "When does the Aurora project ship its first release?"

# GRITLM_NOTES section 2, written out here so a drift in the recipes shows up too
ANSWER = "Answer the prior query while optionally using the context prior to it"
QUERY_FIRST = "Optionally using the prior context answer the query prior to it"
SUFFIX = {
    CacheMode.DOC: "\n<|user|>\n{query}\n\n" + ANSWER + "\n<|assistant|>\n",
    CacheMode.QUERY: "\n<|user|>\n{docs}\n\n" + QUERY_FIRST + "\n<|assistant|>\n",
    CacheMode.QUERY_DOC: "\n<|user|>\n" + QUERY_FIRST + "\n<|assistant|>\n",
    CacheMode.DOC_QUERY: "\n<|user|>\n" + ANSWER + "\n<|assistant|>\n",
}
RAG_PROMPT = "<|user|>\n{docs}\n\n{query}\n\n" + ANSWER + "\n<|assistant|>\n"
# context-aware decoding's contrast: the same question and instruction with no passages
ALONE_PROMPT = "<|user|>\n{query}\n\n" + ANSWER + "\n<|assistant|>\n"
EMBED_PREFIX = "<|embed|>\n"

GENERATED = 4
# max |logit difference| allowed, as a share of the largest reference logit. The broken
# patch-0002 cache was off by 0.4-1.0 of the scale; measured here: f16 <= 0.001, q8_0 <= 0.013,
# a causal-pass cache 0.45, the cache of a one-word-different document 0.16.
TOLERANCE = {"f16": 0.005, "q8_0": 0.03}


# (KV cache type, on-disk format of saved blobs): "q8_rows" stores f16 rows as 8-bit
# blocks (runtime/kv_state_codec.py); its blobs are other keys than the index's raw ones, so
# the first answer computes and saves them and the second restores them from disk
CACHES = [("f16", "raw"), ("q8_0", "raw"), ("f16", "q8_rows")]
# (synthetic model, KV type, disk format): llama with every cache; each other architecture
# with f16 (what differs between the caches is llama.cpp's, not the architecture's)
ARCHITECTURE_MODELS = ["tiny-qwen2", "tiny-qwen3", "tiny-gemma3", "tiny-phi3"]
LLAMA_CASES = [("tiny", *cache) for cache in CACHES]
CASES = LLAMA_CASES + [(m, "f16", "raw") for m in ARCHITECTURE_MODELS]


class Models:
    """Each synthetic model's path, reference weights and CLI-built index, made once."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self.tmp = tmp_path_factory
        self.paths: dict[str, Path] = {}
        self.weights: dict[str, LlamaWeights] = {}
        self.dbs: dict[str, Path] = {}

    def path(self, name: str) -> Path:
        if name not in self.paths:
            from gritdesk.models.synthetic import synthetic_model_path

            self.paths[name] = synthetic_model_path(name)
        return self.paths[name]

    def reference(self, name: str) -> LlamaWeights:
        if name not in self.weights:
            self.weights[name] = LlamaWeights.load(self.path(name))
        return self.weights[name]

    def indexed_db(self, name: str) -> Path:
        if name not in self.dbs:
            self.dbs[name] = index_texts(self.path(name), self.tmp.mktemp("layouts"), CORPUS)
        return self.dbs[name]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Models:
    return Models(tmp_path_factory)


@pytest.fixture(scope="module", params=CASES, ids=lambda c: "-".join(c))
def case(request: pytest.FixtureRequest) -> tuple[str, str, str]:
    return request.param


@pytest.fixture(scope="module")
def weights(models: Models, case: tuple[str, str, str]) -> LlamaWeights:
    return models.reference(case[0])


def tolerance(kv_type: str, disk_format: str) -> float:
    """8-bit rows on disk make the reused part an 8-bit cache: held to the 8-bit tolerance
    (measured here 0.0035-0.0053 of the scale, at the edge of f16's 0.005; 0.023 with the
    16-layer 1B shape in benchmarks/kv_blob_formats.py: so not the default)."""
    return TOLERANCE["q8_0" if disk_format == "q8_rows" else kv_type]


@pytest.fixture(scope="module")
def session(models: Models, case: tuple[str, str, str]):
    name, kv_type, disk_format = case
    s = open_session(
        Settings(
            db=models.indexed_db(name), model=models.path(name), kv_type=kv_type, context=1024,
            kv_disk_format=disk_format,
        )
    )  # fmt: skip
    yield s
    s.close()


@dataclass
class AppAnswer:
    docs: list[str]
    kv: list[str]
    suffix: list[int]
    position: int
    first_logits: np.ndarray
    tokens: list[int]
    tolerance: float  # share of the logit scale this cache may drift
    notices: list[str]
    contrast_prompt: list[int]  # context-aware decoding: the prompt without passages
    combined: list[np.ndarray]  # ... and the logits each token was sampled from


def app_answer(
    s: Session,
    mode: CacheMode,
    placement: Placement,
    k: int,
    answer_spy: SpyOn,
    contrast: Contrast | None = None,
) -> AppAnswer:
    """Answer QUESTION through the app, capturing the suffix it prefilled, the logits right
    after it and the greedy tokens it sampled (with `contrast`, also the prompt without
    passages and the combined logits)."""
    engine = s.engine
    assert engine is not None
    answerer = Answerer(s.db, engine, s.kv_store)
    options = AskOptions(
        k=k, cache_mode=mode, placement=placement, contrast=contrast,
        generation=GenerationOptions(max_tokens=GENERATED),
    )  # fmt: skip
    prepared = answerer.prepare(QUESTION, options)
    with answer_spy(engine) as spy:
        "".join(answerer.stream(prepared))
    for source in prepared.sources:
        assert not source.hit.heading_path  # plain .txt chunks: the embedded text is the text
    return AppAnswer(
        docs=[source.hit.text for source in prepared.sources],
        kv=[source.kv for source in prepared.sources],
        suffix=spy.prefilled,
        position=spy.position,
        first_logits=spy.logits,  # type: ignore[arg-type]
        tokens=spy.sampled,
        tolerance=tolerance(engine.settings.kv_type, disk_format(s)),
        notices=list(prepared.notices),
        contrast_prompt=spy.contrast_prompt,
        combined=[np.asarray(c) for c in spy.combined],
    )


def disk_format(s: Session) -> str:
    codec = s.kv_store.codec if s.kv_store is not None else None
    return "raw" if codec is None else codec.name


def reference_layout(
    w: LlamaWeights, engine: Engine, mode: CacheMode, placement: Placement, docs: list[str]
) -> tuple[list[Segment], list[int], int]:
    """Cached segments (in place), suffix tokens and the suffix's first position."""

    def segment(text: str) -> Segment:
        return cached_segment(w, engine.tokenize(EMBED_PREFIX + text, add_bos=True))

    joined = "\n\n".join(docs)
    if mode is CacheMode.OFF:
        prompt = RAG_PROMPT.format(docs=joined, query=QUESTION)
        return [], engine.tokenize(prompt, add_bos=True), 0
    order = {
        CacheMode.DOC: docs,
        CacheMode.QUERY: [QUESTION],
        CacheMode.QUERY_DOC: [QUESTION, *docs],
        CacheMode.DOC_QUERY: [*docs, QUESTION],
    }[mode]
    segments: list[Segment] = []
    end = 0
    for text in order:
        seg = segment(text)
        if placement is Placement.CONSECUTIVE:
            seg = moved(w, seg, end) if end else seg
        segments.append(seg)
        end = max(end, seg.end)
    suffix = SUFFIX[mode].format(query=QUESTION, docs=joined)
    return segments, engine.tokenize(suffix), end


def assert_matches_reference(
    got: AppAnswer, w: LlamaWeights, engine: Engine, mode: CacheMode, placement: Placement
) -> None:
    segments, suffix, start = reference_layout(w, engine, mode, placement, got.docs)
    assert got.suffix == suffix, "the fresh suffix is not the paper's text"
    assert got.position == start
    logits, _ = greedy_continuation(w, segments, suffix, start, 1)
    scale = float(np.abs(logits).max())
    allowed = got.tolerance * scale
    diff = float(np.abs(got.first_logits - logits).max())
    assert diff <= allowed, f"logits off by {diff:.4f} (scale {scale:.2f})"
    # greedy tokens: the app's must be the reference's argmax at every step, unless the
    # reference's top two are closer than the tolerance there (then the tie may go either
    # way and the continuations part)
    assert len(got.tokens) == GENERATED
    for step in range(GENERATED):
        step_logits = suffix_logits(w, segments, suffix + got.tokens[:step], start)[-1]
        best = int(np.argmax(step_logits))
        if got.tokens[step] != best:
            gap = float(step_logits[best] - step_logits[got.tokens[step]])
            assert gap <= allowed, f"token {step}: {got.tokens[step]} where {best} leads by {gap}"
            break


def test_embeddings_match_reference(session: Session, weights: LlamaWeights) -> None:
    """Document and query embeddings (bidirectional, mean over the text's tokens). The pass
    reads its keys back from the KV cache: an 8-bit cache drifts (cosine 0.99989 measured)."""
    engine = session.engine
    assert engine is not None
    least = 0.9999 if engine.settings.kv_type == "f16" else 0.999
    fmt = engine.recipe.embedding
    instruction = "Given a question, retrieve passages that answer it"
    texts = [(fmt.document(), CORPUS["invoices.txt"]), (fmt.query(instruction), QUESTION)]
    for prefix, text in texts:
        tokens = engine.tokenize(prefix + text, add_bos=True)
        hidden, _ = forward(weights, tokens, causal=False)
        expected = mean_pooled(hidden, len(engine.tokenize(prefix, add_bos=True)))
        got = engine.embed([text], instruction if prefix != fmt.document() else None)[0]
        assert float(got @ expected) >= least


LAYOUTS = [(CacheMode.OFF, Placement.CONSECUTIVE)] + [
    (mode, placement)
    for mode in (CacheMode.DOC, CacheMode.QUERY, CacheMode.QUERY_DOC, CacheMode.DOC_QUERY)
    for placement in (Placement.CONSECUTIVE, Placement.ORIGINAL)
]


@pytest.mark.parametrize(("mode", "placement"), LAYOUTS, ids=lambda v: v.value)
def test_layout_matches_reference(
    session: Session,
    weights: LlamaWeights,
    mode: CacheMode,
    placement: Placement,
    answer_spy: SpyOn,
) -> None:
    engine = session.engine
    assert engine is not None
    got = app_answer(session, mode, placement, 3, answer_spy)
    assert len(got.docs) == 3
    assert_matches_reference(got, weights, engine, mode, placement)
    if mode in (CacheMode.DOC, CacheMode.DOC_QUERY, CacheMode.QUERY_DOC):
        # the chunks' KV came from a saved blob: the index pass's for raw f16, and for the
        # others the one saved on the first miss; run again to answer from those blobs
        if got.kv == ["cached"] * 3:
            return  # already answered from the index pass's blobs
        again = app_answer(session, mode, placement, 3, answer_spy)
        assert again.kv == ["cached"] * 3
        assert_matches_reference(again, weights, engine, mode, placement)


def test_one_passage_paper_layout(
    session: Session, weights: LlamaWeights, answer_spy: SpyOn
) -> None:
    """The paper's Doc Caching: one passage, kept at the positions it was computed at."""
    engine = session.engine
    assert engine is not None
    got = app_answer(session, CacheMode.DOC, Placement.ORIGINAL, 1, answer_spy)
    assert len(got.docs) == 1
    assert_matches_reference(got, weights, engine, CacheMode.DOC, Placement.ORIGINAL)


def reference_contrast(
    contrast: Contrast, with_docs: np.ndarray, alone: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The paper's combination of the two reference logit rows, and log(p / (beta * p_max))
    of each token's with-passages probability p (>= 0: the plausibility constraint leaves
    it; beta 0: every token)."""
    a, beta = contrast.alpha, contrast.plausibility
    combined = (1 + a) * with_docs - a * alone
    log_p = with_docs - with_docs.max()  # log(p / p_max): the softmax's sum cancels
    return combined, log_p - (np.log(beta) if beta > 0 else -np.inf)


def assert_contrast_matches_reference(
    got: AppAnswer, w: LlamaWeights, engine: Engine, contrast: Contrast
) -> None:
    """Each step's combined logits (the first right after the two prompts, the others after
    the app's own tokens so far) against the reference's, and the greedy token is their
    argmax unless the reference's top two are within the tolerance."""
    segments, suffix, start = reference_layout(
        w, engine, CacheMode.DOC, Placement.CONSECUTIVE, got.docs
    )
    alone = engine.tokenize(ALONE_PROMPT.format(query=QUESTION), add_bos=True)
    assert got.suffix == suffix
    assert got.contrast_prompt == alone, "the prompt without passages is not the paper's"
    assert len(got.combined) == len(got.tokens) == GENERATED
    a = contrast.alpha
    for step, (token, combined) in enumerate(zip(got.tokens, got.combined, strict=True)):
        with_docs = suffix_logits(w, segments, suffix + got.tokens[:step], start)[-1]
        without = forward(w, alone + got.tokens[:step], causal=True)[1][-1]
        expected, margin = reference_contrast(contrast, with_docs, without)
        scale = (1 + a) * float(np.abs(with_docs).max()) + a * float(np.abs(without).max())
        allowed = got.tolerance * scale
        # the constraint's border: a token within the tolerance of it may fall either side
        border = np.abs(margin) <= got.tolerance * float(np.abs(with_docs).max())
        plausible = margin >= 0
        wrong = np.isfinite(combined) != plausible
        assert not (wrong & ~border).any(), f"step {step}: other tokens ruled out"
        plausible &= np.isfinite(combined)
        diff = float(np.abs(combined[plausible] - expected[plausible]).max())
        assert diff <= allowed, f"step {step}: logits off by {diff:.4f} (scale {scale:.2f})"
        best = int(np.argmax(np.where(plausible, expected, -np.inf)))
        if token != best:
            gap = float(expected[best] - expected[token])
            assert gap <= allowed, f"token {step}: {token} where {best} leads by {gap}"
            break


CONTRASTS = [Contrast(0.5), Contrast(1.0, plausibility=0.1)]


@pytest.mark.parametrize("contrast", CONTRASTS, ids=["a0.5", "a1-plausible0.1"])
def test_contrast_on_doc_caching_matches_reference(
    session: Session, weights: LlamaWeights, answer_spy: SpyOn, contrast: Contrast
) -> None:
    """Context-aware decoding with the passages' KV restored from the index's blobs: the
    answer's sequence holds the Doc Caching layout, the scratch sequence the question
    alone, and every token is chosen from (1 + a) * one - a * the other."""
    engine = session.engine
    assert engine is not None
    got = app_answer(session, CacheMode.DOC, Placement.CONSECUTIVE, 3, answer_spy, contrast)
    if got.kv != ["cached"] * 3:  # blobs other than the index's are saved by a first answer
        got = app_answer(session, CacheMode.DOC, Placement.CONSECUTIVE, 3, answer_spy, contrast)
    assert got.kv == ["cached"] * 3
    assert_contrast_matches_reference(got, weights, engine, contrast)


def test_rerank_score_matches_reference(session: Session, weights: LlamaWeights) -> None:
    engine = session.engine
    assert engine is not None
    passage = CORPUS["invoices.txt"]
    prompt = (
        "<|user|>\nGiven a query and a passage, judge whether the passage is relevant to the "
        f"query or not.\n\nQuery: {QUESTION}\nPassage: {passage}\n\nAnswer with yes if the "
        "passage is relevant to the query, and no otherwise.\n<|assistant|>\nAnswer:"
    )
    _, logits = forward(weights, engine.tokenize(prompt, add_bos=True), causal=True)
    yes = engine.tokenize("yes")[-1]
    expected = float(logits[-1][yes])
    got = relevance_score(engine, QUESTION, passage)
    scale = float(np.abs(logits[-1]).max())
    assert abs(got - expected) <= TOLERANCE[engine.settings.kv_type] * scale


# --- the comparison can fail -----------------------------------------------------------------


# The comparison's power is shown on llama's caches; for the other architectures
# `test_reference_without_the_difference_disagrees` shows it for each difference.
on_llama_caches = pytest.mark.parametrize(
    "case", LLAMA_CASES, ids=lambda c: "-".join(c), scope="module"
)


@on_llama_caches
def test_cache_from_a_causal_pass_is_caught(
    session: Session,
    weights: LlamaWeights,
    case: tuple[str, str, str],
    monkeypatch: pytest.MonkeyPatch,
    answer_spy: SpyOn,
) -> None:
    """Chunks embedded with causal attention leave a causal cache: not GritLM's layout."""
    engine = session.engine
    assert engine is not None and session.kv_store is not None
    causal = dataclasses.replace(
        GRITLM, embedding=dataclasses.replace(GRITLM.embedding, attention="causal")
    )
    monkeypatch.setattr(session.kv_store, "get", lambda *a, **k: None)
    monkeypatch.setattr(session.kv_store, "put", lambda *a, **k: None)
    monkeypatch.setattr(engine, "recipe", causal)
    got = app_answer(session, CacheMode.DOC, Placement.CONSECUTIVE, 3, answer_spy)
    assert got.kv == ["computed"] * 3
    with pytest.raises(AssertionError, match="logits off by"):
        assert_matches_reference(got, weights, engine, CacheMode.DOC, Placement.CONSECUTIVE)


@on_llama_caches
def test_cache_of_another_document_is_caught(
    session: Session,
    weights: LlamaWeights,
    case: tuple[str, str, str],
    monkeypatch: pytest.MonkeyPatch,
    answer_spy: SpyOn,
) -> None:
    """A blob of a text with one word changed (same token count) restores without error."""
    engine = session.engine
    assert engine is not None and session.kv_store is not None
    real_get = session.kv_store.get

    def other_document(text_hash: str, signature: object, tokens: list[int]) -> bytes | None:
        payload = real_get(text_hash, signature, tokens)
        text = engine.detokenize(tokens[len(engine.tokenize(EMBED_PREFIX, add_bos=True)) :])
        for word, other in (("March", "April"), ("five", "seven"), ("three", "seven")):
            if word in text:
                _, states = engine.embed_documents_with_kv([text.replace(word, other)])
                assert len(states[0].tokens) == len(tokens)
                return bytes(states[0].data)
        return payload

    monkeypatch.setattr(session.kv_store, "get", other_document)
    monkeypatch.setattr(session.kv_store, "put", lambda *a, **k: None)
    got = app_answer(session, CacheMode.DOC, Placement.CONSECUTIVE, 3, answer_spy)
    with pytest.raises(AssertionError, match="logits off by"):
        assert_matches_reference(got, weights, engine, CacheMode.DOC, Placement.CONSECUTIVE)


@on_llama_caches
def test_contrast_without_its_minus_term_is_caught(
    session: Session,
    weights: LlamaWeights,
    case: tuple[str, str, str],
    monkeypatch: pytest.MonkeyPatch,
    answer_spy: SpyOn,
) -> None:
    """(1 + a) * with passages alone, the contrast with the question alone left out."""
    engine = session.engine
    assert engine is not None
    contrast = Contrast(1.0)
    monkeypatch.setattr(Contrast, "combine", lambda self, with_docs, _alone: 2 * with_docs)
    got = app_answer(session, CacheMode.DOC, Placement.CONSECUTIVE, 3, answer_spy, contrast)
    with pytest.raises(AssertionError, match="logits off by"):
        assert_contrast_matches_reference(got, weights, engine, contrast)


# --- layouts an architecture cannot do exactly fall back to plain RAG ----------------------


@pytest.fixture(scope="module")
def gemma3_session(models: Models):
    name = "tiny-gemma3"
    s = open_session(Settings(db=models.indexed_db(name), model=models.path(name), context=1024))
    yield s
    s.close()


def test_gemma3_doc_caching_support_is_read_at_load(gemma3_session: Session) -> None:
    engine = gemma3_session.engine
    assert engine is not None and engine.doc_cache is not None
    support = engine.doc_cache
    assert (support.window, support.can_move, support.adds_bos) == (48, True, True)
    assert support.rope == "NeoX halves"


def test_a_segment_longer_than_the_window_falls_back_to_plain_rag(
    gemma3_session: Session, models: Models, monkeypatch: pytest.MonkeyPatch, answer_spy: SpyOn
) -> None:
    """Every test chunk fits gemma3's 48-token window; with a 12-token one none does."""
    engine = gemma3_session.engine
    assert engine is not None and engine.doc_cache is not None
    monkeypatch.setattr(engine, "doc_cache", dataclasses.replace(engine.doc_cache, window=12))
    got = app_answer(gemma3_session, CacheMode.DOC, Placement.ORIGINAL, 3, answer_spy)
    assert got.kv == ["fresh"] * 3
    assert any("plain RAG" in n and "12-token sliding window" in n for n in got.notices)
    w = models.reference("tiny-gemma3")
    assert_matches_reference(got, w, engine, CacheMode.OFF, Placement.ORIGINAL)


def test_keys_that_cannot_move_stay_in_place_or_fall_back(
    gemma3_session: Session, models: Models, monkeypatch: pytest.MonkeyPatch, answer_spy: SpyOn
) -> None:
    engine = gemma3_session.engine
    assert engine is not None and engine.doc_cache is not None
    fixed = dataclasses.replace(engine.doc_cache, can_move=False, why_not_move="RoPE scaling")
    monkeypatch.setattr(engine, "doc_cache", fixed)
    w = models.reference("tiny-gemma3")
    moved = app_answer(gemma3_session, CacheMode.DOC, Placement.CONSECUTIVE, 3, answer_spy)
    assert any("cannot be moved: RoPE scaling" in n for n in moved.notices)
    assert_matches_reference(moved, w, engine, CacheMode.OFF, Placement.CONSECUTIVE)
    in_place = app_answer(gemma3_session, CacheMode.DOC, Placement.ORIGINAL, 3, answer_spy)
    assert in_place.notices == [] and in_place.kv == ["cached"] * 3
    assert_matches_reference(in_place, w, engine, CacheMode.DOC, Placement.ORIGINAL)


# --- each architecture's difference is needed --------------------------------------------

# (model, what the reference leaves out): each must make the reference disagree with
# llama.cpp, or the tests above would pass without checking that difference
DIFFERENCES = [
    ("tiny-qwen2", "qkv_bias"),
    ("tiny-qwen2", "neox_rope"),
    ("tiny-qwen3", "qk_norm"),
    ("tiny-qwen3", "neox_rope"),
    ("tiny-gemma3", "embed_scale"),
    ("tiny-gemma3", "qk_norm"),
    ("tiny-gemma3", "post_norms"),
    ("tiny-gemma3", "gelu"),
    ("tiny-gemma3", "sliding_window"),
    ("tiny-gemma3", "swa_rope_base"),
    ("tiny-gemma3", "neox_rope"),
    ("tiny-phi3", "gate_first"),
    ("tiny-phi3", "neox_rope"),
]


def without(w: LlamaWeights, difference: str) -> LlamaWeights:
    """The reference with one architecture difference left out."""
    if difference == "sliding_window":  # the window layers' own RoPE base kept
        return dataclasses.replace(w, n_swa=10**9)
    if difference == "swa_rope_base":  # the window kept
        return dataclasses.replace(w, rope_base_swa=w.rope_base)
    if difference == "gate_first":  # phi3's fused ffn_up read as [up; gate]
        tensors = dict(w.tensors)
        for name, value in w.tensors.items():
            if name.endswith("ffn_up.weight"):
                gate, up = np.split(value, 2)
                tensors[name] = np.concatenate([up, gate])
        return dataclasses.replace(w, tensors=tensors)
    return dataclasses.replace(w, arch=dataclasses.replace(w.arch, **{difference: False}))


@pytest.mark.parametrize(("name", "difference"), DIFFERENCES)
def test_reference_without_the_difference_disagrees(
    models: Models, name: str, difference: str
) -> None:
    """A prompt longer than gemma3's window, so its sliding-window layer matters too."""
    w = models.reference(name)
    text = "\n\n".join(CORPUS.values())
    with Engine(models.path(name), EngineSettings(n_ctx=512)) as engine:
        tokens = engine.tokenize(RAG_PROMPT.format(docs=text, query=QUESTION), add_bos=True)
        assert len(tokens) > 48
        got = engine.next_token_logits(tokens)
    _, logits = forward(w, tokens, causal=True)
    scale = float(np.abs(logits[-1]).max())
    assert float(np.abs(got - logits[-1]).max()) <= TOLERANCE["f16"] * scale  # the full one
    _, broken = forward(without(w, difference), tokens, causal=True)
    assert float(np.abs(got - broken[-1]).max()) > TOLERANCE["f16"] * scale
