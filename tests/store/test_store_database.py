"""The database file: settings, migrations, model record, sources and their chunks."""

from __future__ import annotations

from pathlib import Path

import apsw
import numpy as np
import pytest

from gritdesk.store import migrations
from gritdesk.store.connection import DatabaseOpenError, open_database, write_transaction
from gritdesk.store.model_record import (
    EmptyIndexError,
    ModelMismatchError,
    ModelRecord,
    bind_model,
    check_model,
    clear_index,
    read_model_record,
)
from gritdesk.store.sources import (
    ChunkRow,
    FileStamp,
    add_root,
    list_roots,
    move_source,
    record_unindexed_source,
    remove_sources,
    replace_source_chunks,
    root_containing,
    sources_in_scope,
)
from gritdesk.store.vectors import vector_table_exists

DIM = 16
MODEL = ModelRecord("f" * 64, "/models/a.gguf", DIM, "gritlm")


def unit_rows(n: int, seed: int = 0) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def rows_for(texts: list[str]) -> list[ChunkRow]:
    return [
        ChunkRow(i, text, i + 1, i + 1, None, "H", len(text.split()), f"hash-{text}")
        for i, text in enumerate(texts)
    ]


def counts(db: apsw.Connection) -> dict[str, int]:
    tables = ["sources", "chunks", "chunk_vectors"]
    result = {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}
    result["fts"] = db.execute("SELECT count(*) FROM chunks_fts").fetchone()[0]
    return result


def assert_consistent(db: apsw.Connection) -> None:
    assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    db.execute("INSERT INTO chunks_fts(chunks_fts, rank) VALUES ('integrity-check', 1)")
    c = counts(db)
    assert c["chunks"] == c["chunk_vectors"]
    orphans = db.execute(
        "SELECT count(*) FROM chunk_vectors WHERE rowid NOT IN (SELECT id FROM chunks)"
    ).fetchone()[0]
    assert orphans == 0


@pytest.fixture
def db(tmp_path: Path) -> apsw.Connection:
    conn = open_database(tmp_path / "sub" / "index.db")
    bind_model(conn, MODEL)
    return conn


