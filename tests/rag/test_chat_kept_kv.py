"""Chat turns continue the previous turn's KV when the follow-up retrieves the same chunks.

The app runs for real (a CLI-built index, the Answerer, llama.cpp); the second turn's
logits are checked against the numpy reference computing the whole two-turn prompt from
scratch: the chunks under a bidirectional mask each, moved into place, then turn one's
suffix, its answer and turn two's question causal over everything.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from gritdesk.rag.answer import Answerer, AskOptions, PreparedAnswer
from gritdesk.rag.layouts import CacheMode
from gritdesk.runtime.contrast import Contrast
from gritdesk.runtime.engine import ChatTurn, Engine, GenerationOptions
from gritdesk.session import Session, open_session
from gritdesk.settings import Settings
from ingest.cli_runs import index_texts
from reference.cache_layouts import Segment, cached_segment, moved, suffix_logits
from reference.llama_numpy import LlamaWeights

if TYPE_CHECKING:
    from conftest import SpyOn

CORPUS = {
    "aurora.txt": "The Aurora project ships its first release on the ninth of March, after a "
    "security review by the platform team.",
    # "project" gives invoices.txt a keyword hit for both turns, so the ranking of the three
    # chunks is aurora, invoices, cafeteria whatever the tiny model's noise vectors say
    "invoices.txt": "Invoices above five thousand euros need two signatures: the team lead "
    "and someone from finance, on every project.",
    "cafeteria.txt": "The cafeteria on the second floor closes at three on Fridays during "
    "the summer months.",
}
FIRST = "When does the Aurora project ship its first release?"
SECOND = "Who reviews the Aurora release before it ships?"
# GRITLM_NOTES section 2, written out here (not taken from the recipes)
DOC_SUFFIX = (
    "\n<|user|>\n{query}\n\nAnswer the prior query while optionally using the context prior "
    "to it\n<|assistant|>\n"
)
GENERATED = 4
TOLERANCE = 0.005  # of the largest reference logit, f16 KV (as in test_reference_layouts)


@pytest.fixture(scope="module")
def weights(tiny_model_path: Path) -> LlamaWeights:
    return LlamaWeights.load(tiny_model_path)


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory, tiny_model_path: Path):
    db = index_texts(tiny_model_path, tmp_path_factory.mktemp("chat-kv"), CORPUS)
    s = open_session(Settings(db=db, model=tiny_model_path, context=1024))
    yield s
    s.close()


@dataclass
class Turn:
    prepared: PreparedAnswer
    answer: str
    prefilled: list[int]  # what the answer phase prefilled, and where
    position: int
    first_logits: np.ndarray
    sampled: list[int]
    decoded: int  # tokens through llama_decode in the answer phase
    contrast_prompt: list[int]  # context-aware decoding's prompt without passages


def ask(
    answerer: Answerer,
    question: str,
    history: list[ChatTurn],
    answer_spy: SpyOn,
    k: int = 3,
    contrast: Contrast | None = None,
) -> Turn:
    engine = answerer.generator
    options = AskOptions(
        k=k,
        cache_mode=CacheMode.DOC,
        contrast=contrast,
        generation=GenerationOptions(max_tokens=GENERATED),
    )
    prepared = answerer.prepare(question, options, history, [t.user for t in history])
    before = engine.tokens_decoded
    with answer_spy(engine) as spy:
        answer = "".join(answerer.stream(prepared))
    return Turn(
        prepared,
        answer,
        spy.prefilled,
        spy.position,
        spy.logits,  # type: ignore[arg-type]
        spy.sampled,
        engine.tokens_decoded - before,
        spy.contrast_prompt,
    )


def reference_segments(w: LlamaWeights, engine: Engine, docs: list[str]) -> list[Segment]:
    """Each chunk's embedding-pass KV, placed one after another (Doc Caching)."""
    segments: list[Segment] = []
    end = 0
    for text in docs:
        segment = cached_segment(w, engine.tokenize("<|embed|>\n" + text, add_bos=True))
        segments.append(moved(w, segment, end) if end else segment)
        end = segments[-1].end
    return segments


def test_follow_up_prefills_only_itself_and_matches_reference(
    session: Session, weights: LlamaWeights, answer_spy: SpyOn
) -> None:
    engine = session.engine
    assert engine is not None
    answerer = Answerer(session.db, engine, session.kv_store)
    first = ask(answerer, FIRST, [], answer_spy)
    assert first.prepared.reprefill_reason is None
    kept = answerer.kept
    assert kept is not None and kept.end == first.position + len(first.prefilled) + GENERATED

    second = ask(answerer, SECOND, [ChatTurn(FIRST, first.answer)], answer_spy)
    assert second.prepared.reprefill_reason is None, second.prepared.reprefill_reason
    assert [s.kv for s in second.prepared.sources] == ["kept"] * 3
    follow_up = [engine.eos, *engine.tokenize(DOC_SUFFIX.format(query=SECOND))]
    assert second.prefilled == follow_up
    assert second.position == kept.end
    # only the new turn and the new answer's tokens went through llama.cpp
    assert second.decoded == len(follow_up) + GENERATED

    docs = [s.hit.text for s in first.prepared.sources]
    assert docs == [s.hit.text for s in second.prepared.sources]
    segments = reference_segments(weights, engine, docs)
    start = segments[-1].end
    first_suffix = engine.tokenize(DOC_SUFFIX.format(query=FIRST))
    assert (first.prefilled, first.position) == (first_suffix, start)
    answer_tokens = first.sampled[: kept.end - start - len(first_suffix)]  # those decoded
    whole = first_suffix + answer_tokens + follow_up  # turn one, its answer, turn two
    expected = suffix_logits(weights, segments, whole, start)[-1]
    scale = float(np.abs(expected).max())
    diff = float(np.abs(second.first_logits - expected).max())
    assert diff <= TOLERANCE * scale, f"logits off by {diff:.4f} (scale {scale:.2f})"

    # a third turn continues the same KV
    history = [ChatTurn(FIRST, first.answer), ChatTurn(SECOND, second.answer)]
    third = ask(answerer, FIRST, history, answer_spy)
    assert third.prepared.reprefill_reason is None
    assert third.position == second.position + len(second.prefilled) + GENERATED


