"""Incremental indexing: whatever happens to the files, the index equals a clean rebuild."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import apsw
import pytest

from gritdesk.ingest.chunk import ChunkingPolicy
from gritdesk.ingest.indexer import (
    IndexOptions,
    IndexProgress,
    IndexReport,
    index_known_roots,
    index_paths,
)
from gritdesk.ingest.parser_process import ParseLimits
from gritdesk.store.connection import open_database
from gritdesk.store.model_record import ModelMismatchError, clear_index, read_model_record
from ingest.fake_embedder import BagOfWordsEmbedder
from ingest.fixture_files import write_corpus
from ingest.index_content import assert_index_consistent, index_snapshot

POLICY = ChunkingPolicy(target_tokens=48, overlap_tokens=8)


def run(
    db: apsw.Connection,
    paths: list[Path],
    embedder: BagOfWordsEmbedder | None = None,
    limits: ParseLimits | None = None,
    **kw,
) -> IndexReport:
    options = IndexOptions(policy=POLICY, batch_chunks=8, limits=limits or ParseLimits())
    return index_paths(db, embedder or BagOfWordsEmbedder(), paths, options, **kw)


def clean_rebuild(tmp_path: Path, root: Path, name: str = "clean.db") -> apsw.Connection:
    db = open_database(tmp_path / name)
    run(db, [root])
    return db


def bump_mtime(path: Path, seconds: int = 5) -> None:
    info = path.stat()
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + seconds * 1_000_000_000))


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    write_corpus(root, 24, seed=1)
    return root


def test_first_run_then_unchanged_run_writes_nothing(tmp_path: Path, corpus: Path) -> None:
    db = open_database(tmp_path / "index.db")
    first = run(db, [corpus])
    assert first.indexed == 26 and first.unchanged == 0 and first.skipped == []
    assert first.chunks_written > 26
    assert_index_consistent(db)

    embedder = BagOfWordsEmbedder()
    changes_before = db.total_changes()
    second = run(db, [corpus], embedder)
    assert (second.indexed, second.unchanged, second.removed) == (0, 26, 0)
    assert embedder.document_calls == []
    assert db.total_changes() == changes_before  # an unchanged tree costs no write at all


def test_touch_modify_delete_rename_add_equals_clean_rebuild(tmp_path: Path, corpus: Path) -> None:
    db = open_database(tmp_path / "index.db")
    run(db, [corpus])
    doomed = (corpus / "part2" / "deep", corpus / "part1" / "deep")  # removed, ignored below
    files = sorted(
        p for p in corpus.rglob("*") if p.is_file() and not any(d in p.parents for d in doomed)
    )
    md = [p for p in files if p.suffix == ".md"]
    txt = [p for p in files if p.suffix == ".txt"]
    n_doomed = sum(1 for d in doomed for p in d.rglob("*") if p.is_file())

    bump_mtime(md[0])  # touched: same bytes
    md[1].write_text(md[1].read_text().replace("river", "RIVERBANK") + "\nAn added closing line.\n")
    txt[0].unlink()  # deleted
    md[2].rename(md[2].with_name("renamed_note.md"))  # renamed, same bytes
    txt[1].rename(corpus / "part3" / "moved_and_changed.txt")  # renamed and modified
    (corpus / "part3" / "moved_and_changed.txt").write_text("completely new words now\n")
    (corpus / "brand_new" / "nested").mkdir(parents=True)
    (corpus / "brand_new" / "nested" / "fresh.md").write_text("# Fresh\n\nA fresh file appears.\n")
    shutil.rmtree(corpus / "part2" / "deep")  # a whole folder disappears
    (corpus / ".gitignore").write_text("part1/deep/\n")  # and another becomes ignored
    txt[2].write_bytes(b"\x00\x01binary now")  # indexed before, binary now

    embedder = BagOfWordsEmbedder()
    report = run(db, [corpus], embedder)
    assert report.renamed == 1
    assert report.removed == 1 + 1 + n_doomed  # deleted, renamed-and-changed's old name, folders
    assert report.indexed == 3  # modified, renamed-and-changed, fresh
    assert [s.reason for s in report.skipped] == ["binary file (contains NUL bytes)"]
    # touched counts as unchanged; not: deleted, 2 renamed, the folders, modified, binary
    assert report.unchanged == 26 - 1 - 2 - n_doomed - 1 - 1
    assert_index_consistent(db)
    assert index_snapshot(db) == index_snapshot(clean_rebuild(tmp_path, corpus))
    assert sum(embedder.document_calls) == report.chunks_embedded  # touched, renamed: no embedding


def test_modified_file_reuses_embeddings_of_unchanged_sections(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    root.mkdir()
    sections = [f"## Part {i}\n\n" + " ".join(f"word{i}x{j}" for j in range(30)) for i in range(6)]
    (root / "long.md").write_text("# Long\n\n" + "\n\n".join(sections) + "\n")
    db = open_database(tmp_path / "index.db")
    first = run(db, [root])
    sections[3] = "## Part 3\n\nthis section was rewritten entirely"
    (root / "long.md").write_text("# Long\n\n" + "\n\n".join(sections) + "\n")
    second = run(db, [root])
    assert second.indexed == 1
    assert 0 < second.chunks_embedded < first.chunks_embedded
    assert index_snapshot(db) == index_snapshot(clean_rebuild(tmp_path, root))


def test_indexing_a_single_file_or_a_vanished_path(tmp_path: Path, corpus: Path) -> None:
    db = open_database(tmp_path / "index.db")
    run(db, [corpus])
    target = next(corpus.rglob("*.md"))
    target.write_text("# Changed\n\nonly this file is looked at\n")
    other = next(p for p in corpus.rglob("*.txt"))
    other.write_text("changed too, but not part of this run\n")
    report = run(db, [target])
    assert (report.indexed, report.unchanged, report.removed) == (1, 0, 0)
    target.unlink()
    report = run(db, [target])  # a path that vanished under a known root: removed
    assert report.removed == 1
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        run(db, [tmp_path / "never-existed"])
    run(db, [corpus])
    assert index_snapshot(db) == index_snapshot(clean_rebuild(tmp_path, corpus))


def test_several_roots_in_one_database(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    write_corpus(a, 4, seed=2)
    write_corpus(b, 4, seed=3)
    db = open_database(tmp_path / "index.db")
    run(db, [a])
    run(db, [b])
    report = index_known_roots(db, BagOfWordsEmbedder(), IndexOptions(policy=POLICY))
    assert report.unchanged == 12 and sorted(report.roots) == [str(a.resolve()), str(b.resolve())]
    paths = {row[0] for row in db.execute("SELECT DISTINCT r.path FROM roots r")}
    assert paths == {str(a.resolve()), str(b.resolve())}


def test_another_model_is_refused_and_rebuild_switches(tmp_path: Path, corpus: Path) -> None:
    db = open_database(tmp_path / "index.db")
    run(db, [corpus])
    other = BagOfWordsEmbedder(fingerprint="other-model")
    with pytest.raises(ModelMismatchError) as error:
        run(db, [corpus], other)
    message = str(error.value)  # names both models (fingerprints shortened to 16 characters)
    assert "bag-of-words-v1-" in message and "other-model-64" in message
    assert "--rebuild" in str(error.value)

    clear_index(db)
    report = index_known_roots(db, other, IndexOptions(policy=POLICY))
    assert report.indexed == 26
    assert read_model_record(db).fingerprint == "other-model-64"
    assert_index_consistent(db)


def test_progress_reports_files_chunks_and_tokens(tmp_path: Path, corpus: Path) -> None:
    events: list[IndexProgress] = []
    db = open_database(tmp_path / "index.db")
    report = run(db, [corpus], progress=events.append)
    assert events[0].phase == "scanning" and events[0].files_total == 26
    assert events[-1].phase == "done"
    indexing = [e for e in events if e.phase == "indexing"]
    assert [e.files_done for e in indexing if e.current_path] == sorted(
        e.files_done for e in indexing if e.current_path
    )
    assert indexing[-1].files_done == 26
    assert events[-1].tokens_done == report.tokens_embedded > 0
    assert events[-1].bytes_done == events[-1].bytes_total
    assert events[-1].eta_s == 0.0


def test_a_failing_embedding_marks_only_its_file(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    root.mkdir()
    (root / "good.txt").write_text("plain good words\n")
    (root / "poison.txt").write_text("this one has the poison word\n")
    (root / "fine.txt").write_text("more fine words\n")

    class PoisonEmbedder(BagOfWordsEmbedder):
        def embed_documents(self, texts):
            if any("poison" in t for t in texts):
                raise RuntimeError("decode failed")
            return super().embed_documents(texts)

    db = open_database(tmp_path / "index.db")
    report = run(db, [root], PoisonEmbedder())
    assert report.indexed == 2
    assert [(Path(s.path).name, s.status) for s in report.errors] == [("poison.txt", "error")]
    assert "decode failed" in report.errors[0].reason
    report = run(db, [root])  # errors are retried on the next run
    assert report.indexed == 1 and report.errors == []


def test_size_limit_and_database_inside_the_root(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    root.mkdir()
    (root / "big.txt").write_text("word " * 50_000)
    (root / "small.txt").write_text("small file\n")
    db = open_database(root / "index.db")  # the index lives in the folder it indexes
    report = run(db, [root], limits=ParseLimits(file_bytes=100_000))
    assert [(Path(s.path).name, s.reason) for s in report.skipped] == [
        ("big.txt", "larger than the 0.0954 MiB limit (0.238 MiB)")
    ]
    assert report.indexed == 1
    assert db.execute("SELECT rel_path FROM sources WHERE status = 'indexed'").fetchall() == [
        ("small.txt",)
    ]


def test_same_size_edit_with_the_old_mtime_is_still_seen(tmp_path: Path) -> None:
    """rsync -t, cp -p, tar x keep the mtime; the inode change time still moves."""
    root = tmp_path / "docs"
    root.mkdir()
    note = root / "note.txt"
    note.write_text("alpha beta gamma\n")
    db = open_database(tmp_path / "index.db")
    run(db, [root])
    info = note.stat()
    note.write_text("delta beta gamma\n")  # same size
    os.utime(note, ns=(info.st_atime_ns, info.st_mtime_ns))  # mtime put back
    report = run(db, [root])
    assert report.indexed == 1
    assert "delta" in db.execute("SELECT text FROM chunks").fetchone()[0]


def test_new_chunking_settings_rechunk_and_reuse_embeddings(tmp_path: Path, corpus: Path) -> None:
    db = open_database(tmp_path / "index.db")
    run(db, [corpus])
    wider = ChunkingPolicy(target_tokens=60, overlap_tokens=8)
    embedder = BagOfWordsEmbedder()
    report = index_paths(db, embedder, [corpus], IndexOptions(policy=wider))
    assert report.indexed == 26  # every file re-chunked ...
    assert report.chunks_embedded < report.chunks_written  # ... unchanged chunk texts reused
    clean = open_database(tmp_path / "clean.db")
    index_paths(clean, BagOfWordsEmbedder(), [corpus], IndexOptions(policy=wider))
    assert index_snapshot(db) == index_snapshot(clean)
