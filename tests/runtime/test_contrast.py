"""Context-aware decoding in the engine (runtime/contrast.py): it generates as plain
generation does but for the tokens it chooses, and leaves sequence 0 as plain generation of
those tokens leaves it, the scratch sequence gone. tests/runtime/test_reference_layouts.py
checks its logits against the numpy reference.

The tiny model's weights are f32, whose two-row decodes round as one-row decodes do but for
a few K/V values' last bit; with quantized weights llama.cpp's other kernels for two rows
move logits further (runtime/contrast.py).
"""

from __future__ import annotations

from collections.abc import Callable

import llama_cpp as ll
import numpy as np
import pytest

from gritdesk.runtime.contrast import Contrast
from gritdesk.runtime.engine import (
    SCRATCH_SEQ,
    ChatTurn,
    Engine,
    GenerationOptions,
    GenerationStats,
)
from gritdesk.runtime.kv_state_codec import f16_regions

PASSAGE = (
    "Meals on a business trip are covered by a daily allowance of 45 euros. Hotel costs are "
    "refunded up to 140 euros a night in Europe and 180 dollars in North America."
)
QUESTION = "How much is the hotel in Europe per night?"
FOLLOW_UP = " And in North America?"


def prompts(engine: Engine) -> tuple[list[int], list[int]]:
    """The question with its passage, and alone (what the answer is contrasted with)."""
    return (
        engine.chat_tokens([ChatTurn(PASSAGE + "\n\n" + QUESTION)]),
        engine.chat_tokens([ChatTurn(QUESTION)]),
    )


def run(
    engine: Engine,
    contrast: Contrast | None,
    options: GenerationOptions,
    should_stop: Callable[[], bool] | None = None,
) -> tuple[str, list[int], GenerationStats]:
    """One answer from a cleared cache: its text, the tokens sampled and the stats."""
    with_passage, alone = prompts(engine)
    engine.reset()
    stats = GenerationStats()
    sampled: list[int] = []
    real = engine.token_bytes
    engine.token_bytes = lambda token: (sampled.append(token), real(token))[1]  # type: ignore[method-assign]
    try:
        text = "".join(
            engine.stream(
                with_passage,
                options=options,
                stats=stats,
                should_stop=should_stop,
                contrast=contrast,
                contrast_prompt=alone,
            )
        )
    finally:
        del engine.token_bytes
    return text, sampled, stats


def follow_up_logits(engine: Engine, end: int) -> np.ndarray:
    """Logits of a follow-up prefilled on top of what sequence 0 holds."""
    engine.prefill(engine.tokenize(FOLLOW_UP), end)
    return engine.last_logits()


def plain_sequence(engine: Engine, answer: list[int]) -> tuple[bytes, np.ndarray]:
    """Sequence 0 after plain generation of `answer`: the prompt, then its tokens decoded one
    by one as `Engine.stream` decodes them; its saved state and a follow-up's logits."""
    with_passage, _ = prompts(engine)
    engine.reset()
    engine.prefill(with_passage, 0)
    for i, token in enumerate(answer):
        engine.prefill([token], len(with_passage) + i)
    state = engine._save_seq(0)
    return state, follow_up_logits(engine, len(with_passage) + len(answer))


def scratch_is_empty(engine: Engine) -> bool:
    return ll.llama_memory_seq_pos_max(engine._memory, SCRATCH_SEQ) == -1


