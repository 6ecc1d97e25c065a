"""Indexing with the real engine: its own tokenizer sizes the chunks, and none overflows.

llama.cpp aborts the whole process (GGML_ASSERT) when one decode gets more tokens than
it can take, so the chunker's promise (no chunk over `max_document_tokens`, counted by
the model's tokenizer) is what keeps a long file from killing an index run.
"""

from __future__ import annotations

import random
from pathlib import Path

from gritdesk.ingest.chunk import ChunkingPolicy
from gritdesk.ingest.indexer import IndexOptions, index_paths
from gritdesk.store.connection import open_database
from ingest.index_content import assert_index_consistent


def test_chunks_at_the_limit_embed_without_overflow(tiny_engine, tmp_path: Path) -> None:
    rng = random.Random(3)
    root = tmp_path / "docs"
    root.mkdir()
    pieces = ["naïve", "日本語", "emoji🙂", "x" * 40, "a-b-c-d", "0x1F", "    ", "the", "quick"]
    lines = [" ".join(rng.choice(pieces) for _ in range(rng.randint(0, 60))) for _ in range(400)]
    lines.append("".join(rng.choice(pieces) for _ in range(3000)))  # one huge line, no breaks
    (root / "long.txt").write_text("\n".join(lines))
    (root / "guide.md").write_text("# Guide\n\n" + "\n\n".join(lines[:100]))

    db = open_database(tmp_path / "index.db")
    policy = ChunkingPolicy(target_tokens=100_000)  # as big as the model allows
    report = index_paths(db, tiny_engine, [root], IndexOptions(policy=policy))
    assert report.errors == [] and report.indexed == 2

    limit = tiny_engine.max_document_tokens
    counts = []
    for text, heading in db.execute("SELECT text, heading_path FROM chunks"):
        embedded = f"{heading}\n{text}" if heading else text
        counts.append(tiny_engine.count_tokens(embedded))
    assert max(counts) <= limit
    assert max(counts) > limit * 0.8  # the test really pushed against the limit
    assert_index_consistent(db)
