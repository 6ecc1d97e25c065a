"""The one place a gritdesk database is opened, so every process gets the same settings.

WAL plus a busy timeout lets a chat or search process read while an indexer writes;
writes go through `write_transaction` (BEGIN IMMEDIATE, short) so two writers queue on
the busy timeout instead of failing half-way with "database is locked".
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import apsw
import sqlite_vec

from gritdesk.errors import GritdeskError
from gritdesk.store.migrations import migrate

BUSY_TIMEOUT_MS = 10_000
# 16 KiB pages (SQLite's default is 4 KiB): the vector search reads every quantized
# vector of the index per query, and bigger pages make that scan about 20% faster
# (benchmarks/search_latency.py). Takes effect only when the file is created.
PAGE_SIZE = 16_384
WAL_SIZE_LIMIT = 64 * 1024 * 1024  # the WAL file is cut back to this after a checkpoint
# Read the file through a memory map of up to 16 GiB (address space, not memory; SQLite
# lowers it to its compile-time limit where that is smaller). Vector rescoring reads
# each candidate's int8 vector out of a 4 MiB vec0 blob; through read() calls that walks
# the blob's overflow pages, ~0.4 ms a vector, through the map a few microseconds.
MMAP_SIZE = 1 << 34


class DatabaseOpenError(GritdeskError):
    """The index database could not be opened (not a database, unreadable, corrupt...)."""


class StorageFullError(GritdeskError):
    """A write found the disk (or quota) holding the database full; it was rolled back,
    so what earlier transactions stored is intact."""

    def __init__(self, path: str, detail: str) -> None:
        super().__init__(f"the disk holding the index database {path} is full ({detail})")
        self.path = path


def open_database(path: str | Path) -> apsw.Connection:
    """Open (creating if needed) the index database at `path` and bring its schema up to date."""
    path = Path(path).expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = apsw.Connection(str(path))
        conn.set_busy_timeout(BUSY_TIMEOUT_MS)
        load_sqlite_vec(conn)
        conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")  # a no-op once the file has content
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")  # durable across process crashes in WAL mode
        conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute(f"PRAGMA mmap_size = {MMAP_SIZE}")
        migrate(conn)
    except (apsw.Error, OSError, ValueError) as exc:  # ValueError: a migration's bad row
        raise DatabaseOpenError(f"cannot open the index database {path}: {exc}") from exc
    return conn


def load_sqlite_vec(conn: apsw.Connection) -> None:
    """Load the sqlite-vec extension that ships inside the `sqlite-vec` wheel."""
    conn.enable_load_extension(True)
    try:
        conn.load_extension(sqlite_vec.loadable_path())
    finally:
        conn.enable_load_extension(False)


@contextmanager
def write_transaction(conn: apsw.Connection) -> Iterator[apsw.Connection]:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception.

    IMMEDIATE takes the write lock up front (waiting on the busy timeout), so a
    transaction never fails midway on a lock upgrade.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except apsw.FullError as exc:
        _roll_back(conn)
        raise StorageFullError(conn.filename, str(exc)) from exc
    except BaseException:
        _roll_back(conn)
        raise


def _roll_back(conn: apsw.Connection) -> None:
    if not conn.get_autocommit():
        conn.execute("ROLLBACK")


@contextmanager
def read_transaction(conn: apsw.Connection) -> Iterator[apsw.Connection]:
    """One consistent snapshot for a group of reads (WAL readers never block writers)."""
    conn.execute("BEGIN")
    try:
        yield conn
    finally:
        if not conn.get_autocommit():
            conn.execute("COMMIT")
