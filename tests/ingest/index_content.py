"""What an index holds, in a form two indexes can be compared by, and its consistency."""

from __future__ import annotations

import apsw


def index_snapshot(db: apsw.Connection) -> dict[str, list[tuple]]:
    """Everything a user could observe, without row ids or timestamps."""
    sources = db.execute(
        """
        SELECT r.path, s.rel_path, s.size, s.mtime_ns, s.ctime_ns, s.content_hash, s.chunking,
               s.status, s.reason
        FROM sources AS s JOIN roots AS r ON r.id = s.root_id
        ORDER BY r.path, s.rel_path
        """
    ).fetchall()
    chunks = db.execute(
        """
        SELECT r.path, s.rel_path, c.ordinal, c.text, c.start_line, c.end_line, c.page,
               c.heading_path, c.token_count, c.text_hash, v.embedding
        FROM chunks AS c
        JOIN sources AS s ON s.id = c.source_id
        JOIN roots AS r ON r.id = s.root_id
        JOIN chunk_vectors AS v ON v.rowid = c.id
        ORDER BY r.path, s.rel_path, c.ordinal
        """
    ).fetchall()
    return {"sources": sources, "chunks": chunks}


def assert_index_consistent(db: apsw.Connection) -> None:
    """SQLite, FTS5 and the vector tables all agree; nothing dangles."""
    assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    db.execute("INSERT INTO chunks_fts(chunks_fts, rank) VALUES ('integrity-check', 1)")
    n_chunks = db.execute("SELECT count(*) FROM chunks").fetchone()[0]
    assert db.execute("SELECT count(*) FROM chunks_fts").fetchone()[0] == n_chunks
    unsearchable = db.execute(  # contentless FTS: its own check cannot see the chunks
        "SELECT count(*) FROM chunks WHERE id NOT IN (SELECT id FROM chunks_fts_docsize)"
    ).fetchone()[0]
    assert unsearchable == 0
    has_vectors = db.execute("SELECT 1 FROM sqlite_schema WHERE name = 'chunk_vectors'").fetchone()
    if has_vectors:
        assert db.execute("SELECT count(*) FROM chunk_vectors").fetchone()[0] == n_chunks
        missing = db.execute(
            "SELECT count(*) FROM chunks WHERE id NOT IN (SELECT rowid FROM chunk_vectors)"
        ).fetchone()[0]
        assert missing == 0
    not_indexed_with_chunks = db.execute(
        """
        SELECT count(*) FROM chunks AS c JOIN sources AS s ON s.id = c.source_id
        WHERE s.status != 'indexed'
        """
    ).fetchone()[0]
    assert not_indexed_with_chunks == 0
    gaps = db.execute(
        """
        SELECT source_id FROM chunks GROUP BY source_id
        HAVING min(ordinal) != 0 OR max(ordinal) != count(*) - 1
        """
    ).fetchall()
    assert gaps == []
