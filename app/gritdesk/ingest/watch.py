"""Keep an index current while files change (`gritdesk index --watch`).

After one full update, each batch of file-system events re-indexes just the changed
paths (a vanished path is removed); a changed ignore file re-scans its whole root,
since it can change what every path below it means.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

import apsw
from watchfiles import Change, DefaultFilter, watch

from gritdesk.ingest.ignore_rules import IGNORE_FILE_NAMES
from gritdesk.ingest.indexer import IndexReport, index_paths
from gritdesk.runtime.protocols import DocumentEmbedder
from gritdesk.store.sources import list_roots


def watch_paths(
    db: apsw.Connection,
    embedder: DocumentEmbedder,
    paths: Iterable[str | os.PathLike],
    *,
    on_report: Callable[[IndexReport], None] | None = None,
    stop_event: threading.Event | None = None,
    debounce_ms: int = 1600,
    **index_options,
) -> None:
    """Index `paths`, then re-index what changes under them until `stop_event` is set."""
    paths = [Path(p).expanduser().resolve() for p in paths]
    report = index_paths(db, embedder, paths, **index_options)
    if on_report:
        on_report(report)
    watched_roots = sorted({r.path for r in list_roots(db) for p in paths if _under(p, r.path)})
    database_files = {db.filename + suffix for suffix in ("", "-wal", "-shm", "-journal")}

    default_filter = DefaultFilter()  # drops .git, __pycache__, editor swap files, ...

    def interesting(change: Change, path: str) -> bool:
        return path not in database_files and default_filter(change, path)

    for changes in watch(
        *watched_roots,
        watch_filter=interesting,
        stop_event=stop_event,
        debounce=debounce_ms,
        yield_on_timeout=False,
    ):
        changed = sorted({path for _, path in changes})
        targets: set[str] = set()
        for path in changed:
            if Path(path).name in IGNORE_FILE_NAMES:
                targets.update(root for root in watched_roots if _under(Path(path), root))
            else:
                targets.add(path)
        targets = {t for t in targets if not any(_under(Path(t), o) for o in targets if o != t)}
        report = index_paths(db, embedder, sorted(targets), **index_options)
        if on_report:
            on_report(report)


def _under(path: Path, root: str) -> bool:
    return path == Path(root) or Path(root) in path.parents
