"""The cost estimate before a run, through the real CLI: close to what the run then does,
written nowhere on --dry-run, asked about only in a terminal."""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from ingest.cli_runs import cli_env, gritdesk_command, run_index
from ingest.estimate_corpus import build_corpus

pytestmark = pytest.mark.slow


def dry_run(model: Path, db: Path, *args: str | os.PathLike, env: dict[str, str]) -> dict:
    proc = subprocess.run(
        gritdesk_command(
            "index", *args, "--db", db, "--model", model, "--dry-run", "--json", "--no-save-kv"
        ),
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.splitlines()[-1])
    assert out["dry_run"] is True
    return out["estimate"]


def count(db: Path, table: str) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_estimate_is_within_a_quarter_of_the_run(tmp_path: Path, tiny_model_path: Path):
    root = tmp_path / "corpus"
    total = build_corpus(root, files=90)
    db = tmp_path / "index.db"
    env = cli_env(tmp_path / "data")
    estimate = dry_run(tiny_model_path, db, root, env=env)
    assert estimate["files"] == 90 and estimate["bytes"] == total
    assert estimate["sample_files"] < 90  # the figures are scaled up from a sample
    if db.exists():  # the dry run registered no root and wrote no source
        assert count(db, "roots") == 0 and count(db, "sources") == 0

    report, _ = run_index(tiny_model_path, db, root, env=env)
    assert report["indexed"] == 90
    measured = {"chunks": report["chunks_written"], "tokens": report["tokens_embedded"]}
    for key, value in measured.items():
        assert abs(estimate[key] - value) <= 0.25 * value, (key, estimate[key], value)
    assert report["estimate"]["files"] == 90  # --json carries the estimate too
    assert estimate["seconds"] > 0 and estimate["speed_source"] == "timed sample"

    (root / "part0" / "new.md").write_text("# New\n\nA fresh note about otters.\n")
    again = dry_run(tiny_model_path, db, env=env)  # no path: every known root
    assert (again["files"], again["unchanged"]) == (1, 90)
    assert again["speed_source"] == "earlier runs"  # the run's own speed was recorded


def test_only_a_terminal_is_asked(tmp_path: Path, tiny_model_path: Path):
    root = tmp_path / "corpus"
    build_corpus(root, files=6)
    env = cli_env(tmp_path / "data", "[index]\nconfirm_above_min = 0\n")  # every run is long
    args = ["index", root, "--db", tmp_path / "tty.db", "--model", tiny_model_path]

    answer_no = _run_in_terminal(gritdesk_command(*args), env, answer="n\n")
    assert "Start it?" in answer_no and "not started" in answer_no, answer_no
    assert count(tmp_path / "tty.db", "sources") == 0

    report, _ = run_index(tiny_model_path, tmp_path / "script.db", root, env=env)  # no TTY
    assert report["indexed"] == 6


def _run_in_terminal(command: list[str], env: dict[str, str], answer: str) -> str:
    """Run `command` with a pseudo-terminal as stdin, stdout and stderr; answer its prompt."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        command, stdin=follower, stdout=follower, stderr=follower, env=env, close_fds=True
    )
    os.close(follower)
    seen, answered, deadline = b"", False, time.monotonic() + 300
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 1.0)
            if ready:
                try:
                    chunk = os.read(leader, 4096)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                seen += chunk
                if not answered and b"Start it?" in seen:
                    os.write(leader, answer.encode())
                    answered = True
            elif proc.poll() is not None:
                break
    finally:
        os.close(leader)
        proc.wait(timeout=60)
    assert proc.returncode == 0, seen.decode(errors="replace")
    return seen.decode(errors="replace")


def dry_run_text(model: Path, db: Path, root: Path, env: dict[str, str]) -> str:
    proc = subprocess.run(
        gritdesk_command("index", root, "--db", db, "--model", model, "--dry-run", "--no-save-kv"),
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_scanned_pages_and_their_ocr_cost_are_in_the_estimate(
    tmp_path: Path, tiny_model_path: Path
):
    """Three dry runs over a scanned PDF: without tesseract on PATH, with `ocr = false`
    (pages counted, OCR skipped, nothing costed) and as this machine is (one page timed,
    every page costed), then the run itself."""
    from ingest.document_formats import make_scanned_pdf

    root = tmp_path / "docs"
    root.mkdir()
    pages = [["The quarterly minutes", "were approved."], ["Budget for the", "garden party"],
             ["Minutes of the", "heliotrope committee"]]
    (root / "scan.pdf").write_bytes(make_scanned_pdf(pages))
    (root / "typed.txt").write_text("a typed note about the garden party budget\n" * 30)
    no_programs = tmp_path / "empty-bin"
    no_programs.mkdir()
    db = tmp_path / "index.db"

    env = cli_env(tmp_path / "data-a", PATH=no_programs)
    estimate = dry_run(tiny_model_path, db, root, env=env)
    assert (estimate["scanned_pages"], estimate["ocr_pages"]) == (3, 0)
    assert estimate["ocr_seconds"] == 0 and estimate["ocr_tokens"] == 0
    assert "tesseract not installed" in estimate["ocr_skipped"]
    assert "OCR skipped: 3 scanned PDF pages not read" in dry_run_text(
        tiny_model_path, db, root, env
    )

    env = cli_env(tmp_path / "data-b", "[index]\nocr = false\n")
    estimate = dry_run(tiny_model_path, db, root, env=env)
    assert (estimate["scanned_pages"], estimate["ocr_pages"], estimate["ocr_seconds"]) == (3, 0, 0)
    assert estimate["ocr_skipped"].startswith("OCR turned off")

    env = cli_env(tmp_path / "data-c")
    estimate = dry_run(tiny_model_path, db, root, env=env)
    if shutil.which("tesseract") is None:  # this machine has none: skipped as above
        assert estimate["ocr_pages"] == 0 and "tesseract" in estimate["ocr_skipped"]
        return
    assert (estimate["scanned_pages"], estimate["ocr_pages"]) == (3, 3)
    assert estimate["ocr_skipped"] is None
    per_page = estimate["ocr_seconds_per_page"]
    assert per_page > 0 and estimate["ocr_seconds"] == pytest.approx(3 * per_page)
    assert estimate["seconds"] >= estimate["ocr_seconds"]
    assert estimate["ocr_tokens"] > 0
    text = dry_run_text(tiny_model_path, db, root, env)
    assert "OCR: 3 scanned PDF pages at ~" in text and "(one timed here)" in text

    report, _ = run_index(tiny_model_path, db, root, env=env)
    assert report["indexed"] == 2, report
    measured = {"chunks": report["chunks_written"], "tokens": report["tokens_embedded"]}
    for key, value in measured.items():  # the OCR text's tokens and chunks are counted
        assert abs(estimate[key] - value) <= 0.25 * value, (key, estimate[key], value)
