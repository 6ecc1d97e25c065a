"""Keyword search's table (m009): an older index upgrades with its data, and a word in a file
name or heading ranks its chunk above the same word in another chunk's text."""

from __future__ import annotations

from pathlib import Path

import apsw

from gritdesk.store.connection import load_sqlite_vec, open_database
from gritdesk.store.fts import ranked_chunk_ids
from gritdesk.store.migrations import MIGRATIONS, schema_version
from gritdesk.store.sources import FileStamp, move_source, remove_sources
from ingest.index_content import assert_index_consistent

OLD_VERSION = 8  # the last schema whose chunks_fts had no path column


def build_version_8(path: Path) -> None:
    """Two sources (one with a path that is not UTF-8) and their chunks, as m001..m008 left them."""
    conn = apsw.Connection(str(path))
    load_sqlite_vec(conn)
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("BEGIN")
    for fn in MIGRATIONS[:OLD_VERSION]:
        fn(conn)
    conn.execute(f"PRAGMA user_version = {OLD_VERSION}")
    conn.execute("INSERT INTO roots (path) VALUES ('/old')")
    for rel_path, chunks in [
        ("guides/install.md", [("Unpack the kettle archive.", "Install > Unpack"),
                               ("Run the kettle service.", "Install > Run")]),
        (b"caf\xe9.md", [("Espresso needs a kettle too.", "")]),
    ]:  # fmt: skip
        conn.execute(
            "INSERT INTO sources (root_id, rel_path, status) VALUES (1, ?, 'indexed')", (rel_path,)
        )
        source_id = conn.last_insert_rowid()
        for ordinal, (text, heading_path) in enumerate(chunks):
            conn.execute(
                "INSERT INTO chunks (source_id, ordinal, text, heading_path, token_count, "
                "text_hash) VALUES (?, ?, ?, ?, 4, ?)",
                (source_id, ordinal, text, heading_path, f"h{source_id}{ordinal}"),
            )
    conn.execute("COMMIT")
    conn.close()


def table_rows(db: apsw.Connection) -> dict[str, list[tuple]]:
    return {
        table: db.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
        for table in ("roots", "sources", "chunks")
    }


def test_m009_upgrades_an_old_index_with_its_data_intact(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    build_version_8(path)
    old = apsw.Connection(str(path))
    before = table_rows(old)
    found_before = old.execute(
        "SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH 'kettle' ORDER BY rowid"
    ).fetchall()
    old.close()

    db = open_database(path)
    assert schema_version(db) == len(MIGRATIONS) > OLD_VERSION
    assert table_rows(db) == before  # nothing indexed was lost or re-written
    assert sorted(ranked_chunk_ids(db, ["kettle"], 10)) == [i for (i,) in found_before] == [1, 2, 3]
    assert ranked_chunk_ids(db, ["unpack"], 10) == [1]  # by heading and text
    assert sorted(ranked_chunk_ids(db, ["install"], 10)) == [1, 2]  # by heading and file path
    assert sorted(ranked_chunk_ids(db, ["guides"], 10)) == [1, 2]  # by the path alone
    assert ranked_chunk_ids(db, ["espresso"], 10) == [3]  # the non-UTF-8 path indexed as ""
    assert_index_consistent(db)

    # a renamed file is found by its new name, not its old one
    move_source(db, 1, 1, "guides/setup.md", FileStamp(1, 1, None, 1))
    assert sorted(ranked_chunk_ids(db, ["setup"], 10)) == [1, 2]
    assert ranked_chunk_ids(db, ["guides"], 10) != []
    assert ranked_chunk_ids(db, ["install"], 10) != []  # still in the heading path...
    db.execute("UPDATE chunks SET heading_path = 'Setup' WHERE source_id = 1")
    assert ranked_chunk_ids(db, ["install"], 10) == []  # ...and nowhere else
    assert_index_consistent(db)

    remove_sources(db, [1])
    assert ranked_chunk_ids(db, ["kettle"], 10) == [3]
    assert db.execute("SELECT count(*) FROM chunks_fts").fetchone()[0] == 1
    assert_index_consistent(db)
    db.close()


def write(root: Path, rel_path: str, text: str) -> None:
    (root / rel_path).parent.mkdir(parents=True, exist_ok=True)
    (root / rel_path).write_text(text, encoding="utf-8")


FILLER = (
    "The team met on Tuesday to go over the quarterly numbers, the hiring plan, the office "
    "move and the new coffee machine, then spent the rest of the hour on the roadmap."
)


def test_a_file_name_or_heading_hit_outranks_the_same_word_in_text(tmp_path: Path) -> None:
    """`deploy.md` is named for "deploy" and `handbook.md` has "Rollback" as a heading; a
    note of about the same length says "deploy" once and "rollback" twice in its text.
    Unweighted BM25 puts the note first; the column weights, the named file."""
    from gritdesk.ingest.indexer import IndexOptions, index_paths
    from ingest.fake_embedder import BagOfWordsEmbedder

    root = tmp_path / "docs"
    write(root, "notes.md", "We deploy on Fridays; a rollback of a rollback is rare, and we "
          "write down what broke.\n")  # fmt: skip
    write(root, "deploy.md", "Copy the build to the server, restart it, then watch the error "
          "log for an hour or two.\n")  # fmt: skip
    write(root, "handbook.md", "# Handbook\n\nWelcome.\n\n## Rollback\n\nRestore the last "
          "good build from the archive, start it, and tell the team in the chat what "
          "happened.\n")  # fmt: skip
    for i in range(6):  # more files, so these words are rare in the index
        write(root, f"other{i}.md", f"# Topic {i}\n\n" + FILLER)
    db = open_database(tmp_path / "index.db")
    index_paths(db, BagOfWordsEmbedder(max_document_tokens=256), [root], IndexOptions())
    name = dict(
        db.execute("SELECT c.id, s.rel_path FROM chunks c JOIN sources s ON s.id = c.source_id")
    )
    for word, named in [("deploy", "deploy.md"), ("rollback", "handbook.md")]:
        unweighted = [
            name[i]
            for (i,) in db.execute(
                "SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ? ORDER BY bm25(chunks_fts)",
                (word,),
            )
        ]
        assert unweighted == ["notes.md", named]
        assert [name[i] for i in ranked_chunk_ids(db, [word], 10)] == [named, "notes.md"]
    db.close()