def test_open_sets_wal_foreign_keys_busy_timeout_and_schema(tmp_path: Path) -> None:
    conn = open_database(tmp_path / "a" / "b" / "index.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 10_000
    assert conn.execute("PRAGMA page_size").fetchone()[0] == 16_384
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(migrations.MIGRATIONS)
    assert conn.execute("SELECT vec_version()").fetchone()[0].startswith("v0.1")
    conn.close()
    again = open_database(tmp_path / "a" / "b" / "index.db")  # reopening changes nothing
    assert again.execute("PRAGMA user_version").fetchone()[0] == len(migrations.MIGRATIONS)


def test_a_file_that_is_not_a_database_is_named_in_the_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("this is not SQLite\n" * 100)
    with pytest.raises(DatabaseOpenError, match=f"cannot open the index database {path}"):
        open_database(path)


def test_a_later_migration_upgrades_an_existing_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "index.db"
    open_database(path).close()

    def m999_test_table(conn: apsw.Connection) -> None:
        conn.execute("CREATE TABLE later (x)")

    monkeypatch.setattr(migrations, "MIGRATIONS", [*migrations.MIGRATIONS, m999_test_table])
    conn = open_database(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(migrations.MIGRATIONS)
    assert conn.execute("SELECT count(*) FROM later").fetchone()[0] == 0


def test_a_database_from_a_newer_gritdesk_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "index.db"
    conn = open_database(path)
    conn.execute(f"PRAGMA user_version = {len(migrations.MIGRATIONS) + 5}")
    conn.close()
    with pytest.raises(RuntimeError, match="newer than this gritdesk"):
        open_database(path)


def test_model_is_recorded_once_and_another_is_refused(db: apsw.Connection) -> None:
    assert read_model_record(db) == MODEL
    assert vector_table_exists(db)
    assert bind_model(db, MODEL) == MODEL
    other = ModelRecord("0" * 64, "/models/b.gguf", DIM, "gritlm")
    with pytest.raises(ModelMismatchError) as error:
        bind_model(db, other)
    message = str(error.value)
    for expected in ["/models/a.gguf", "/models/b.gguf", "ffffffffffffffff", "0000000000000000"]:
        assert expected in message
    assert "gritdesk index --rebuild" in message
    with pytest.raises(ModelMismatchError):
        check_model(db, other)
    assert check_model(db, MODEL) == MODEL


def test_check_model_on_an_empty_index(tmp_path: Path) -> None:
    with pytest.raises(EmptyIndexError, match="gritdesk index"):
        check_model(open_database(tmp_path / "i.db"), MODEL)


def test_replacing_a_sources_chunks_leaves_no_orphans(db: apsw.Connection) -> None:
    root = add_root(db, "/data/notes")
    stamp = FileStamp(10, 1, "h1")
    replace_source_chunks(
        db, root.id, "a.md", stamp, rows_for(["one", "two", "three"]), unit_rows(3), DIM
    )
    replace_source_chunks(db, root.id, "b.md", stamp, rows_for(["other"]), unit_rows(1, 1), DIM)
    assert counts(db) == {
        "sources": 2,
        "chunks": 4,
        "chunk_vectors": 4,
        "fts": 4,
    }
    source_id = replace_source_chunks(
        db, root.id, "a.md", FileStamp(11, 2, "h2"), rows_for(["four"]), unit_rows(1, 2), DIM
    )
    assert counts(db) == {
        "sources": 2,
        "chunks": 2,
        "chunk_vectors": 2,
        "fts": 2,
    }
    assert db.execute("SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH 'two'").fetchall() == []
    assert (
        len(db.execute("SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH 'four'").fetchall())
        == 1
    )
    assert_consistent(db)

    remove_sources(db, [source_id])
    assert counts(db)["chunks"] == 1
    assert_consistent(db)


def test_a_failed_write_changes_nothing(db: apsw.Connection) -> None:
    root = add_root(db, "/data/notes")
    replace_source_chunks(
        db, root.id, "a.md", FileStamp(1, 1, "h"), rows_for(["kept"]), unit_rows(1), DIM
    )
    before = counts(db)
    bad_vectors = unit_rows(2)
    bad_vectors[1, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        replace_source_chunks(
            db, root.id, "a.md", FileStamp(2, 2, "h2"), rows_for(["new", "newer"]), bad_vectors, DIM
        )
    assert counts(db) == before
    assert sources_in_scope(db, root.id)["a.md"].content_hash == "h"
    assert db.get_autocommit()


def test_skipped_source_drops_old_chunks(db: apsw.Connection) -> None:
    root = add_root(db, "/data")
    replace_source_chunks(
        db, root.id, "x.txt", FileStamp(1, 1, "h"), rows_for(["a b"]), unit_rows(1), DIM
    )
    record_unindexed_source(db, root.id, "x.txt", FileStamp(2, 2, "h2"), "skipped", "binary file")
    state = sources_in_scope(db, root.id)["x.txt"]
    assert (state.status, state.reason) == ("skipped", "binary file")
    assert counts(db)["chunks"] == 0
    assert_consistent(db)


def test_moving_a_source_keeps_its_chunks(db: apsw.Connection) -> None:
    root = add_root(db, "/data")
    source_id = replace_source_chunks(
        db, root.id, "old/name.md", FileStamp(1, 1, "h"), rows_for(["kept text"]), unit_rows(1), DIM
    )
    move_source(db, source_id, root.id, "new/name.md", FileStamp(1, 5, "h"))
    assert list(sources_in_scope(db, root.id)) == ["new/name.md"]
    assert counts(db)["chunks"] == 1


def test_scopes_and_nested_roots(db: apsw.Connection) -> None:
    inner = add_root(db, "/data/notes/work")
    for rel in ["a.md", "deep/b.md", "deeper/c.md"]:
        replace_source_chunks(
            db, inner.id, rel, FileStamp(1, 1, rel), rows_for([rel]), unit_rows(1), DIM
        )
    assert set(sources_in_scope(db, inner.id, "deep")) == {"deep/b.md"}
    assert set(sources_in_scope(db, inner.id, "deep/b.md")) == {"deep/b.md"}
    assert root_containing(db, "/data/notes/work/deep/b.md") == inner
    assert root_containing(db, "/data/notes/workshop") is None

    outer = add_root(db, "/data/notes")  # adopts the inner root's sources
    assert [r.path for r in list_roots(db)] == ["/data/notes"]
    assert set(sources_in_scope(db, outer.id)) == {
        "work/a.md",
        "work/deep/b.md",
        "work/deeper/c.md",
    }
    assert counts(db)["chunks"] == 3


def test_clear_index_forgets_model_and_content_but_keeps_roots(db: apsw.Connection) -> None:
    root = add_root(db, "/data")
    replace_source_chunks(
        db, root.id, "a", FileStamp(1, 1, "h"), rows_for(["x y"]), unit_rows(1), DIM
    )
    clear_index(db)
    assert read_model_record(db) is None
    assert not vector_table_exists(db)
    assert db.execute("SELECT count(*) FROM chunks").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM chunks_fts").fetchone()[0] == 0
    assert list_roots(db) == [root]
    bind_model(db, ModelRecord("1" * 64, "/models/c.gguf", 32, "gritlm"))  # a new dimension
    assert read_model_record(db).embedding_dim == 32


def test_a_reader_is_not_blocked_by_an_open_write_transaction(tmp_path: Path) -> None:
    path = tmp_path / "index.db"
    writer = open_database(path)
    bind_model(writer, MODEL)
    reader = open_database(path)
    root = add_root(writer, "/data")
    with write_transaction(writer):
        writer.execute(
            "INSERT INTO sources (root_id, rel_path, status) VALUES (?, 'pending', 'indexed')",
            (root.id,),
        )
        assert reader.execute("SELECT count(*) FROM sources").fetchone()[0] == 0
    assert reader.execute("SELECT count(*) FROM sources").fetchone()[0] == 1
