"""A backend that answers from a script, for screens whose looks or error paths are tested
without a model: fixed sources, fixed pieces, fixed timings."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from gritdesk.errors import GritdeskError
from gritdesk.ingest.indexer import IndexReport, ProgressCallback
from gritdesk.rag.answer import AnswerTimings, AskOptions, PreparedAnswer
from gritdesk.rag.ask_service import Answer, earlier_questions, fit_history
from gritdesk.rag.evidence import Evidence
from gritdesk.rag.layouts import CacheMode, Placement
from gritdesk.runtime.engine import ChatTurn
from gritdesk.store.citations import Citation
from gritdesk.store.connection import open_database
from gritdesk.store.model_record import ModelRecord, bind_model
from gritdesk.store.sources import ChunkRow, FileStamp, add_root, replace_source_chunks
from gritdesk.tui.backend import ModelLabel

ANSWER = (
    "Hotel costs are refunded up to **140 euros a night** in Europe [1].\n\n"
    "Keep every receipt:\n\n```sh\ngritdesk ask 'travel receipts'\n```\n"
)
SOURCES = [
    Citation(
        1,
        "/corpus/travel-policy.md",
        8,
        13,
        None,
        "Travel policy > Expenses",
        0.0328,
        "cached",
        "## Expenses\n\nHotel costs are refunded up to 140 euros a night in Europe.",
        "corpus/travel-policy.md",
    ),
    Citation(
        2,
        "/corpus/onboarding.txt",
        1,
        10,
        None,
        "",
        0.0310,
        "computed",
        "Welcome! Your first week: laptop, accounts, travel card.",
        "corpus/onboarding.txt",
    ),
]
TIMINGS = AnswerTimings(
    retrieval_ms=12.0,
    first_token_ms=30.0,
    generated_tokens=24,
    tokens_per_second=42.0,
    kv_hits=1,
    kv_misses=1,
)


def split_pieces(text: str, size: int = 6) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


class ScriptedBackend:
    """Answers every question with `answer`, in pieces, `delay_s` apart."""

    def __init__(
        self,
        db_path: Path,
        *,
        answer: str = ANSWER,
        sources: Sequence[Citation] = SOURCES,
        delay_s: float = 0.0,
        fail_with: Exception | None = None,
        check: Callable[[], None] | None = None,
        evidence: Sequence[tuple[int, str]] = (),  # (source number, sentence)
        not_found: Sequence[str] = (),
    ) -> None:
        self.db_path = db_path
        self.model = ModelLabel("GritLM-7B", "Q4_K_M")
        self.pair_mode = False
        self.default_cache_mode = CacheMode.DOC
        self.notices: list[str] = []
        self.lock = threading.Lock()
        self.answer = answer
        self.sources = list(sources)
        self.delay_s = delay_s
        self.fail_with = fail_with
        self.check = check
        self.evidence = list(evidence)
        self.not_found = list(not_found)
        self.questions: list[tuple[str, list[ChatTurn], list[str]]] = []
        self.closed = False

    def check_index(self) -> None:
        if self.check is not None:
            self.check()

    def prepare(
        self, question: str, options: AskOptions, history: Sequence[ChatTurn]
    ) -> PreparedAnswer:
        """The answering service's history rules, without a model: records what retrieval
        and generation would see."""
        earlier = earlier_questions(history)

        def prepare(turns: list[ChatTurn]) -> PreparedAnswer:
            self.questions.append((question, list(turns), list(earlier)))
            return PreparedAnswer(question, options, [], turns)

        return fit_history(prepare, history)

    def stream(self, prepared: PreparedAnswer, should_stop: Callable[[], bool]) -> Iterator[str]:
        for i, piece in enumerate(split_pieces(self.answer)):
            if should_stop():
                prepared.finish_reason = "cancelled"
                return
            if self.fail_with is not None and i == 2:
                raise self.fail_with
            time.sleep(self.delay_s)
            yield piece
        prepared.timings = TIMINGS
        prepared.finish_reason = "stop"

    def cite(self, prepared: PreparedAnswer) -> list[Citation]:
        return list(self.sources)

    def result(self, prepared: PreparedAnswer) -> Answer:
        """The scripted answer, with evidence only where a test scripts it."""
        return Answer(
            prepared.question,
            self.answer,
            prepared.finish_reason,
            CacheMode.DOC,
            Placement.CONSECUTIVE,
            list(self.sources),
            timings=prepared.timings,
            evidence=[Evidence(self.sources[n - 1], text, None) for n, text in self.evidence],
            not_found=list(self.not_found),
        )

    def index(self, paths: Sequence[Path], progress: ProgressCallback) -> IndexReport:
        raise GritdeskError("the scripted backend does not index")

    def close(self) -> None:
        self.closed = True


def fill_index(db_path: Path) -> None:
    """A small index with fixed contents (2 files, 3 chunks), no model needed."""
    db = open_database(db_path)
    dim = 8
    bind_model(db, ModelRecord("0" * 32, "/models/scripted.gguf", dim, "gritlm"))
    root = add_root(db, "/corpus")
    vectors = np.eye(dim, dtype=np.float32)
    files = {"travel-policy.md": ["Hotel costs", "Meals"], "onboarding.txt": ["Welcome"]}
    for rel_path, texts in files.items():
        rows = [
            ChunkRow(i, text, i + 1, i + 1, None, "", 2, f"hash-{rel_path}-{i}")
            for i, text in enumerate(texts)
        ]
        stamp = FileStamp(10, 1, f"content-{rel_path}")
        replace_source_chunks(db, root.id, rel_path, stamp, rows, vectors[: len(rows)], dim)
    db.close()
