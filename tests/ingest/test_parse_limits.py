"""The per-file limits of config.toml's [index] table, through the real CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.cli_runs import cli_env, run_index, skip_reasons
from ingest.hostile_files import one_char_lines

pytestmark = pytest.mark.slow


def test_memory_limit_skips_the_file_and_names_the_limit(tmp_path: Path, tiny_model_path: Path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "lines.txt").write_bytes(one_char_lines(24 * 1024 * 1024))  # ~1 GiB as blocks
    (root / "good.txt").write_text("plain text words\n")
    env = cli_env(tmp_path / "data", "[index]\nparse_memory_mib = 256\nparse_output_mib = 4096\n")
    report, _ = run_index(tiny_model_path, tmp_path / "index.db", root, env=env)
    assert "needs over 256 MiB of memory" in skip_reasons(report).get("lines.txt", ""), report
    assert report["indexed"] == 1


def test_size_limit_from_config(tmp_path: Path, tiny_model_path: Path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "big.txt").write_text("word " * 300_000)  # 1.5 MB
    (root / "small.txt").write_text("plain text words\n")
    env = cli_env(tmp_path / "data", "[index]\nmax_file_mib = 1\n")
    report, _ = run_index(tiny_model_path, tmp_path / "index.db", root, env=env)
    assert "larger than the 1 MiB limit" in skip_reasons(report)["big.txt"], report
    assert report["indexed"] == 1
