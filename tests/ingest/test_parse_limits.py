"""The per-file limits of config.toml's [index] table, through the real CLI."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from ingest.cli_runs import cli_env, gritdesk_command, run_index, skip_reasons
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


@pytest.mark.parametrize(
    "config, message",
    [
        ("[index]\nparse_timeout = 5\n", "unknown key index.parse_timeout"),
        ("[index]\nparse_timeout_s = -1\n", "index.parse_timeout_s: must be a number > 0"),
        ("[index]\nparse_memory_mib = 'lots'\n", "index.parse_memory_mib: must be a number > 0"),
        ("[index]\nocr = 'no'\n", "index.ocr: must be true or false"),
    ],
)
def test_bad_limit_is_a_clear_error(tmp_path: Path, tiny_model_path: Path, config, message):
    (tmp_path / "root").mkdir()
    proc = subprocess.run(
        gritdesk_command(
            "index", tmp_path / "root", "--db", tmp_path / "i.db", "--model", tiny_model_path
        ),
        capture_output=True,
        text=True,
        timeout=120,
        env=cli_env(tmp_path / "data", config),
    )
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr
