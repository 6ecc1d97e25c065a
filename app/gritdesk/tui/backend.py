"""What the chat app needs from an opened index and its model.

A protocol, so screens can be driven by a scripted backend in snapshot tests; the real
`IndexBackend` is a thin layer over `Session` and `Answerer`, the same code `gritdesk ask`
runs. The engine is not thread-safe: every caller holds `lock` around engine work.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import gguf

from gritdesk.config import load_index_limits, load_index_settings
from gritdesk.ingest.indexer import IndexReport, ProgressCallback, index_known_roots, index_paths
from gritdesk.models.model_info import quantization_name
from gritdesk.rag.answer import Answerer, AskOptions, PreparedAnswer
from gritdesk.rag.kv_saving_embedder import KvSavingEmbedder
from gritdesk.runtime.engine import ChatTurn
from gritdesk.session import Session, SessionOptions, open_session
from gritdesk.store.conversations import CitedChunk
from gritdesk.store.model_record import ModelRecord, check_model
from gritdesk.store.sources import list_roots


@dataclass(frozen=True)
class ModelLabel:
    """What the status line says about the model: its name and quantization."""

    name: str
    quantization: str

    def __str__(self) -> str:
        return f"{self.name} {self.quantization}"


class ChatBackend(Protocol):
    db_path: Path
    model: ModelLabel  # the model that answers
    pair_mode: bool  # a second model answers: no KV is shared, so the cache mode is off
    notices: list[str]  # said once when the backend is ready
    lock: threading.Lock

    def check_index(self) -> None:
        """Raise EmptyIndexError, ModelMismatchError or EmbeddingOnlyModelError when
        questions cannot be answered."""

    def prepare(
        self,
        question: str,
        options: AskOptions,
        history: Sequence[ChatTurn],
        earlier_questions: Sequence[str],
    ) -> PreparedAnswer: ...

    def stream(
        self, prepared: PreparedAnswer, should_stop: Callable[[], bool]
    ) -> Iterator[str]: ...

    def cite(self, prepared: PreparedAnswer) -> list[CitedChunk]: ...

    def index(self, paths: Sequence[Path], progress: ProgressCallback) -> IndexReport: ...

    def close(self) -> None: ...


def display_path(path: str, roots: Sequence[str]) -> str:
    """`folder/file.md` for a file under an indexed folder (the folder's own name first)."""
    for root in sorted(roots, key=len, reverse=True):
        prefix = root.rstrip("/") + "/"
        if path.startswith(prefix):
            return f"{Path(root).name}/{path[len(prefix) :]}"
    return path


def model_label(path: Path, name: str, file_type: int | None) -> ModelLabel:
    """Name and quantization; the file is read again (seconds: the whole vocabulary is
    parsed) only when its header has no `general.file_type`."""
    try:
        reader = gguf.GGUFReader(path) if file_type is None or file_type < 0 else None
        quantization = quantization_name(reader, file_type)  # type: ignore[arg-type]
    except Exception:  # the label is cosmetic: a reader failure must not stop the chat
        quantization = "unknown quantization"
    return ModelLabel(name or path.stem, quantization)


class IndexBackend:
    """A `Session` with its model(s) loaded, answering through `Answerer`."""

    def __init__(self, session: Session) -> None:
        assert session.engine is not None
        self.session = session
        self.engine = session.engine
        self.db_path = session.db_path
        self.lock = threading.Lock()
        self.pair_mode = session.pair_mode
        self.notices = list(session.notices)
        self.answerer = Answerer(session.db, self.engine, session.kv_store, session.chat_engine)
        answers = session.chat_engine or self.engine
        self.model = model_label(answers.path, answers.summary.name, answers.summary.file_type)

    @classmethod
    def open(cls, options: SessionOptions) -> IndexBackend:
        """Open the index and load its model (seconds for a 7B model: call from a worker)."""
        return cls(open_session(options, load_model=True))

    def check_index(self) -> None:
        check_model(self.session.db, ModelRecord.of(self.engine))
        self.session.require_answering_model()

    def prepare(
        self,
        question: str,
        options: AskOptions,
        history: Sequence[ChatTurn],
        earlier_questions: Sequence[str],
    ) -> PreparedAnswer:
        return self.answerer.prepare(question, options, history, earlier_questions)

    def stream(self, prepared: PreparedAnswer, should_stop: Callable[[], bool]) -> Iterator[str]:
        return self.answerer.stream(prepared, should_stop=should_stop)

    def cite(self, prepared: PreparedAnswer) -> list[CitedChunk]:
        roots = [root.path for root in list_roots(self.session.db)]
        return [
            CitedChunk(
                number=source.number,
                path=source.hit.path,
                start_line=source.hit.start_line,
                end_line=source.hit.end_line,
                page=source.hit.page,
                heading_path=source.hit.heading_path,
                score=source.hit.score,
                kv=source.kv,
                text=source.hit.text,
                display_path=display_path(source.hit.path, roots),
                locator=source.hit.locator,
            )
            for source in prepared.sources
        ]

    def index(self, paths: Sequence[Path], progress: ProgressCallback) -> IndexReport:
        """Index folders (all known ones when `paths` is empty), keeping each chunk's KV."""
        store = self.session.kv_store
        assert store is not None
        # a kept chat context would make every embedding decode of the run span its cells
        self.engine.reset()
        embedder = KvSavingEmbedder(self.engine, store)
        options = {
            "model_path": str(self.engine.path),
            "recipe": self.engine.recipe.name,
            "limits": load_index_limits(),
            "selection": load_index_settings().selection,
        }
        if paths:
            report = index_paths(self.session.db, embedder, paths, progress=progress, **options)
        else:
            report = index_known_roots(self.session.db, embedder, progress=progress, **options)
        store.sweep_orphans()
        store.reconcile()
        return report

    def close(self) -> None:
        self.session.close()
