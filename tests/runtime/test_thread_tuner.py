"""Batch passes run on the thread count measured fastest, tried again now and then: on
cores other programs use, fewer threads win by wall time; on a quiet machine, all."""

from __future__ import annotations

from pathlib import Path

from gritdesk.runtime.engine import Engine, EngineSettings
from gritdesk.runtime.thread_tuner import (
    MIN_TOKENS,
    RECHECK_CALLS,
    TRIAL_CALLS,
    ThreadTuner,
    thread_candidates,
)


def run(tuner: ThreadTuner, calls: int, rate: dict[int, float], tokens: int = 256) -> list[int]:
    used = []
    for _ in range(calls):
        threads = tuner.threads()
        used.append(threads)
        tuner.record(threads, tokens, tokens / rate[threads])
    return used


def test_the_faster_count_is_chosen_after_trials() -> None:
    tuner = ThreadTuner([2, 1])
    used = run(tuner, 2 * TRIAL_CALLS + 5, {2: 100.0, 1: 250.0})  # a loaded machine
    assert used[: 2 * TRIAL_CALLS] == [2] * TRIAL_CALLS + [1] * TRIAL_CALLS
    assert used[2 * TRIAL_CALLS :] == [1] * 5 and tuner.chosen == 1
    quiet = ThreadTuner([2, 1])
    used = run(quiet, TRIAL_CALLS + 6, {2: 300.0, 1: 180.0})
    assert used == [2] * TRIAL_CALLS + [1] + [2] * 5 and quiet.chosen == 2


def test_a_slower_challenger_costs_one_call_a_faster_one_must_hold() -> None:
    """On a quiet machine the half count loses its first call and is not tried again (each
    slow trial call costs ~1% of a small index run); a count that wins once by chance
    (a short call, a pause of the other program) must win its further calls too."""
    tuner = ThreadTuner([2, 1])
    rates = iter([300.0, 310.0, 290.0, 320.0, 200.0, 180.0])  # 1 thread wins once, then not
    used = []
    for _ in range(6):
        threads = tuner.threads()
        used.append(threads)
        tuner.record(threads, 256, 256 / next(rates))
    assert used == [2, 2, 2, 1, 1, 1]
    assert tuner.chosen == 2  # median of 1 thread (200) below 2 threads' (300)


def test_the_counts_are_tried_again_when_the_load_may_have_changed() -> None:
    tuner = ThreadTuner([2, 1])
    run(tuner, 2 * TRIAL_CALLS + RECHECK_CALLS, {2: 100.0, 1: 250.0})
    assert tuner.chosen == 1
    run(tuner, 2 * TRIAL_CALLS + 1, {2: 300.0, 1: 180.0})  # the other program ended
    assert tuner.chosen == 2


def test_small_calls_do_not_count() -> None:
    tuner = ThreadTuner([2, 1])
    for _ in range(10):
        tuner.record(tuner.threads(), MIN_TOKENS - 1, 0.001)
    assert tuner.threads() == 2 and tuner.chosen == 2  # still on its first trial


def test_candidates() -> None:
    assert thread_candidates(1) == [1]
    assert thread_candidates(2) == [2, 1]
    assert thread_candidates(8) == [8, 4]


class AlwaysOne(ThreadTuner):
    def threads(self) -> int:
        return 1


def test_the_engine_runs_batches_on_the_tuners_count(tiny_model_path: Path) -> None:
    with Engine(tiny_model_path, EngineSettings(n_ctx=512, n_threads=None)) as engine:
        assert engine.thread_tuner is not None
        engine.thread_tuner = AlwaysOne([2, 1])
        engine.embed_documents(["a text long enough to be a batch of several tokens " * 4])
        assert engine.batch_threads == 1
    with Engine(tiny_model_path, EngineSettings(n_ctx=512, n_threads=2)) as fixed:
        assert fixed.thread_tuner is None  # the user chose: no tuning
        fixed.embed_documents(["a text long enough to be a batch of several tokens " * 4])
        assert fixed.batch_threads == 2
