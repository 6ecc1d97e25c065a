"""`gritdesk roots list | rm PATH`: the indexed folders, what each costs, and removing one."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import apsw

from gritdesk.cli_views import describe_size
from gritdesk.errors import GritdeskError
from gritdesk.rag.root_scope import resolve_root
from gritdesk.session import Session
from gritdesk.store.model_record import read_model_record
from gritdesk.store.root_stats import (
    database_free_bytes,
    remove_root_contents,
    root_stats,
)
from gritdesk.store.sources import Root, display_path
from gritdesk.terminal_text import printable_line


def index_embedder(session: Session) -> str | None:
    """`all-MiniLM-L6-v2.F32.gguf (recipe minilm)`: the model whose vectors the index holds."""
    record = read_model_record(session.db)
    if record is None:
        return None
    name = Path(record.path).name if record.path else record.fingerprint[:12]
    return f"{name} (recipe {record.recipe})"


def list_index_roots(session: Session, as_json: bool) -> None:
    stats = root_stats(session.db)
    embedder = index_embedder(session)
    if as_json:
        json.dump([{**s.as_dict(), "embedder": embedder} for s in stats], sys.stdout)
        sys.stdout.write("\n")
        return
    if not stats:
        print("no indexed folders yet: gritdesk index PATH")
    elif embedder is not None:
        print(f"embedded with {printable_line(embedder)}")
    for s in stats:
        when = (
            time.strftime("%Y-%m-%d %H:%M", time.localtime(s.last_indexed_at))
            if s.last_indexed_at
            else "never"
        )
        print(printable_line(s.path))
        print(
            f"  {s.files:,} files, {s.chunks:,} chunks, {s.tokens:,} tokens; "
            f"{s.skipped:,} skipped, {s.errors:,} errors; last indexed {when}"
        )
        print(
            f"  disk: vectors {describe_size(s.vector_bytes)}, "
            f"KV caches {describe_size(s.kv_bytes)} ({s.kv_blobs:,} blobs)"
        )


def indexed_root(db: apsw.Connection, path: Path) -> Root:
    """The indexed folder `path` names (resolved as `--root` is everywhere); a folder inside
    one is refused: `roots rm` forgets whole indexed folders."""
    scope = resolve_root(db, path)
    if not scope.whole_root:
        raise GritdeskError(
            f"{path}: a folder inside the indexed folder {display_path(scope.root.path)}; "
            "roots rm removes a whole indexed folder"
        )
    return scope.root


def remove_index_root(session: Session, path: Path, as_json: bool) -> None:
    """Forget a root: its rows go, then the KV blobs no remaining chunk uses."""
    store = session.kv_store
    assert store is not None
    root = indexed_root(session.db, path)
    free_before = database_free_bytes(session.db)
    kv_before = store.stats().bytes
    sources, chunks = remove_root_contents(session.db, root)
    blobs = store.sweep_orphans()
    kv_freed = kv_before - store.stats().bytes
    db_freed = max(database_free_bytes(session.db) - free_before, 0)
    result = {
        "path": display_path(root.path),
        "sources": sources,
        "chunks": chunks,
        "kv_blobs": blobs,
        "kv_bytes_freed": kv_freed,
        "db_bytes_freed": db_freed,
    }
    if as_json:
        json.dump(result, sys.stdout)
        sys.stdout.write("\n")
        return
    print(
        f"removed {printable_line(result['path'])}: {sources:,} files, {chunks:,} chunks, "
        f"{blobs:,} KV caches; freed {describe_size(kv_freed)} of KV caches and "
        f"{describe_size(db_freed)} in the database (reused by later indexing)"
    )
