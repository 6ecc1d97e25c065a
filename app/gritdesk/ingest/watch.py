"""Keep an index current while files change (`gritdesk index --watch`).

After one full update, each batch of file-system events re-indexes just the changed
paths (a vanished path is removed); a changed ignore file re-scans its whole root,
since it can change what every path below it means. A changed path is only ever
indexed inside the root it lies in, by the walk's rules (a new symlink never leads
out of it). A batch that fails (the database busy past its timeout, ...) is reported
through `on_error` and retried with the next one: watching goes on.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

import apsw
from watchfiles import Change, DefaultFilter, watch

from gritdesk.ingest.ignore_rules import IGNORE_FILE_NAMES
from gritdesk.ingest.indexer import IndexOptions, IndexReport, index_changed_paths, index_paths
from gritdesk.runtime.protocols import DocumentEmbedder
from gritdesk.store.sources import list_roots


def watch_paths(
    db: apsw.Connection,
    embedder: DocumentEmbedder,
    paths: Iterable[str | os.PathLike],
    *,
    on_report: Callable[[IndexReport], None] | None = None,
    on_error: Callable[[str], None] | None = None,
    stop_event: threading.Event | None = None,
    debounce_ms: int = 1600,
    retry_ms: int = 5000,
    options: IndexOptions | None = None,
) -> None:
    """Index `paths`, then re-index what changes under them until `stop_event` is set."""
    paths = [Path(p).expanduser().resolve() for p in paths]
    report_error = on_error or _log_error

    def attempt(index, targets: list) -> bool:
        try:
            report = index(db, embedder, targets, options)
        except Exception as exc:  # logged and retried: one bad moment must not end watching
            report_error(f"{type(exc).__name__}: {exc}")
            return False
        if on_report:
            on_report(report)
        return True

    first_done = attempt(index_paths, paths)
    known = [r.path for r in list_roots(db)]
    unregistered = [p for p in paths if not any(_under(p, r) for r in known)]  # first run failed
    watched_roots = sorted(
        {r for r in known for p in paths if _under(p, r)}
        | {str(p if p.is_dir() else p.parent) for p in unregistered}
    )
    database_files = {db.filename + suffix for suffix in ("", "-wal", "-shm", "-journal")}
    retry: set[str] = set()  # paths of batches that failed, tried again with the next one

    default_filter = DefaultFilter()  # drops .git, __pycache__, editor swap files, ...

    def interesting(change: Change, path: str) -> bool:
        return path not in database_files and default_filter(change, path)

    for changes in watch(
        *watched_roots,
        watch_filter=interesting,
        stop_event=stop_event,
        debounce=debounce_ms,
        rust_timeout=retry_ms,
        yield_on_timeout=True,  # an empty batch now and then: the time to retry
    ):
        if not first_done:
            first_done = attempt(index_paths, paths)
        changed = sorted({path for _, path in changes})
        targets: set[str] = set(retry)
        for path in changed:
            if Path(path).name in IGNORE_FILE_NAMES:
                targets.update(root for root in watched_roots if _under(Path(path), root))
            elif "\ufffd" in path and not os.path.lexists(path):
                # a name that is not UTF-8 arrives with U+FFFD in it: look at its folder
                targets.add(os.path.dirname(path))
            else:
                targets.add(path)
        targets = {t for t in targets if not any(_under(Path(t), o) for o in targets if o != t)}
        if not targets:
            continue
        retry = set() if attempt(index_changed_paths, sorted(targets)) else targets


def _log_error(message: str) -> None:
    logging.getLogger(__name__).warning("watch: %s; will retry", message)


def _under(path: Path, root: str) -> bool:
    return path == Path(root) or Path(root) in path.parents
