"""`gritdesk index --rebuild` builds the new index beside the old one and swaps it in whole.

Re-embedding a folder with another model takes minutes to hours; until it is complete the
old index keeps answering (search, ask, chat, another process reading the same file), and an
interrupted rebuild loses nothing: the staging file `<db>.rebuild` is a full index database
(a copy of the old one with its sources, chunks and vectors cleared, roots and conversations
kept), so the next `index --rebuild` goes on where it stopped, as any index run does.

The swap copies the staging database into the live one with SQLite's backup API, inside
SQLite's locking: a reader in another process sees the old index or the new one, never a
mix, and the live file keeps its WAL (replacing the file on disk would not). Conversations
saved while the rebuild ran are carried over first.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import apsw

from gritdesk.store.connection import (
    StorageFullError,
    open_database,
    read_transaction,
    write_transaction,
)
from gritdesk.store.model_record import clear_index

SUFFIX = ".rebuild"
_CARRIED = ("conversations", "messages")  # written by chats while the rebuild runs


def staging_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + SUFFIX)


def open_staging(live: apsw.Connection, db_path: Path) -> tuple[apsw.Connection, bool]:
    """The staging database of `db_path`'s rebuild and whether it was started just now.

    A staging file left by an interrupted rebuild is reused (its progress kept); a new one
    is a copy of the live database (`VACUUM INTO`: roots, settings and conversations come
    along) with everything the old model computed cleared.
    """
    path = staging_path(db_path)
    started = not path.exists()
    if started:
        try:
            live.execute("VACUUM INTO ?", (str(path),))
        except apsw.FullError as exc:
            discard(db_path)
            raise StorageFullError(str(path), str(exc)) from exc
    staging = open_database(path)
    if started:
        clear_index(staging)
    return staging, started


def swap_in(live: apsw.Connection, staging: apsw.Connection, db_path: Path) -> None:
    """Make the finished staging index the live one and delete the staging file."""
    with read_transaction(live):
        carried = {t: live.execute(f"SELECT * FROM {t}").fetchall() for t in _CARRIED}
    with write_transaction(staging):
        for table in reversed(_CARRIED):  # messages name their conversation
            staging.execute(f"DELETE FROM {table}")
        for table in _CARRIED:
            rows = carried[table]
            if rows:
                marks = ", ".join("?" * len(rows[0]))
                staging.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
    with live.backup("main", staging, "main") as copy:
        copy.step()  # all pages, in one step: readers see the old index or the new one
    staging.close()
    discard(db_path)


def discard(db_path: Path) -> None:
    """Remove a staging database (and its WAL files) of `db_path`."""
    path = staging_path(db_path)
    for extra in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            Path(str(path) + extra).unlink()