def test_a_follow_up_continues_a_contrasted_answer(
    session: Session, weights: LlamaWeights, answer_spy: SpyOn
) -> None:
    """Context-aware decoding leaves sequence 0 as plain generation does: the follow-up
    prefills only itself on the kept KV and computes what the reference computes for the
    whole conversation; each turn is contrasted with the conversation without passages."""
    engine = session.engine
    assert engine is not None
    answerer = Answerer(session.db, engine, session.kv_store)
    contrast = Contrast(0.5)
    first = ask(answerer, FIRST, [], answer_spy, contrast=contrast)
    kept = answerer.kept
    assert kept is not None and kept.end == first.position + len(first.prefilled) + GENERATED
    alone = "<|user|>\n{query}\n\nAnswer the prior query while optionally using the context "
    alone += "prior to it\n<|assistant|>\n"
    assert first.contrast_prompt == engine.tokenize(alone.format(query=FIRST), add_bos=True)

    second = ask(answerer, SECOND, [ChatTurn(FIRST, first.answer)], answer_spy, contrast=contrast)
    assert second.prepared.reprefill_reason is None, second.prepared.reprefill_reason
    follow_up = [engine.eos, *engine.tokenize(DOC_SUFFIX.format(query=SECOND))]
    assert (second.prefilled, second.position) == (follow_up, kept.end)
    earlier = engine.tokenize(f"<|user|>\n{FIRST}\n<|assistant|>\n{first.answer}", add_bos=True)
    now = engine.tokenize("\n" + alone.format(query=SECOND))
    assert second.contrast_prompt == [*earlier, engine.eos, *now]

    segments = reference_segments(weights, engine, [s.hit.text for s in first.prepared.sources])
    start = segments[-1].end
    first_suffix = engine.tokenize(DOC_SUFFIX.format(query=FIRST))
    answer_tokens = first.sampled[: kept.end - start - len(first_suffix)]
    expected = suffix_logits(weights, segments, first_suffix + answer_tokens + follow_up, start)
    scale = float(np.abs(expected[-1]).max())
    diff = float(np.abs(second.first_logits - expected[-1]).max())
    assert diff <= TOLERANCE * scale, f"logits off by {diff:.4f} (scale {scale:.2f})"


def test_changed_sources_reprefill_and_say_why(session: Session, answer_spy: SpyOn) -> None:
    engine = session.engine
    assert engine is not None
    answerer = Answerer(session.db, engine, session.kv_store)
    first = ask(answerer, FIRST, [], answer_spy)
    dropped = first.prepared.sources[-1].hit
    second = ask(answerer, SECOND, [ChatTurn(FIRST, first.answer)], answer_spy, k=2)
    reason = second.prepared.reprefill_reason
    assert reason == f"sources changed: -{Path(dropped.path).name}:1", reason
    assert any(reason in notice for notice in second.prepared.notices)
    assert [source.kv for source in second.prepared.sources] == ["cached", "cached"]
    # the prompt laid out anew: turn one as history, then turn two
    assert engine.detokenize(second.prefilled).count("<|user|>") == 2
    assert second.decoded == len(second.prefilled) + GENERATED


def test_context_used_in_between_or_another_conversation(
    session: Session, answer_spy: SpyOn
) -> None:
    engine = session.engine
    assert engine is not None
    answerer = Answerer(session.db, engine, session.kv_store)
    first = ask(answerer, FIRST, [], answer_spy)
    history = [ChatTurn(FIRST, first.answer)]
    other = ask(answerer, SECOND, [ChatTurn(FIRST, "another answer")], answer_spy)
    assert other.prepared.reprefill_reason == "the conversation is not the one kept"

    first = ask(answerer, FIRST, [], answer_spy)
    history = [ChatTurn(FIRST, first.answer)]
    "".join(engine.generate("something else"))  # e.g. `gritdesk generate` on the same model
    again = ask(answerer, SECOND, history, answer_spy)
    reason = again.prepared.reprefill_reason
    assert reason == "the model's context was used for other work since the previous answer"

    # a conversation opened from history: nothing was kept, nothing to tell the user
    loaded = ask(Answerer(session.db, engine, session.kv_store), SECOND, history, answer_spy)
    assert loaded.prepared.reprefill_reason == "nothing kept from the previous answer"
    assert not any("read the conversation again" in n for n in loaded.prepared.notices)
