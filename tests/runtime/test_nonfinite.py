"""A model whose weights hold NaN is an error naming the model, never NaN vectors or text."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import gguf
import numpy as np
import pytest

GRITDESK = [sys.executable, "-c", "from gritdesk.cli import main; main()"]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*GRITDESK, *args], capture_output=True, text=True, timeout=300, env=dict(os.environ)
    )


@pytest.fixture(scope="module")
def nan_model(tiny_model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with its final norm's weights set to NaN (in place, same layout)."""
    path = tmp_path_factory.mktemp("nan") / "weights-nan.gguf"
    shutil.copyfile(tiny_model_path, path)
    reader = gguf.GGUFReader(path)
    tensor = next(t for t in reader.tensors if t.name == "output_norm.weight")
    offset, count = tensor.data_offset, int(tensor.n_elements)
    del reader
    with path.open("r+b") as f:
        f.seek(offset)
        f.write(np.full(count, np.nan, dtype=np.float32).tobytes())
    return path


def assert_names_broken_model(proc: subprocess.CompletedProcess[str], model: Path) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "non-finite" in proc.stderr and str(model) in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "nan" not in proc.stdout.lower()


def test_embed_with_nan_weights_is_an_error(nan_model: Path) -> None:
    assert_names_broken_model(run_cli("embed", "--model", str(nan_model), "hello"), nan_model)


def test_generate_with_nan_weights_is_an_error(nan_model: Path) -> None:
    assert_names_broken_model(run_cli("generate", "--model", str(nan_model), "hello"), nan_model)


def test_index_with_nan_weights_stores_no_vector(nan_model: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("Invoices are paid within thirty days.\n")
    db = tmp_path / "index.db"
    proc = run_cli("index", str(corpus), "--db", str(db), "--model", str(nan_model))
    assert_names_broken_model(proc, nan_model)
    search = run_cli("search", "invoices", "--db", str(db), "--model", str(nan_model), "--json")
    assert "a.txt" not in search.stdout


def test_same_model_without_nan_embeds(tiny_model_path: Path) -> None:
    """The check is about the values: the untouched model passes through the same command."""
    proc = run_cli("embed", "--model", str(tiny_model_path), "hello")
    assert proc.returncode == 0, proc.stderr
