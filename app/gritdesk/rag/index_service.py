"""One index run as every interface starts it: `gritdesk index`, `index --watch` and the
chat app's index command all come here, so they choose the embedder, record the model and
clean up KV blobs the same way.

The embedder keeps each chunk's KV from the embedding pass only where the same model
answers (a generating recipe): an embedding-only model is paired with a chat model that
cannot use it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import apsw

from gritdesk.ingest.file_selection import FileSelection
from gritdesk.ingest.indexer import (
    IndexOptions,
    IndexReport,
    ProgressCallback,
    index_known_roots,
    index_paths,
)
from gritdesk.ingest.parser_process import ParseLimits
from gritdesk.rag.kv_saving_embedder import KvSavingEmbedder
from gritdesk.rag.vector_probe import refresh_vector_worth
from gritdesk.runtime.engine import Engine
from gritdesk.store.kv_cache import KvCacheStore

if TYPE_CHECKING:
    from gritdesk.session import Session


@dataclass(frozen=True)
class KvSaveCounts:
    """What the run did with the KV of the embedding pass."""

    saved: int = 0
    over_budget: int = 0
    failed: int = 0
    last_failure: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "kv_saved": self.saved,
            "kv_over_budget": self.over_budget,
            "kv_save_failed": self.failed,
            "kv_save_failure": self.last_failure,
        }


class IndexService:
    """Runs index jobs over one database with one engine and KV store."""

    @staticmethod
    def kv_saving(engine: Engine, save_kv: bool) -> bool:
        """Whether a pass saves each chunk's KV cache: only a model that answers reads it."""
        return save_kv and engine.recipe.generates

    def __init__(
        self,
        db: apsw.Connection,
        engine: Engine,
        store: KvCacheStore,
        *,
        limits: ParseLimits,
        selection: FileSelection,
        save_kv: bool = True,
    ) -> None:
        self.db, self.engine, self.store = db, engine, store
        self.saves_kv = self.kv_saving(engine, save_kv)
        self.embedder: Engine | KvSavingEmbedder = (
            KvSavingEmbedder(engine, store) if self.saves_kv else engine
        )
        self.options = IndexOptions(
            model_path=str(engine.path),
            recipe=engine.recipe.name,
            limits=limits,
            selection=selection,
        )

    @classmethod
    def of_session(cls, session: Session, *, save_kv: bool = True) -> IndexService:
        """Index into the session's database with its embedder, KV store and the parse limits
        and file selection of its settings."""
        assert session.engine is not None, "the session was opened without a model"
        index = session.settings.index
        return cls(
            session.db, session.engine, session.kv_store,
            limits=index.limits, selection=index.selection, save_kv=save_kv,
        )  # fmt: skip

    def run(
        self,
        paths: Sequence[Path],
        progress: ProgressCallback | None = None,
        expected_tokens: int | None = None,
    ) -> IndexReport:
        """Index `paths` (every known root when empty), then tidy the KV blobs and measure
        what the vector ranking is worth on what is now indexed (rag/vector_probe.py)."""
        if paths:
            report = index_paths(
                self.db, self.embedder, paths, self.options,
                progress=progress, expected_tokens=expected_tokens,
            )  # fmt: skip
        else:
            report = index_known_roots(
                self.db, self.embedder, self.options,
                progress=progress, expected_tokens=expected_tokens,
            )  # fmt: skip
        self.tidy()
        refresh_vector_worth(self.db, self.engine)
        return report

    def watch(
        self,
        paths: Sequence[Path],
        on_report: Callable[[IndexReport], None],
        on_error: Callable[[str], None],
    ) -> None:
        """Index `paths`, then keep indexing what changes (until Ctrl-C)."""
        from gritdesk.ingest.watch import watch_paths

        def reported(report: IndexReport) -> None:
            self.tidy()
            refresh_vector_worth(self.db, self.engine)
            on_report(report)

        watch_paths(
            self.db, self.embedder, paths, on_report=reported, on_error=on_error,
            options=self.options,
        )  # fmt: skip

    def tidy(self) -> None:
        self.store.sweep_orphans()  # blobs of chunks that changed or went away
        self.store.reconcile()  # files no row knows (a crash mid-save), rows whose file is gone

    def kv_counts(self) -> KvSaveCounts:
        embedder = self.embedder
        if not isinstance(embedder, KvSavingEmbedder):
            return KvSaveCounts()
        return KvSaveCounts(
            embedder.saved, embedder.skipped, embedder.failed, embedder.last_failure
        )