@pytest.mark.parametrize(
    "options",
    [
        GenerationOptions(max_tokens=12),
        GenerationOptions(max_tokens=40, stop=("e",)),  # a stop string cuts the text
        GenerationOptions(max_tokens=12, temperature=0.8, top_p=0.9, seed=7),
    ],
    ids=["greedy", "stop-string", "sampled"],
)
def test_the_two_sequence_path_generates_as_plain_generation_does(
    tiny_engine: Engine, options: GenerationOptions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a combination that hands back the with-passages row, the contrast's loop (both
    sequences decoded, the sampler fed computed logits) must give plain generation's tokens,
    stop reason, counts and end."""
    engine = tiny_engine
    monkeypatch.setattr(Contrast, "combine", lambda self, with_context, _without: with_context)
    plain = run(engine, None, options)
    before = engine.tokens_decoded
    contrasted = run(engine, Contrast(1.0), options)
    both = engine.tokens_decoded - before
    assert contrasted[:2] == plain[:2]
    for field in ("generated_tokens", "finish_reason", "end_position", "prompt_tokens_computed"):
        assert getattr(contrasted[2], field) == getattr(plain[2], field), field
    assert contrasted[2].contrast_skipped == ""
    with_passage, alone = prompts(engine)
    answer = contrasted[2].end_position - len(with_passage)  # tokens decoded after the prompt
    assert both == len(with_passage) + len(alone) + 2 * answer  # both sequences went on
    assert scratch_is_empty(engine)


def test_alpha_zero_is_plain_generation(tiny_engine: Engine) -> None:
    """Nothing to contrast: nothing but sequence 0 is decoded (the two-sequence path would
    round otherwise with quantized weights)."""
    engine = tiny_engine
    options = GenerationOptions(max_tokens=12)
    before = engine.tokens_decoded
    plain = run(engine, None, options)
    between = engine.tokens_decoded
    zero = run(engine, Contrast(0.0, plausibility=0.1), options)
    assert zero[:2] == plain[:2]
    assert engine.tokens_decoded - between == between - before


def test_cancelling_ends_both_alike(tiny_engine: Engine) -> None:
    def after(n: int) -> Callable[[], bool]:
        calls = iter(range(10**6))
        return lambda: next(calls) >= n

    options = GenerationOptions(max_tokens=12)
    plain = run(tiny_engine, None, options, should_stop=after(3))
    contrasted = run(tiny_engine, Contrast(1.0), options, should_stop=after(3))
    assert plain[2].finish_reason == contrasted[2].finish_reason == "cancelled"
    assert plain[2].generated_tokens == contrasted[2].generated_tokens == 3
    assert plain[2].end_position == contrasted[2].end_position
    assert scratch_is_empty(tiny_engine)


def test_a_contrast_changes_the_answer(tiny_engine: Engine) -> None:
    """Else the tests above would pass with the contrast never applied."""
    options = GenerationOptions(max_tokens=12)
    assert run(tiny_engine, Contrast(1.0), options)[1] != run(tiny_engine, None, options)[1]


def assert_same_kv(got_state: bytes, want_state: bytes) -> None:
    """Two saved states of sequence 0: the same cells in the same order with the same
    positions and layout, byte for byte; K/V values equal to f16 rounding."""
    assert len(got_state) == len(want_state)
    regions = f16_regions(want_state)
    assert regions == f16_regions(got_state)
    got, want = bytearray(got_state), bytearray(want_state)
    for offset, count, _row in regions:  # the K/V values, compared as numbers
        got_kv = np.frombuffer(got_state, np.float16, count, offset).astype(np.float32)
        want_kv = np.frombuffer(want_state, np.float16, count, offset).astype(np.float32)
        np.testing.assert_allclose(got_kv, want_kv, rtol=2e-3, atol=1e-4)
        got[offset : offset + 2 * count] = want[offset : offset + 2 * count] = bytes(2 * count)
    assert got == want, "cells, positions or layout differ from plain generation's"


@pytest.mark.parametrize("contrast", [Contrast(1.0), Contrast(0.5, plausibility=0.1)])
def test_sequence_0_ends_as_plain_generation_of_the_same_tokens(
    tiny_engine: Engine, contrast: Contrast
) -> None:
    """Its KV as plain generation of the answer leaves it, to f16 rounding of the values
    (two-row decodes sum attention in another order: a few differ in their last bit), and so
    after a follow-up prefilled on top: its cells go where they go after plain generation
    (a saved state lists cells in cache order), and its logits are the same."""
    engine = tiny_engine
    _, sampled, stats = run(engine, contrast, GenerationOptions(max_tokens=12))
    assert stats.finish_reason == "length" and scratch_is_empty(engine)
    answer = sampled[: stats.end_position - len(prompts(engine)[0])]  # the decoded ones
    got_state = engine._save_seq(0)
    got_follow_up = follow_up_logits(engine, stats.end_position)
    got_after = engine._save_seq(0)
    want_state, want_follow_up = plain_sequence(engine, answer)
    want_after = engine._save_seq(0)

    assert_same_kv(got_state, want_state)
    assert_same_kv(got_after, want_after)
    scale = float(np.abs(want_follow_up).max())
    np.testing.assert_allclose(got_follow_up, want_follow_up, atol=1e-4 * scale)


def test_no_room_for_both_decodes_plainly_and_says_why(tiny_engine: Engine) -> None:
    options = GenerationOptions(max_tokens=600)  # two answers this long: not in 1024 tokens
    text, sampled, stats = run(tiny_engine, Contrast(1.0), options)
    plain = run(tiny_engine, None, options)
    assert "1024-token context" in stats.contrast_skipped
    assert (text, sampled) == plain[:2]


def test_combine_is_the_papers_formula() -> None:
    with_context = np.array([2.0, 1.0, 0.0, -3.0], np.float32)
    without = np.array([3.0, 0.0, 0.0, -1.0], np.float32)
    np.testing.assert_allclose(
        Contrast(0.5).combine(with_context, without), 1.5 * with_context - 0.5 * without
    )
    # p >= 0.3 * p_max keeps tokens within log(0.3) = -1.2 of the largest logit
    constrained = Contrast(1.0, plausibility=0.3).combine(with_context, without)
    np.testing.assert_array_equal(constrained, [1.0, 2.0, -np.inf, -np.inf])
    with pytest.raises(ValueError):
        Contrast(-1.0)
