"""kill -9 at any point: the database stays consistent and a rerun finishes the job.

The child indexer kills itself with SIGKILL from SQLite's update hook (in the middle
of a file's write transaction, after the Nth row change) or commit hook (as the Nth
transaction commits), and, for good measure, from outside at a random moment.
"""

from __future__ import annotations

import json
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gritdesk.ingest.chunk import ChunkingPolicy
from gritdesk.ingest.indexer import IndexOptions, index_paths
from gritdesk.store.connection import open_database
from ingest.fake_embedder import BagOfWordsEmbedder
from ingest.fixture_files import write_corpus
from ingest.index_content import assert_index_consistent, index_snapshot

CHILD = Path(__file__).with_name("index_child.py")
pytestmark = pytest.mark.slow


def child(db: Path, root: Path, *options: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(CHILD), "--db", str(db), *options, str(root)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def reference_snapshot(tmp_path: Path, root: Path, name: str) -> dict:
    db = open_database(tmp_path / name)
    index_paths(  # the same settings as index_child.py's defaults
        db,
        BagOfWordsEmbedder(max_document_tokens=64),
        [root],
        IndexOptions(policy=ChunkingPolicy(target_tokens=48, overlap_tokens=8), batch_chunks=8),
    )
    return index_snapshot(db)


def counted_run(tmp_path: Path, root: Path, db: Path | None = None) -> dict:
    if db is None:
        db = tmp_path / "count.db"
    proc = child(db, root, "--count")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def kill_points(total: int) -> list[int]:
    return sorted(
        {1, 2, 3, 7, total // 10, total // 4, total // 2, 3 * total // 4, total - 1} - {0}
    )


def assert_killed(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, proc.stderr[-2000:])


def finish_and_compare(db_path: Path, root: Path, expected: dict, twice: bool = False) -> None:
    proc = child(db_path, root)
    assert proc.returncode == 0, proc.stderr
    db = open_database(db_path)
    assert_index_consistent(db)
    assert index_snapshot(db) == expected
    if twice:  # and the run after that finds nothing left to do
        second = child(db_path, root)
        assert json.loads(second.stdout)["indexed"] == 0


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    write_corpus(root, 16, seed=5)
    return root


def test_kill_during_first_index_then_rerun(tmp_path: Path, corpus: Path) -> None:
    expected = reference_snapshot(tmp_path, corpus, "reference.db")
    counts = counted_run(tmp_path, corpus)
    assert counts["row_changes"] > 100 and counts["commits"] > 18

    for point in kill_points(counts["row_changes"]):
        db_path = tmp_path / f"row{point}.db"
        assert_killed(child(db_path, corpus, "--kill-at-row-change", str(point)))
        finish_and_compare(db_path, corpus, expected)

    commits = counts["commits"]
    for point in sorted({1, 2, commits // 2, commits - 1}):
        db_path = tmp_path / f"commit{point}.db"
        assert_killed(child(db_path, corpus, "--kill-at-commit", str(point)))
        finish_and_compare(db_path, corpus, expected)


def test_repeated_kills_on_one_database_converge(tmp_path: Path, corpus: Path) -> None:
    expected = reference_snapshot(tmp_path, corpus, "reference.db")
    db_path = tmp_path / "index.db"
    for point in [5, 40, 90, 150, 230]:  # every rerun gets a little further, then dies again
        proc = child(db_path, corpus, "--kill-at-row-change", str(point))
        assert proc.returncode in (0, -signal.SIGKILL), proc.stderr
        assert_index_consistent(open_database(db_path))
    finish_and_compare(db_path, corpus, expected, twice=True)


def test_kill_during_an_update_of_a_changed_tree(tmp_path: Path, corpus: Path) -> None:
    db_seed = tmp_path / "seed.db"
    assert child(db_seed, corpus).returncode == 0
    files = sorted(p for p in corpus.rglob("*.md"))
    files[0].write_text(files[0].read_text() + "\nA new closing paragraph.\n")
    files[1].unlink()
    files[2].rename(files[2].with_name("renamed.md"))
    (corpus / "new.md").write_text("# New\n\nfresh content for the update\n")
    expected = reference_snapshot(tmp_path, corpus, "reference.db")

    shutil.copy(db_seed, tmp_path / "counted.db")
    counts = counted_run(tmp_path, corpus, tmp_path / "counted.db")
    assert counts["row_changes"] > 10
    for point in kill_points(counts["row_changes"]):
        db_path = tmp_path / f"update{point}.db"
        shutil.copy(db_seed, db_path)
        assert_killed(child(db_path, corpus, "--kill-at-row-change", str(point)))
        finish_and_compare(db_path, corpus, expected)


def test_kill_from_outside_at_random_moments(tmp_path: Path, corpus: Path) -> None:
    expected = reference_snapshot(tmp_path, corpus, "reference.db")
    rng = random.Random(11)
    db_path = tmp_path / "index.db"
    for _ in range(4):
        proc = subprocess.Popen(
            [
                sys.executable,
                str(CHILD),
                "--db",
                str(db_path),
                "--embed-delay",
                "0.02",
                str(corpus),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        time.sleep(rng.uniform(0.3, 1.5))
        proc.kill()
        proc.wait(timeout=30)
        assert_index_consistent(open_database(db_path))
    finish_and_compare(db_path, corpus, expected)
