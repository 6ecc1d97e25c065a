"""--watch: changes on disk reach the index without a manual run."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from gritdesk.ingest.chunk import ChunkingPolicy
from gritdesk.ingest.indexer import IndexOptions, IndexReport
from gritdesk.ingest.watch import watch_paths
from gritdesk.store.connection import open_database
from ingest.fake_embedder import BagOfWordsEmbedder


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_watch_follows_creates_edits_deletes_and_ignore_changes(tmp_path: Path) -> None:
    root = tmp_path / "notes"
    root.mkdir()
    (root / "first.md").write_text("# First\n\nalpha words\n")
    db_path = tmp_path / "index.db"
    reports: list[IndexReport] = []
    stop = threading.Event()
    watcher = threading.Thread(
        target=watch_paths,
        args=(open_database(db_path), BagOfWordsEmbedder(), [root]),
        kwargs={
            "on_report": reports.append,
            "stop_event": stop,
            "debounce_ms": 100,
            "options": IndexOptions(policy=ChunkingPolicy(target_tokens=48)),
        },
        daemon=True,
    )
    watcher.start()
    reader = open_database(db_path)

    def paths() -> set[str]:
        return {row[0] for row in reader.execute("SELECT rel_path FROM sources")}

    def text_of(rel: str) -> str:
        rows = reader.execute(
            "SELECT c.text FROM chunks c JOIN sources s ON s.id = c.source_id WHERE s.rel_path = ?",
            (rel,),
        )
        return " ".join(row[0] for row in rows)

    try:
        assert wait_for(lambda: paths() == {"first.md"})
        time.sleep(0.3)  # the watcher is set up after the first index run
        (root / "sub").mkdir()
        (root / "sub" / "second.md").write_text("# Second\n\nbeta words\n")
        assert wait_for(lambda: paths() == {"first.md", "sub/second.md"})
        (root / "first.md").write_text("# First\n\ngamma replaces alpha\n")
        assert wait_for(lambda: "gamma" in text_of("first.md"))
        (root / "sub" / "second.md").unlink()
        assert wait_for(lambda: paths() == {"first.md"})
        (root / "third.md").write_text("third\n")
        assert wait_for(lambda: "third.md" in paths())
        (root / ".gitignore").write_text("third.md\n")  # an ignore file re-scans the root
        assert wait_for(lambda: paths() == {"first.md"})
    finally:
        stop.set()
        watcher.join(timeout=10)
    assert not watcher.is_alive()
    assert len(reports) >= 5
