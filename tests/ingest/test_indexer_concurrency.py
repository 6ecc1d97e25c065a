"""Another process can search while the indexer writes; two indexers can share a database."""

from __future__ import annotations

import json
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

HERE = Path(__file__).parent
pytestmark = pytest.mark.slow


class SlowEmbedder(BagOfWordsEmbedder):
    """Gives the reader time to interleave with many short write transactions."""

    def embed_documents(self, texts):
        time.sleep(0.01)
        return super().embed_documents(texts)


def test_a_reader_searching_in_a_loop_sees_no_errors(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    write_corpus(root, 60, seed=9)
    db_path = tmp_path / "index.db"
    db = open_database(db_path)
    policy = ChunkingPolicy(target_tokens=48, overlap_tokens=8)
    index_paths(db, SlowEmbedder(), [root / "part0"], IndexOptions(policy=policy, batch_chunks=4))

    stop = tmp_path / "stop"
    reader = subprocess.Popen(
        [sys.executable, str(HERE / "search_child.py"), "--db", str(db_path), "--stop", str(stop)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.0)  # the reader is up and searching
        index_paths(db, SlowEmbedder(), [root], IndexOptions(policy=policy, batch_chunks=4))
        for path in sorted(root.rglob("*.md"))[:15]:  # replace chunks of existing files
            path.write_text(path.read_text().replace("river", "stream") + "\nedited\n")
        for path in sorted(root.rglob("*.txt"))[:10]:  # and delete some
            path.unlink()
        index_paths(db, SlowEmbedder(), [root], IndexOptions(policy=policy, batch_chunks=4))
    finally:
        stop.touch()
        out, err = reader.communicate(timeout=60)
    assert reader.returncode == 0, err
    result = json.loads(out)
    assert result["errors"] == []
    assert result["searches"] >= 20 and result["hits"] > 0
    assert_index_consistent(db)


def test_two_indexers_on_one_database_at_once(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    write_corpus(root, 30, seed=4)
    db_path = tmp_path / "index.db"
    command = [
        sys.executable,
        str(HERE / "index_child.py"),
        "--db",
        str(db_path),
        "--embed-delay",
        "0.01",
    ]
    first = subprocess.Popen([*command, str(root)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    second = subprocess.Popen([*command, str(root)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    for proc in (first, second):
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()[-3000:]

    reference = open_database(tmp_path / "reference.db")
    policy = ChunkingPolicy(target_tokens=48, overlap_tokens=8)
    options = IndexOptions(policy=policy, batch_chunks=8)
    index_paths(reference, BagOfWordsEmbedder(), [root], options)
    db = open_database(db_path)
    assert_index_consistent(db)
    assert index_snapshot(db) == index_snapshot(reference)
