"""Roots, sources and their chunks: what was indexed from where, as the indexer writes it.

Every function that changes a source does it in one short write transaction, so a
file's chunks, vectors and FTS rows are replaced all at once or not at all, and a
killed indexer leaves either the old version of a file or the new one.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import apsw
import numpy as np

from gritdesk.store.connection import write_transaction
from gritdesk.store.vectors import insert_vectors

SourceStatus = Literal["indexed", "skipped", "error"]
StoredPath = str | bytes


def stored_path(path: str) -> StoredPath:
    """How a path is bound to SQLite: as text when it is UTF-8, else as its raw bytes.

    A file name that is not UTF-8 (an old disk, a Windows zip) arrives surrogate-escaped
    (PEP 383) and cannot be TEXT; kept as a BLOB of `os.fsencode` bytes it stays exact,
    so the file can be found, compared and removed like any other.
    """
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(path)
    return path


def loaded_path(value: StoredPath) -> str:
    """The inverse of `stored_path`: the str the file system calls the path."""
    return os.fsdecode(value) if isinstance(value, bytes) else value


def display_path(path: StoredPath) -> str:
    """A path fit to show or print: bytes that are not UTF-8 become U+FFFD."""
    return os.fsencode(path).decode("utf-8", "replace")


@dataclass(frozen=True)
class Root:
    id: int
    path: str  # absolute, symlinks resolved


@dataclass(frozen=True)
class SourceState:
    """What the index knows about one path under a root."""

    id: int
    rel_path: str
    size: int | None
    mtime_ns: int | None
    ctime_ns: int | None
    content_hash: str | None
    chunking: str
    status: SourceStatus
    reason: str | None


@dataclass(frozen=True)
class FileStamp:
    """What decides whether a file must be indexed again: its stat, its hash once read,
    and the parse/chunk settings its chunks were made with."""

    size: int | None
    mtime_ns: int | None
    content_hash: str | None
    ctime_ns: int | None = None
    chunking: str = ""


@dataclass(frozen=True)
class ChunkRow:
    ordinal: int
    text: str
    start_line: int | None
    end_line: int | None
    page: int | None
    heading_path: str
    token_count: int
    text_hash: str
    locator: str | None = None  # "slide 3", "Sheet1!A1:D20": cited instead of lines


# --- roots ----------------------------------------------------------------------------


def list_roots(conn: apsw.Connection) -> list[Root]:
    rows = conn.execute("SELECT id, path FROM roots ORDER BY path")
    return [Root(root_id, loaded_path(path)) for root_id, path in rows]


def root_containing(conn: apsw.Connection, path: str) -> Root | None:
    """The known root that `path` (absolute, resolved) lies in, or is, if any."""
    for root in list_roots(conn):
        if path == root.path or path.startswith(root.path.rstrip(os.sep) + os.sep):
            return root
    return None


def add_root(conn: apsw.Connection, path: str) -> Root:
    """Register `path` as a root, adopting the sources of any known roots inside it.

    Indexing ~/notes after ~/notes/work keeps the work files (now under the bigger
    root) instead of indexing them twice.
    """
    prefix = path.rstrip(os.sep) + os.sep
    with write_transaction(conn):
        row = conn.execute(
            "INSERT INTO roots (path) VALUES (?) ON CONFLICT (path) DO UPDATE SET path = path "
            "RETURNING id",
            (stored_path(path),),
        ).fetchone()
        root = Root(row[0], path)
        for inner in list_roots(conn):
            if inner.id == root.id or not inner.path.startswith(prefix):
                continue
            sub = Path(inner.path).relative_to(path).as_posix() + "/"
            conn.execute(  # || makes text: bytes that are not UTF-8 go back to a BLOB
                """
                UPDATE sources SET root_id = ?, rel_path = CASE
                    WHEN typeof(rel_path) = 'blob' OR typeof(?2) = 'blob'
                    THEN CAST(CAST(?2 AS BLOB) || rel_path AS BLOB)
                    ELSE ?2 || rel_path END
                WHERE root_id = ?3
                """,
                (root.id, stored_path(sub), inner.id),
            )
            conn.execute("DELETE FROM roots WHERE id = ?", (inner.id,))
    return root


def remove_root(conn: apsw.Connection, root_id: int) -> None:
    """Forget a root and everything indexed under it."""
    with write_transaction(conn):
        conn.execute("DELETE FROM roots WHERE id = ?", (root_id,))


# --- sources --------------------------------------------------------------------------


def sources_in_scope(
    conn: apsw.Connection, root_id: int, scope: str | None = None
) -> dict[str, SourceState]:
    """Known sources of a root, by relative path; only `scope` (a path or folder) if given."""
    query = """
        SELECT id, rel_path, size, mtime_ns, ctime_ns, content_hash, chunking, status, reason
        FROM sources WHERE root_id = ?
    """
    params: tuple = (root_id,)
    if scope:  # compared as bytes, so text and BLOB paths (see stored_path) both match
        query += """
            AND (CAST(rel_path AS BLOB) = ?2
                 OR substr(CAST(rel_path AS BLOB), 1, length(?3)) = ?3)
        """
        prefix = os.fsencode(scope)
        params = (root_id, prefix, prefix + b"/")
    rows = conn.execute(query, params)
    states = (SourceState(row[0], loaded_path(row[1]), *row[2:]) for row in rows)
    return {state.rel_path: state for state in states}


def replace_source_chunks(
    conn: apsw.Connection,
    root_id: int,
    rel_path: str,
    stamp: FileStamp,
    chunks: Sequence[ChunkRow],
    vectors: np.ndarray,
    embedding_dim: int,
) -> int:
    """Make `chunks` (with `vectors`) the indexed content of this source, atomically."""
    if len(chunks) != len(vectors):
        raise ValueError(f"{rel_path}: {len(chunks)} chunks but {len(vectors)} vectors")
    with write_transaction(conn):
        source_id = _upsert_source(conn, root_id, rel_path, stamp, "indexed", None)
        conn.execute("DELETE FROM chunks WHERE source_id = ?", (source_id,))
        chunk_ids = [
            conn.execute(
                """
                INSERT INTO chunks (source_id, ordinal, text, start_line, end_line, page,
                                    heading_path, token_count, text_hash, locator)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                RETURNING id
                """,
                (
                    source_id,
                    chunk.ordinal,
                    chunk.text,
                    chunk.start_line,
                    chunk.end_line,
                    chunk.page,
                    chunk.heading_path,
                    chunk.token_count,
                    chunk.text_hash,
                    chunk.locator,
                ),
            ).fetchone()[0]
            for chunk in chunks
        ]
        if chunk_ids:
            insert_vectors(conn, chunk_ids, vectors, embedding_dim)
    return source_id


def record_unindexed_source(
    conn: apsw.Connection,
    root_id: int,
    rel_path: str,
    stamp: FileStamp,
    status: SourceStatus,
    reason: str,
) -> int:
    """Record a path that was skipped or failed (dropping any chunks an older version had)."""
    with write_transaction(conn):
        source_id = _upsert_source(conn, root_id, rel_path, stamp, status, reason)
        conn.execute("DELETE FROM chunks WHERE source_id = ?", (source_id,))
    return source_id


def update_source_stamp(conn: apsw.Connection, source_id: int, stamp: FileStamp) -> None:
    """A touched but unchanged file: remember the new stat so the next run skips the hash."""
    with write_transaction(conn):
        conn.execute(
            """
            UPDATE sources SET size = ?, mtime_ns = ?, ctime_ns = ?, content_hash = ?
            WHERE id = ?
            """,
            (stamp.size, stamp.mtime_ns, stamp.ctime_ns, stamp.content_hash, source_id),
        )


def move_source(
    conn: apsw.Connection, source_id: int, root_id: int, rel_path: str, stamp: FileStamp
) -> None:
    """A renamed file with identical content keeps its chunks and vectors."""
    with write_transaction(conn):
        conn.execute(
            """
            UPDATE sources SET root_id = ?, rel_path = ?, size = ?, mtime_ns = ?, ctime_ns = ?
            WHERE id = ?
            """,
            (root_id, stored_path(rel_path), stamp.size, stamp.mtime_ns, stamp.ctime_ns, source_id),
        )


def remove_sources(conn: apsw.Connection, source_ids: Sequence[int], batch: int = 200) -> None:
    """Delete sources (their chunks, vectors and FTS rows follow), in short transactions."""
    ids = list(source_ids)
    for start in range(0, len(ids), batch):
        with write_transaction(conn):
            conn.executemany(
                "DELETE FROM sources WHERE id = ?", [(i,) for i in ids[start : start + batch]]
            )


# --- parse attempts (see ingest/indexer.py: a parse still running is recorded) ----------


def parse_attempts(
    conn: apsw.Connection, root_id: int
) -> list[tuple[str, tuple[int | None, int | None, int | None]]]:
    """Files of a root whose parse began and never ended: (rel_path, (size, mtime, ctime))."""
    rows = conn.execute(
        "SELECT rel_path, size, mtime_ns, ctime_ns FROM parse_attempts WHERE root_id = ?",
        (root_id,),
    )
    return [(loaded_path(rel), (size, mtime, ctime)) for rel, size, mtime, ctime in rows]


def mark_parse_attempt(
    conn: apsw.Connection,
    root_id: int,
    rel_path: str,
    size: int | None,
    mtime_ns: int | None,
    ctime_ns: int | None,
) -> None:
    with write_transaction(conn):
        conn.execute(
            """
            INSERT OR REPLACE INTO parse_attempts (root_id, rel_path, size, mtime_ns, ctime_ns)
            VALUES (?, ?, ?, ?, ?)
            """,
            (root_id, stored_path(rel_path), size, mtime_ns, ctime_ns),
        )


def clear_parse_attempt(conn: apsw.Connection, root_id: int, rel_path: str) -> None:
    with write_transaction(conn):
        conn.execute(
            "DELETE FROM parse_attempts WHERE root_id = ? AND rel_path = ?",
            (root_id, stored_path(rel_path)),
        )


def _upsert_source(
    conn: apsw.Connection,
    root_id: int,
    rel_path: str,
    stamp: FileStamp,
    status: SourceStatus,
    reason: str | None,
) -> int:
    return conn.execute(
        """
        INSERT INTO sources (root_id, rel_path, size, mtime_ns, ctime_ns, content_hash,
                             chunking, status, reason)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (root_id, rel_path) DO UPDATE SET
            size = excluded.size,
            mtime_ns = excluded.mtime_ns,
            ctime_ns = excluded.ctime_ns,
            content_hash = excluded.content_hash,
            chunking = excluded.chunking,
            status = excluded.status,
            reason = excluded.reason,
            indexed_at = unixepoch('subsec')
        RETURNING id
        """,
        (
            root_id,
            stored_path(rel_path),
            stamp.size,
            stamp.mtime_ns,
            stamp.ctime_ns,
            stamp.content_hash,
            stamp.chunking,
            status,
            None if reason is None else display_path(reason),  # names in it may be bytes
        ),
    ).fetchone()[0]
