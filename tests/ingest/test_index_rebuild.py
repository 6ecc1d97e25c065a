"""`gritdesk index --rebuild` keeps the old index whole until the new one is complete.

A rebuild with another model is interrupted halfway (Ctrl-C inside the indexing run):
the live database still holds the old model's record, every chunk and vector, and still
answers a search; the next `--rebuild` goes on from the staging file, swaps the new index
in, keeps a conversation saved while the rebuild ran, and leaves no staging file behind.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gritdesk.commands.index import run_index
from gritdesk.ingest.indexer import IndexReport
from gritdesk.rag.index_service import IndexService
from gritdesk.rag.retrieve import keyword_search
from gritdesk.session import open_session
from gritdesk.settings import Settings
from gritdesk.store.connection import open_database
from gritdesk.store.conversations import append_message, create_conversation, list_conversations
from gritdesk.store.index_size import index_size
from gritdesk.store.model_record import read_model_record
from gritdesk.store.rebuild import staging_path

FILES = 12


def write_corpus(folder: Path) -> None:
    folder.mkdir()
    for i in range(FILES):
        (folder / f"note{i:02}.txt").write_text(
            f"Note {i}: the lighthouse keeper logs ship number {i * 7} at dawn.\n" * 3
        )


def index_with(
    model: Path, db: Path, paths: list[Path], *, rebuild: bool = False, save_kv: bool = False
) -> None:
    session = open_session(Settings(db=db, model=model, context=1024), rebuilding=rebuild)
    try:
        run_index(session, paths, rebuild=rebuild, save_kv=save_kv, as_json=True, yes=True)
    finally:
        session.close()


def snapshot(db_path: Path) -> tuple:
    db = open_database(db_path)
    try:
        record = read_model_record(db)
        size = index_size(db)
        vectors = db.execute("SELECT count(*) FROM chunk_vectors").fetchone()[0]
        return record.fingerprint if record else None, size.files, size.chunks, vectors
    finally:
        db.close()


def test_an_interrupted_rebuild_keeps_the_old_index_and_the_next_one_finishes(
    tmp_path: Path,
    tiny_model_path: Path,
    tiny_b_model_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    corpus, db = tmp_path / "corpus", tmp_path / "index.db"
    write_corpus(corpus)
    index_with(tiny_model_path, db, [corpus])
    before = snapshot(db)
    assert before[1:] == (FILES, FILES, FILES) and before[0] is not None

    real_run = IndexService.run
    seen_while_running: list[tuple] = []

    def interrupted(self: IndexService, paths, progress=None, total=None) -> IndexReport:
        done = 0

        def count(event) -> None:
            nonlocal done
            if progress is not None:
                progress(event)
            if event.phase == "indexing" and event.current_path:
                done += 1
                if done == FILES // 2:
                    seen_while_running.append(snapshot(db))
                    raise KeyboardInterrupt

        return real_run(self, paths, count, total)

    monkeypatch.setattr(IndexService, "run", interrupted)
    with pytest.raises(KeyboardInterrupt):
        index_with(tiny_b_model_path, db, [], rebuild=True)
    monkeypatch.setattr(IndexService, "run", real_run)

    assert seen_while_running == [before]  # the live index, while the new one was built
    assert snapshot(db) == before
    assert staging_path(db).exists()
    staged = open_database(staging_path(db))
    assert 0 < index_size(staged).files < FILES  # the interrupted run's progress is kept
    staged.close()
    live = open_database(db)
    hits = keyword_search(live, "lighthouse keeper ship", 3)
    assert hits, "the old index stops answering during a rebuild"
    conversation = create_conversation(live, "while rebuilding")
    append_message(live, conversation.id, "user", "what does the keeper log?")
    live.close()

    index_with(tiny_b_model_path, db, [], rebuild=True)

    after = snapshot(db)
    assert after[1:] == (FILES, FILES, FILES)
    assert after[0] != before[0]  # the new model's record
    assert not staging_path(db).exists()
    live = open_database(db)
    assert [c.title for c in list_conversations(live)] == ["while rebuilding"]
    live.close()


def test_a_rebuild_reports_the_kv_its_run_saved(
    tmp_path: Path, tiny_model_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """After the swap the report's KV counts are the rebuild run's own (they once came from
    a second, unused IndexService and read 0), and the new store holds those blobs."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("GRITDESK_CACHE_DIR", str(cache))
    corpus, db = tmp_path / "corpus", tmp_path / "index.db"
    write_corpus(corpus)
    saved = []
    for paths, rebuild in (([corpus], False), ([], True)):
        index_with(tiny_model_path, db, paths, rebuild=rebuild, save_kv=True)
        saved.append(json.loads(capsys.readouterr().out.splitlines()[-1])["kv_saved"])
    assert saved == [FILES, FILES]
    assert len(list(cache.rglob("*.gkv"))) == FILES
