"""How big an index is, for status lines: indexed files, chunks, folders.

Read in one snapshot so the numbers agree while another process is indexing.
"""

from __future__ import annotations

from dataclasses import dataclass

import apsw

from gritdesk.store.connection import read_transaction


@dataclass(frozen=True)
class IndexSize:
    files: int
    chunks: int
    roots: int
    tokens: int = 0  # of the chunks, in the tokens of the model that indexed them


def index_size(conn: apsw.Connection) -> IndexSize:
    with read_transaction(conn):
        files = conn.execute("SELECT count(*) FROM sources WHERE status = 'indexed'").fetchone()
        chunks = conn.execute(
            "SELECT count(*), coalesce(sum(token_count), 0) FROM chunks"
        ).fetchone()
        roots = conn.execute("SELECT count(*) FROM roots").fetchone()
    return IndexSize(files[0], chunks[0], roots[0], chunks[1])
