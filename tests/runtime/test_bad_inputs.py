"""Bad inputs end in a clear message and a non-zero exit, never a signal (run as subprocesses)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gritdesk.models.synthetic import load_shapes, write_synthetic_gguf

GRITDESK = [sys.executable, "-c", "from gritdesk.cli import main; main()"]


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*GRITDESK, *args], capture_output=True, text=True, timeout=timeout, env=dict(os.environ)
    )


def assert_clean_failure(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode > 0, (
        f"died by signal {-proc.returncode}" if proc.returncode < 0 else proc
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    for needle in needles:
        assert needle in proc.stderr, proc.stderr


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.gguf"
    assert_clean_failure(
        run_cli("embed", "--model", str(missing), "hi"), str(missing), "file not found"
    )


def test_random_bytes(tmp_path: Path) -> None:
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(os.urandom(4096))
    assert_clean_failure(run_cli("embed", "--model", str(junk), "hi"), str(junk), "not a GGUF file")


def test_directory_and_fifo_are_not_models(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.gguf"
    os.mkfifo(fifo)  # opening a FIFO would block: must be refused before reading
    assert_clean_failure(
        run_cli("embed", "--model", str(fifo), "hi", timeout=30), "not a regular file"
    )
    assert_clean_failure(run_cli("embed", "--model", str(tmp_path), "hi"), "not a regular file")


@pytest.mark.parametrize("keep_fraction", [0.001, 0.5, 0.999])
def test_truncated_gguf(tmp_path: Path, tiny_model_path: Path, keep_fraction: float) -> None:
    data = tiny_model_path.read_bytes()
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(data[: max(16, int(len(data) * keep_fraction))])
    proc = run_cli("embed", "--model", str(cut), "hi")
    assert_clean_failure(proc, str(cut))
    assert "truncated" in proc.stderr or "corrupt" in proc.stderr


def test_unsupported_architecture(tmp_path: Path) -> None:
    other = write_synthetic_gguf(load_shapes()["tiny"], tmp_path / "gpt2.gguf", architecture="gpt2")
    assert_clean_failure(
        run_cli("embed", "--model", str(other), "hi"),
        str(other),
        "architecture 'gpt2' is not supported",
    )


def test_empty_text(tiny_model_path: Path) -> None:
    assert_clean_failure(
        run_cli("embed", "--model", str(tiny_model_path), "ok", ""), "text 2 is empty"
    )


def test_overlong_text(tiny_model_path: Path) -> None:
    long_text = "paragraph " * 6000  # more tokens than the default 4096 context
    assert_clean_failure(
        run_cli("embed", "--model", str(tiny_model_path), long_text), "tokens; the limit is 4096"
    )


def test_no_model_anywhere_says_how_to_get_one() -> None:
    assert_clean_failure(run_cli("embed", "hi"), "gritdesk models pull gritlm-7b")


def test_embed_json_shape(tiny_model_path: Path) -> None:
    import json

    proc = run_cli("embed", "--model", str(tiny_model_path), "one", "two words")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["model"] == str(tiny_model_path)
    assert out["dim"] == 64
    assert len(out["embeddings"]) == 2 and all(len(v) == 64 for v in out["embeddings"])
