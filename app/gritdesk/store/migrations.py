"""The database schema as an ordered list of small migrations.

`PRAGMA user_version` holds how many have been applied; `migrate` applies the rest in
order, each in its own transaction together with the version bump, so any older
database upgrades itself and the history reads top to bottom. Append new migrations
at the end; never edit or reorder one that has shipped.

The sqlite-vec table is created outside them (only m007 rebuilds an existing one): its
columns need the embedding dimension, which is known only when an index records its
model (see `model_record.bind_model`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import apsw
import numpy as np

from gritdesk.store.vectors import create_vector_table, drop_vector_table, insert_quantized

Migration = Callable[[apsw.Connection], None]
MIGRATIONS: list[Migration] = []


def migration(fn: Migration) -> Migration:
    MIGRATIONS.append(fn)
    return fn


def schema_version(conn: apsw.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


def migrate(conn: apsw.Connection) -> None:
    """Apply every migration not yet applied. Safe when several processes open at once."""
    if schema_version(conn) == len(MIGRATIONS):
        return
    applied = False
    for index, fn in enumerate(MIGRATIONS):
        conn.execute("BEGIN IMMEDIATE")
        try:
            if schema_version(conn) == index:  # re-read under the write lock
                fn(conn)
                conn.execute(f"PRAGMA user_version = {index + 1}")
                applied = True
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    if applied:
        reclaim_free_pages(conn)
    version = schema_version(conn)
    if version > len(MIGRATIONS):
        raise RuntimeError(
            f"index database schema version {version} is newer than this gritdesk "
            f"({len(MIGRATIONS)}); upgrade gritdesk"
        )


RECLAIM_MIN_BYTES = 64 * 1024 * 1024


def reclaim_free_pages(conn: apsw.Connection) -> None:
    """VACUUM when a migration left over half the file free (m007 drops the float32
    rows: 1.9 GB of a 2.4 GB file at 100k x 4096-d), so the upgrade shrinks the file.

    Skipped when another process holds the database busy: the free pages are then
    reused by the next chunks indexed instead.
    """
    free_pages = conn.execute("PRAGMA freelist_count").fetchone()[0]
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    if free_pages * 2 > pages and free_pages * page_size >= RECLAIM_MIN_BYTES:
        with contextlib.suppress(apsw.BusyError):
            conn.execute("VACUUM")


@migration
def m001_index_tables(conn: apsw.Connection) -> None:
    conn.execute(
        """
        CREATE TABLE meta (
            key   TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );

        CREATE TABLE roots (
            id       INTEGER PRIMARY KEY,
            path     TEXT NOT NULL UNIQUE,   -- absolute, symlinks resolved
            added_at REAL NOT NULL DEFAULT (unixepoch('subsec'))
        );

        CREATE TABLE sources (
            id           INTEGER PRIMARY KEY,
            root_id      INTEGER NOT NULL REFERENCES roots(id) ON DELETE CASCADE,
            rel_path     TEXT NOT NULL,      -- POSIX separators, relative to the root
            size         INTEGER,
            mtime_ns     INTEGER,
            ctime_ns     INTEGER,            -- changes with content even when mtime is kept
            content_hash TEXT,               -- sha256 of the file bytes
            chunking     TEXT NOT NULL DEFAULT '',  -- parse/chunk settings used (see chunk.py)
            status       TEXT NOT NULL CHECK (status IN ('indexed', 'skipped', 'error')),
            reason       TEXT,               -- why skipped / what failed
            indexed_at   REAL NOT NULL DEFAULT (unixepoch('subsec')),
            UNIQUE (root_id, rel_path)
        );
        CREATE INDEX sources_content_hash ON sources(content_hash);

        CREATE TABLE chunks (
            id           INTEGER PRIMARY KEY,
            source_id    INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
            ordinal      INTEGER NOT NULL,   -- 0-based position in the source
            text         TEXT NOT NULL,
            start_line   INTEGER,            -- 1-based, inclusive; NULL: format has no lines
            end_line     INTEGER,
            page         INTEGER,            -- 1-based PDF page
            heading_path TEXT NOT NULL DEFAULT '',  -- "Title > Section > Subsection"
            token_count  INTEGER NOT NULL,
            text_hash    TEXT NOT NULL,      -- sha256 of the text that was embedded
            UNIQUE (source_id, ordinal)
        );
        CREATE INDEX chunks_text_hash ON chunks(text_hash);

        -- Exact float32 vectors for rescoring the quantized first pass.
        CREATE TABLE chunk_embeddings (
            chunk_id  INTEGER PRIMARY KEY REFERENCES chunks(id) ON DELETE CASCADE,
            embedding BLOB NOT NULL          -- little-endian float32, L2-normalised
        );

        CREATE VIRTUAL TABLE chunks_fts USING fts5(
            text, heading_path,
            content = 'chunks', content_rowid = 'id',
            tokenize = 'porter unicode61 remove_diacritics 2'
        );
        CREATE TRIGGER chunks_fts_insert AFTER INSERT ON chunks BEGIN
            INSERT INTO chunks_fts(rowid, text, heading_path)
            VALUES (new.id, new.text, new.heading_path);
        END;
        CREATE TRIGGER chunks_fts_delete AFTER DELETE ON chunks BEGIN
            INSERT INTO chunks_fts(chunks_fts, rowid, text, heading_path)
            VALUES ('delete', old.id, old.text, old.heading_path);
        END;
        CREATE TRIGGER chunks_fts_update AFTER UPDATE OF text, heading_path ON chunks BEGIN
            INSERT INTO chunks_fts(chunks_fts, rowid, text, heading_path)
            VALUES ('delete', old.id, old.text, old.heading_path);
            INSERT INTO chunks_fts(rowid, text, heading_path)
            VALUES (new.id, new.text, new.heading_path);
        END;
        """
    )


@migration
def m002_kv_blobs(conn: apsw.Connection) -> None:
    """Saved KV caches of chunks (store/kv_cache.py): files on disk, their index here."""
    conn.execute(
        """
        CREATE TABLE kv_blobs (
            id           INTEGER PRIMARY KEY,
            text_hash    TEXT NOT NULL,         -- chunks.text_hash of the text the KV holds
            signature    TEXT NOT NULL,         -- sha256 of the engine's KV signature JSON
            kv_type      TEXT NOT NULL,         -- f16, q8_0, q4_0: for per-type statistics
            file         TEXT NOT NULL UNIQUE,  -- relative to the KV cache directory
            bytes        INTEGER NOT NULL,
            n_tokens     INTEGER NOT NULL,
            created_at   REAL NOT NULL,
            last_used_at REAL NOT NULL,
            UNIQUE (text_hash, signature)
        );
        CREATE INDEX kv_blobs_lru ON kv_blobs(last_used_at);
        """
    )


@migration
def m003_conversations(conn: apsw.Connection) -> None:
    """Chat history (store/conversations.py): `gritdesk chat` lists, resumes and exports these."""
    conn.execute(
        """
        CREATE TABLE conversations (
            id         INTEGER PRIMARY KEY,
            title      TEXT NOT NULL,
            created_at REAL NOT NULL DEFAULT (unixepoch('subsec')),
            updated_at REAL NOT NULL DEFAULT (unixepoch('subsec'))
        );
        CREATE INDEX conversations_recent ON conversations(updated_at);

        CREATE TABLE messages (
            id              INTEGER PRIMARY KEY,
            conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            role            TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
            content         TEXT NOT NULL,
            sources         TEXT NOT NULL DEFAULT '[]',  -- JSON: the chunks an answer used
            finish_reason   TEXT,                        -- stop, length, context, cancelled, error
            created_at      REAL NOT NULL DEFAULT (unixepoch('subsec'))
        );
        CREATE INDEX messages_by_conversation ON messages(conversation_id, id);
        """
    )


@migration
def m004_store_id(conn: apsw.Connection) -> None:
    """A random id of this database, kept in the file: its KV cache folder is named by it
    (store/kv_cache.py `kv_folder`), so moving the file or reaching it through another
    mount path finds the same blobs."""
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('store_id', lower(hex(randomblob(16)))) "
        "ON CONFLICT (key) DO NOTHING"
    )


@migration
def m005_parse_attempts(conn: apsw.Connection) -> None:
    """Parses under way (ingest/indexer.py): a row left behind is a parse that never ended
    (the user stopped gritdesk on it), so the unchanged file is skipped, not retried."""
    conn.execute(
        """
        CREATE TABLE parse_attempts (
            root_id  INTEGER NOT NULL REFERENCES roots(id) ON DELETE CASCADE,
            rel_path TEXT NOT NULL,     -- as sources.rel_path (a BLOB when not UTF-8)
            size     INTEGER,
            mtime_ns INTEGER,
            ctime_ns INTEGER,
            started_at REAL NOT NULL DEFAULT (unixepoch('subsec')),
            PRIMARY KEY (root_id, rel_path)
        );
        """
    )


@migration
def m006_chunk_locator(conn: apsw.Connection) -> None:
    """Where a chunk is in formats cited by neither lines nor PDF pages: "slide 3",
    "Budget!A1:D20", "message 2" (ingest/document.py `Block.locator`)."""
    conn.execute("ALTER TABLE chunks ADD COLUMN locator TEXT")


FLOAT32_BATCH = 1024  # m007: float32 rows converted at a time (16 MiB at 4096-d)


@migration
def m007_int8_vectors(conn: apsw.Connection) -> None:
    """Rescore from int8 instead of float32 (store/vectors.py): 4x less disk for vectors.

    The float32 rows of `chunk_embeddings` become the `embedding int8` column of a new
    `chunk_vectors` (vec0 cannot add a column, so the table is made anew, bits
    recomputed from the same floats), then `chunk_embeddings` is dropped. Rows are read
    and written FLOAT32_BATCH at a time, so memory stays bounded at any index size; it
    all runs in `migrate`'s transaction, so an interrupted run leaves the float32 index
    as it was and the next open starts over. The freed pages are given back to the file
    system by the VACUUM in `reclaim_free_pages` afterwards. At 100k x 4096-d the whole
    upgrade took 84 s on 2 busy cores (benchmarks/search_latency.py), once.
    """
    dim_row = conn.execute("SELECT value FROM meta WHERE key = 'embedding_dim'").fetchone()
    drop_vector_table(conn)
    if dim_row is not None:
        dim = int(dim_row[0])
        create_vector_table(conn, dim)
        last_id = -1
        while rows := conn.execute(
            "SELECT chunk_id, embedding FROM chunk_embeddings WHERE chunk_id > ? "
            "ORDER BY chunk_id LIMIT ?",
            (last_id, FLOAT32_BATCH),
        ).fetchall():
            ids = [chunk_id for chunk_id, _ in rows]
            for chunk_id, blob in rows:
                if len(blob) != 4 * dim:
                    raise ValueError(
                        f"chunk {chunk_id}: stored embedding has {len(blob)} bytes, "
                        f"expected {4 * dim} ({dim} float32)"
                    )
            floats = np.frombuffer(b"".join(blob for _, blob in rows), dtype="<f4")
            insert_quantized(conn, ids, floats.reshape(len(rows), dim))
            last_id = ids[-1]
    conn.execute("DROP TABLE chunk_embeddings")


@migration
def m008_kv_blob_hits(conn: apsw.Connection) -> None:
    """How often answers restored each saved KV blob: eviction takes blobs no answer has used
    first (store/kv_cache.py, the admission rule)."""
    conn.execute(
        """
        ALTER TABLE kv_blobs ADD COLUMN hits INTEGER NOT NULL DEFAULT 0;
        CREATE INDEX kv_blobs_eviction ON kv_blobs((hits > 0), last_used_at, id);
        """
    )


@migration
def m009_fts_path_column(conn: apsw.Connection) -> None:
    """Keyword search reads each chunk's file path too, with column weights (store/fts.py).

    `chunks_fts` is made anew with a third column, `path` (the file's path under its root,
    "docs/install.md"; a path that is not UTF-8 indexes as ""), filled from the chunks
    already indexed: nothing is re-parsed or re-embedded, and `chunks` is left as it was.
    The path lives in `sources`, not in `chunks`, so the table is contentless with
    deletes by rowid (FTS5 `contentless_delete`, SQLite 3.43+) instead of external-content
    over `chunks`; triggers keep it in step with chunks and with renamed sources
    (`move_source`, `add_root` adopting an inner root). Measured on
    benchmarks/retrieval_eval.py (README, Benchmarks).
    """
    path = "CASE WHEN typeof(s.rel_path) = 'text' THEN s.rel_path ELSE '' END"
    new_path = path.replace("s.rel_path", "new.rel_path")
    conn.execute(
        f"""
        DROP TRIGGER chunks_fts_insert;
        DROP TRIGGER chunks_fts_delete;
        DROP TRIGGER chunks_fts_update;
        DROP TABLE chunks_fts;

        CREATE VIRTUAL TABLE chunks_fts USING fts5(
            text, heading_path, path,
            content = '', contentless_delete = 1,
            tokenize = 'porter unicode61 remove_diacritics 2'
        );
        INSERT INTO chunks_fts (rowid, text, heading_path, path)
            SELECT c.id, c.text, c.heading_path, {path}
            FROM chunks AS c JOIN sources AS s ON s.id = c.source_id;

        CREATE TRIGGER chunks_fts_insert AFTER INSERT ON chunks BEGIN
            INSERT INTO chunks_fts (rowid, text, heading_path, path)
                SELECT new.id, new.text, new.heading_path, {path}
                FROM sources AS s WHERE s.id = new.source_id;
        END;
        CREATE TRIGGER chunks_fts_delete AFTER DELETE ON chunks BEGIN
            DELETE FROM chunks_fts WHERE rowid = old.id;
        END;
        CREATE TRIGGER chunks_fts_update AFTER UPDATE OF text, heading_path, source_id
        ON chunks BEGIN
            DELETE FROM chunks_fts WHERE rowid = old.id;
            INSERT INTO chunks_fts (rowid, text, heading_path, path)
                SELECT new.id, new.text, new.heading_path, {path}
                FROM sources AS s WHERE s.id = new.source_id;
        END;
        CREATE TRIGGER chunks_fts_path AFTER UPDATE OF rel_path ON sources BEGIN
            DELETE FROM chunks_fts WHERE rowid IN (SELECT id FROM chunks WHERE source_id = new.id);
            INSERT INTO chunks_fts (rowid, text, heading_path, path)
                SELECT c.id, c.text, c.heading_path, {new_path}
                FROM chunks AS c WHERE c.source_id = new.id;
        END;
        """
    )
