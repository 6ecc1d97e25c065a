"""Quantize the tiny f32 model with llama.cpp, load the results, and measure embedding drift."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import gguf
import numpy as np
import pytest
from typer.testing import CliRunner

from gritdesk.commands.models import models_app
from gritdesk.errors import GritdeskError
from gritdesk.models.drift import SAMPLE_SENTENCES, DriftReport, compare, embed_samples
from gritdesk.models.progress import ProgressTask
from gritdesk.models.quantize_progress import quantize_with_progress
from gritdesk.runtime.engine import Engine, EngineSettings


class RecordingProgress:
    """A `Progress` that remembers every update, to check what the bar was told."""

    def __init__(self) -> None:
        self.updates: list[tuple[int, int | None]] = []
        self.totals: list[int | None] = []

    @contextmanager
    def task(self, label: str, total: int | None) -> Iterator[ProgressTask]:
        self.totals.append(total)
        recorder = self

        class Task:
            def advance(self, n: int) -> None:
                recorder.updates.append((n, None))

            def set(self, completed: int, total: int | None = None) -> None:
                recorder.updates.append((completed, total))

        yield Task()


@pytest.fixture(scope="module")
def progress() -> dict[str, RecordingProgress]:
    return {"Q8_0": RecordingProgress(), "Q4_0": RecordingProgress()}


@pytest.fixture(scope="module")
def quantized(
    tiny_model_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    progress: dict[str, RecordingProgress],
) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("quantized")
    return {
        qtype: quantize_with_progress(tiny_model_path, out / f"tiny-{qtype}.gguf", qtype, bar)
        for qtype, bar in progress.items()
    }


@pytest.fixture(scope="module")
def drift(tiny_model_path: Path, quantized: dict[str, Path]) -> dict[str, DriftReport]:
    source = embed_samples(tiny_model_path)  # once, for both comparisons
    return {q: compare(source, embed_samples(path)) for q, path in quantized.items()}


def test_quantized_models_load_and_embed(quantized: dict[str, Path]) -> None:
    for qtype, path in quantized.items():
        with Engine(path, EngineSettings(n_ctx=256, n_seq_max=2)) as engine:
            assert engine.summary.file_type == gguf.LlamaFileType[f"MOSTLY_{qtype}"]
            vectors = engine.embed(["a small test sentence", "another one"])
        assert vectors.shape == (2, 64)
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_q8_0_drifts_less_than_q4_0(drift: dict[str, DriftReport]) -> None:
    q8, q4 = drift["Q8_0"], drift["Q4_0"]
    for report in (q8, q4):
        assert len(report.cosines) == len(SAMPLE_SENTENCES)
        assert report.min <= report.mean <= 1.0 + 1e-9
    assert q8.mean > 0.99, q8
    assert 1 - q8.mean < 1 - q4.mean, (q8, q4)
    assert q8.min > q4.min, (q8, q4)
    assert q4.mean < 0.9999, "Q4_0 of random weights cannot be lossless: drift not measured?"


def test_progress_ends_at_the_real_size_near_the_estimate(
    quantized: dict[str, Path], progress: dict[str, RecordingProgress]
) -> None:
    for qtype, bar in progress.items():
        size = quantized[qtype].stat().st_size
        assert len(bar.totals) == 1, "one bar per quantization"
        assert bar.updates[-1] == (size, size)
        assert all(done <= size for done, _ in bar.updates)
        assert 0.8 < size / bar.totals[0] < 1.25, (qtype, size, bar.totals)


def test_cli_quantize_reports_drift_and_refuses_to_overwrite(
    tiny_model_path: Path, tmp_path: Path
) -> None:
    runner = CliRunner()
    out = tmp_path / "cli-q8.gguf"
    args = ["quantize", str(tiny_model_path), str(out), "q8_0", "--json"]
    result = runner.invoke(models_app, args)
    assert result.exit_code == 0, (result.output, result.exception)
    report = json.loads(result.stdout)
    assert report["output"] == str(out) and report["type"] == "Q8_0"
    assert 0.99 < report["drift"]["mean_cosine"] <= 1.0 + 1e-9
    assert report["drift"]["min_cosine"] <= report["drift"]["mean_cosine"]

    again = runner.invoke(models_app, ["quantize", str(tiny_model_path), str(out), "Q8_0"])
    assert isinstance(again.exception, GritdeskError)
    assert str(out) in str(again.exception) and "--force" in str(again.exception)

    bad = runner.invoke(models_app, ["quantize", str(tiny_model_path), str(tmp_path / "x"), "Q7"])
    assert isinstance(bad.exception, GritdeskError)
    assert "'Q7'" in str(bad.exception) and "Q4_K_M" in str(bad.exception)
