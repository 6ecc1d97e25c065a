"""Progress that helps: the current file and its share, an ETA from the measured speed and
the estimate's tokens, and the slowest files at the end (in the report and the CLI's JSON)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from gritdesk.ingest.estimate import estimate_index
from gritdesk.ingest.indexer import IndexProgress, index_paths
from gritdesk.store.connection import open_database
from ingest.cli_runs import cli_env, gritdesk_command
from ingest.estimate_corpus import build_corpus


def test_progress_names_the_file_its_share_and_an_eta(tiny_engine, tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    total = build_corpus(root, files=12)
    (root / "big.md").write_text("# Big\n\n" + "otter river kettle copper\n" * 3000)
    total += (root / "big.md").stat().st_size
    db = open_database(tmp_path / "index.db")
    estimate = estimate_index(db, tiny_engine, [root], time_sample=False)
    seen: list[IndexProgress] = []
    report = index_paths(
        db, tiny_engine, [root], progress=seen.append, expected_tokens=estimate.tokens
    )

    shares = {p.current_path: p.current_share for p in seen if p.current_share is not None}
    assert len(shares) == 13
    assert shares["big.md"] == pytest.approx(
        (root / "big.md").stat().st_size / total
    )
    assert sum(shares.values()) == pytest.approx(1.0)
    working = [p for p in seen if p.phase == "indexing" and p.tokens_done > 0]
    assert working and all(p.tokens_expected == estimate.tokens for p in working)
    first = working[0]  # the ETA is the estimate's tokens left at the speed so far
    assert first.eta_s == pytest.approx(
        max(estimate.tokens - first.tokens_done, 0) / first.tokens_per_s
    )

    slowest = report.slowest
    assert 0 < len(slowest) <= 10
    assert [s.seconds for s in slowest] == sorted((s.seconds for s in slowest), reverse=True)
    assert slowest[0].path.endswith("big.md")  # by far the most tokens to embed
    assert slowest[0].tokens == max(s.tokens for s in slowest)


@pytest.mark.slow
def test_cli_reports_the_slowest_files(tmp_path: Path, tiny_model_path: Path) -> None:
    root = tmp_path / "corpus"
    build_corpus(root, files=8)
    env = cli_env(tmp_path / "data")
    args = ["index", root, "--db", tmp_path / "i.db", "--model", tiny_model_path, "--no-save-kv"]
    proc = subprocess.run(
        gritdesk_command(*args, "--json"), capture_output=True, text=True, timeout=300, env=env
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.splitlines()[-1])
    assert len(report["slowest"]) == 8 and report["slowest"][0]["seconds"] > 0
    assert {"path", "seconds", "chunks", "tokens"} <= set(report["slowest"][0])

    (root / "part0" / "late.md").write_text("# Late\n\nA note about kettles.\n")
    proc = subprocess.run(
        gritdesk_command(*args), capture_output=True, text=True, timeout=300, env=env
    )
    assert proc.returncode == 0, proc.stderr
    assert "slowest: " in proc.stdout and "late.md" in proc.stdout, proc.stdout
