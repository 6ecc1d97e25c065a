"""What the chat app needs from an opened index and its model.

A protocol, so screens can be driven by a scripted backend in snapshot tests; the real
`IndexBackend` is a thin layer over `Session` and `AskService`, the answering service
`gritdesk ask`, the server and MCP use too. The engine is not thread-safe: every caller
holds `lock` around engine work.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import gguf

from gritdesk.ingest.indexer import IndexReport, ProgressCallback
from gritdesk.models.model_info import quantization_name
from gritdesk.rag.answer import AskOptions, PreparedAnswer
from gritdesk.rag.ask_service import Answer, AskService
from gritdesk.rag.index_service import IndexService
from gritdesk.rag.layouts import CacheMode
from gritdesk.runtime.engine import ChatTurn
from gritdesk.runtime.engine_settings import describe_gpu_layers
from gritdesk.session import Session, open_session
from gritdesk.settings import Settings
from gritdesk.store.citations import Citation
from gritdesk.store.model_record import ModelRecord, check_model
from gritdesk.store.sources import display_path as printable_root


@dataclass(frozen=True)
class ModelLabel:
    """What the status line says about the model: its name, quantization and GPU layers."""

    name: str
    quantization: str
    embedder: str = ""  # pair mode: the model that finds the passages
    gpu_layers: str = ""  # `describe_gpu_layers` of the answering model

    def __str__(self) -> str:
        found_by = f" · passages: {self.embedder}" if self.embedder else ""
        gpu = f" · GPU layers: {self.gpu_layers}" if self.gpu_layers else ""
        return f"{self.name} {self.quantization}{gpu}{found_by}"


class ChatBackend(Protocol):
    db_path: Path
    model: ModelLabel  # the model that answers
    pair_mode: bool  # a second model answers; it computes chunk KV on first use
    default_cache_mode: CacheMode  # what a question gets unless the user chose a mode
    notices: list[str]  # said once when the backend is ready
    lock: threading.Lock

    def check_index(self) -> None:
        """Raise EmptyIndexError, ModelMismatchError or EmbeddingOnlyModelError when
        questions cannot be answered."""

    def prepare(
        self, question: str, options: AskOptions, history: Sequence[ChatTurn]
    ) -> PreparedAnswer:
        """Retrieve with the conversation's last questions and fit as many recent turns as
        the context holds (`AskService.prepare`)."""

    def stream(
        self, prepared: PreparedAnswer, should_stop: Callable[[], bool]
    ) -> Iterator[str]: ...

    def cite(self, prepared: PreparedAnswer) -> list[Citation]: ...

    def result(self, prepared: PreparedAnswer) -> Answer:
        """The finished answer with its evidence sentences and unfound facts."""

    def index(self, paths: Sequence[Path], progress: ProgressCallback) -> IndexReport: ...

    def close(self) -> None: ...


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
    """A `Session` with its model(s) loaded, answering through `AskService`; with `root`
    (`gritdesk chat --root`), answering from the files under that folder only."""

    def __init__(self, session: Session, root: Path | None = None) -> None:
        assert session.engine is not None
        self.session = session
        self.service = AskService(session)
        self.scope = self.service.scope(root)
        self.engine = session.engine
        self.db_path = session.db_path
        self.lock = threading.Lock()
        self.pair_mode = session.pair_mode
        self.default_cache_mode = self.service.default_cache_mode
        self.notices = list(session.notices)
        answers = session.chat_engine or self.engine
        self.model = model_label(answers.path, answers.summary.name, answers.summary.file_type)
        self.model = replace(
            self.model, gpu_layers=describe_gpu_layers(answers.gpu_layers, answers.n_layer)
        )
        if session.chat_engine is not None:
            self.model = replace(self.model, embedder=self.engine.summary.name)
        if self.scope is not None:
            self.notices.append(f"Answering from {printable_root(self.scope.folder)} only (--root)")

    @classmethod
    def open(cls, settings: Settings, root: Path | None = None) -> IndexBackend:
        """Open the index and load its model (seconds for a 7B model: call from a worker)."""
        session = open_session(settings, load_model=True)
        try:
            return cls(session, root)
        except BaseException:
            session.close()
            raise

    def check_index(self) -> None:
        check_model(self.session.db, ModelRecord.of(self.engine))
        self.session.require_answering_model()

    def prepare(
        self, question: str, options: AskOptions, history: Sequence[ChatTurn]
    ) -> PreparedAnswer:
        if self.scope is not None:
            options = replace(options, scope=self.scope)
        return self.service.prepare(question, options, history)

    def stream(self, prepared: PreparedAnswer, should_stop: Callable[[], bool]) -> Iterator[str]:
        return self.service.stream(prepared, should_stop=should_stop)

    def cite(self, prepared: PreparedAnswer) -> list[Citation]:
        return self.service.citations(prepared)

    def result(self, prepared: PreparedAnswer) -> Answer:
        return self.service.result(prepared)

    def index(self, paths: Sequence[Path], progress: ProgressCallback) -> IndexReport:
        """Index folders (all known ones when `paths` is empty), keeping each chunk's KV."""
        # a kept chat context would make every embedding decode of the run span its cells
        self.engine.reset()
        return IndexService.of_session(self.session).run(paths, progress)

    def close(self) -> None:
        self.session.close()
