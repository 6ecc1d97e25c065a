"""`gritdesk index`: bring the index up to date, show progress, report, optionally watch."""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from gritdesk.cli_views import index_progress, print_index_estimate, print_index_summary
from gritdesk.errors import GritdeskError
from gritdesk.ingest.byte_sizes import MIB
from gritdesk.ingest.estimate import IndexEstimate, estimate_index
from gritdesk.ingest.indexer import IndexReport
from gritdesk.models.model_info import kv_bytes_per_token
from gritdesk.rag.index_service import IndexService
from gritdesk.session import Session, open_kv_store
from gritdesk.store.connection import StorageFullError, open_database
from gritdesk.store.index_size import index_size
from gritdesk.store.rebuild import open_staging, staging_path, swap_in
from gritdesk.store.sources import list_roots

if TYPE_CHECKING:
    from gritdesk.runtime.engine import Engine


@dataclass(frozen=True)
class RunSelection:
    """What one run adds to config.toml's [index] rules (`--include`, `--exclude`, ...)."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    max_file_mib: float | None = None


def run_index(
    session: Session,
    paths: list[Path],
    *,
    rebuild: bool = False,
    save_kv: bool = True,
    watch: bool = False,
    as_json: bool = False,
    chosen: RunSelection = RunSelection(),
    dry_run: bool = False,
    yes: bool = False,
) -> None:
    engine = session.engine
    assert engine is not None
    if rebuild and watch:
        raise GritdeskError(
            "--rebuild re-embeds everything and then stops: run `gritdesk index --rebuild`, "
            "then `gritdesk index --watch`"
        )
    settings = session.settings.index
    limits = settings.limits
    if chosen.max_file_mib is not None:
        limits = replace(limits, file_bytes=int(chosen.max_file_mib * MIB))
    selection = settings.selection.with_patterns(chosen.include, chosen.exclude)
    # a rebuild resumed from its staging file is estimated there; a new one from the old index
    resumed = rebuild and staging_path(session.db_path).exists()
    estimated = open_database(staging_path(session.db_path)) if resumed else session.db
    saves_kv = IndexService.kv_saving(engine, save_kv)
    estimate = None
    try:
        if not watch:
            if not paths and not list_roots(estimated):
                raise GritdeskError("the index has no folders yet: gritdesk index PATH")
            estimate = estimate_index(
                estimated,
                engine,  # the bare engine: the timed sample saves no KV
                paths,
                limits=limits,
                selection=selection,
                kv_bytes_per_token=_kv_bytes_per_token(engine) if saves_kv else None,
                fresh=rebuild and not resumed,
            )
    finally:
        if estimated is not session.db:
            estimated.close()
    if not watch:
        assert estimate is not None
        if dry_run:
            if as_json:
                _print_json({"dry_run": True, "estimate": estimate.as_dict()})
            else:
                print_index_estimate(estimate, session.kv_store.budget_bytes)
            return
        if not as_json:
            print_index_estimate(estimate, session.kv_store.budget_bytes, out=sys.stderr)
        if not _go_ahead(estimate, settings.confirm_above_s, yes or as_json):
            print("gritdesk: not started; nothing was changed", file=sys.stderr)
            return
    elif dry_run:
        raise GritdeskError("--dry-run estimates one run: leave out --watch")
    db, store = session.db, session.kv_store
    if rebuild:  # into a staging copy: the old index answers until the new one is complete
        try:
            db, started = open_staging(session.db, session.db_path)
        except StorageFullError as exc:
            raise GritdeskError(_disk_full_message(session, exc)) from None
        store = open_kv_store(staging_path(session.db_path), db, session.settings)
        if started:
            store.clear()  # the copy's links to the old model's blobs
        else:
            print("gritdesk: going on with the interrupted rebuild", file=sys.stderr)
    service = IndexService(db, engine, store, limits=limits, selection=selection, save_kv=save_kv)

    def report_done(report: IndexReport) -> None:
        kv = service.kv_counts()  # what this run (a rebuild's too) did with the KV it took
        if as_json:
            _print_json(
                {
                    **report.as_dict(),
                    **kv.as_dict(),
                    "estimate": estimate.as_dict() if estimate is not None else None,
                }
            )
        else:
            print_index_summary(report, kv.saved, kv.over_budget, kv.failed, kv.last_failure)

    if watch:
        targets = paths or [Path(root.path) for root in list_roots(session.db)]
        if not targets:
            raise GritdeskError("nothing to watch: name a folder (gritdesk index --watch PATH)")
        print("indexing, then watching for changes (Ctrl-C stops)", file=sys.stderr)

        def report_error(message: str) -> None:
            print(f"gritdesk: watch: {message}; will retry", file=sys.stderr, flush=True)

        service.watch(targets, on_report=report_done, on_error=report_error)
        return
    try:
        with index_progress(enabled=not as_json) as progress:
            report = service.run(paths, progress, estimate.tokens if estimate else None)
        if rebuild:
            old_blobs = session.kv_store.directory
            swap_in(session.db, db, session.db_path)
            if old_blobs != store.directory:
                shutil.rmtree(old_blobs, ignore_errors=True)  # the old model's caches
            session.kv_store = open_kv_store(session.db_path, session.db, session.settings)
    except StorageFullError as exc:
        raise GritdeskError(_disk_full_message(session, exc)) from None
    finally:
        if db is not session.db:
            db.close()
    report_done(report)


def _disk_full_message(session: Session, exc: StorageFullError) -> str:
    """What a full disk stopped, what is kept, and how to go on."""
    size = index_size(session.db)  # reading needs no room
    return (
        f"{exc}: indexing stopped; {size.files} files ({size.chunks} chunks) indexed before "
        "it are kept. Free some space (or move the database with --db) and run the same "
        "command again: it goes on from there"
    )


def _print_json(value: dict) -> None:
    """One report per line, written whole: `json.dump` writes piece by piece, so a Ctrl-C
    while a watch run reports left half a line for the reader of `--json`."""
    sys.stdout.write(json.dumps(value) + "\n")
    sys.stdout.flush()


def _kv_bytes_per_token(engine: Engine) -> int | None:
    """Disk per token of a saved chunk KV cache, from the model's shape and the KV type."""
    s = engine.summary
    return kv_bytes_per_token(s.n_layer, s.n_head_kv, s.head_size).get(engine.settings.kv_type)


def _go_ahead(estimate: IndexEstimate, confirm_above_s: float, yes: bool) -> bool:
    """Ask before a long run, in a terminal only: --yes, --json and scripts go ahead."""
    if yes or estimate.seconds is None or estimate.seconds <= confirm_above_s:
        return True
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        return True
    return typer.confirm("This run is long. Start it?", default=False, err=True)
