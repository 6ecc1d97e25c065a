"""The next files are read, parsed and chunked while the model embeds (issue 23, step 4):
the overlap is real, its lookahead bounded, and a failure or a stop on either side neither
hangs nor loses what was stored."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import pytest

from gritdesk.ingest.chunk import Chunk, ChunkingPolicy
from gritdesk.ingest.indexer import IndexOptions, IndexProgress, index_paths
from gritdesk.ingest.parse import parse_document
from gritdesk.ingest.parser_process import ParserProcess
from gritdesk.ingest.prepare import FileJob, FilePreparer, PreparedFile
from gritdesk.ingest.prepared_queue import PreparationFailed, PreparedFiles
from gritdesk.ingest.walk import FoundFile
from gritdesk.store.connection import open_database
from gritdesk.store.sources import FileStamp, Root
from ingest.fake_embedder import BagOfWordsEmbedder
from ingest.fixture_files import write_corpus
from ingest.index_content import assert_index_consistent, index_snapshot

T = TypeVar("T")
STEP_S = 0.25  # one parse, one embedding call
FILES = 8


def within(seconds: float, call: Callable[[], T]) -> T:
    """`call()`, failing the test instead of hanging it."""
    pool = ThreadPoolExecutor(1)
    try:
        return pool.submit(call).result(timeout=seconds)
    finally:
        pool.shutdown(wait=False)  # a hung call is left behind, not waited for


def preparing_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "gritdesk-prepare"]


class SleepingEmbedder(BagOfWordsEmbedder):
    """Each call takes STEP_S of wall time without holding the GIL, like llama.cpp's."""

    def __init__(self) -> None:
        super().__init__()
        self.slept = 0.0

    def embed_documents(self, texts):
        time.sleep(STEP_S)
        self.slept += STEP_S
        return super().embed_documents(texts)


def test_parsing_runs_while_the_model_embeds(tmp_path: Path, monkeypatch) -> None:
    """One chunk per file, one embedding call per file: done one after the other the run
    takes FILES * 2 * STEP_S; overlapped, about (FILES + 1) * STEP_S."""
    root = tmp_path / "notes"
    root.mkdir()
    for i in range(FILES):
        (root / f"n{i}.md").write_text(f"# Note {i}\n\nA short note about kettle {i}.\n")
    parsed = []

    def slow_parse(self, rel_path, data, on_slow=None, slow_after_s=1.0):
        time.sleep(STEP_S)  # a parser worker's round trip: the GIL is free meanwhile
        parsed.append(rel_path)
        return parse_document(rel_path, data)

    monkeypatch.setattr(ParserProcess, "parse", slow_parse)
    monkeypatch.setattr(ParserProcess, "start", lambda self: None)
    embedder = SleepingEmbedder()
    db = open_database(tmp_path / "index.db")

    started = time.monotonic()
    report = within(60, lambda: index_paths(db, embedder, [root], IndexOptions(batch_chunks=1)))
    wall = time.monotonic() - started

    assert report.indexed == FILES and embedder.document_calls == [1] * FILES
    serial = len(parsed) * STEP_S + embedder.slept
    assert serial == pytest.approx(FILES * 2 * STEP_S)
    assert wall < 0.75 * serial, f"{wall:.2f} s: parsing did not overlap embedding ({serial} s)"


def test_a_failure_on_the_preparing_thread_names_the_file_and_keeps_the_rest(
    tmp_path: Path, monkeypatch
) -> None:
    root = tmp_path / "corpus"
    write_corpus(root, 12, seed=3)
    real_prepare = FilePreparer.prepare
    bad: list[str] = []
    prepared: list[str] = []

    def prepare(self: FilePreparer, job: FileJob) -> PreparedFile:
        if len(bad) == 0 and len(prepared) == 5:  # the sixth file
            bad.append(job.found.rel_path)
            raise RuntimeError("a bug outside the file's own handling")
        prepared.append(job.found.rel_path)
        return real_prepare(self, job)

    monkeypatch.setattr(FilePreparer, "prepare", prepare)
    db = open_database(tmp_path / "index.db")
    policy = ChunkingPolicy(target_tokens=48, overlap_tokens=8)
    options = IndexOptions(policy=policy, batch_chunks=4)
    with pytest.raises(PreparationFailed) as raised:
        within(60, lambda: index_paths(db, BagOfWordsEmbedder(), [root], options))
    assert bad and bad[0] in str(raised.value)
    assert isinstance(raised.value.__cause__, RuntimeError)
    assert not preparing_threads()
    assert_index_consistent(db)
    stored = {rel for (rel,) in db.execute("SELECT rel_path FROM sources")}
    assert stored and stored <= set(prepared)  # some files before it, nothing after it

    monkeypatch.setattr(FilePreparer, "prepare", real_prepare)
    within(60, lambda: index_paths(db, BagOfWordsEmbedder(), [root], options))
    reference = open_database(tmp_path / "reference.db")
    index_paths(reference, BagOfWordsEmbedder(), [root], options)
    assert index_snapshot(db) == index_snapshot(reference)


class Cancelled(Exception):
    pass


def test_a_cancelled_run_stops_the_preparing_thread(tmp_path: Path) -> None:
    """The chat app cancels by raising from the progress callback: the thread ends, what was
    written stays whole, and the next run finishes the job."""
    root = tmp_path / "corpus"
    write_corpus(root, 16, seed=8)
    db = open_database(tmp_path / "index.db")
    options = IndexOptions(
        policy=ChunkingPolicy(target_tokens=48, overlap_tokens=8), batch_chunks=4
    )
    files_done = []

    def progress(update: IndexProgress) -> None:
        files_done.append(update.files_done)
        if update.files_done >= 4:
            raise Cancelled

    with pytest.raises(Cancelled):
        within(60, lambda: index_paths(db, SleepingEmbedder(), [root], options, progress=progress))
    assert not preparing_threads()
    assert_index_consistent(db)
    report = within(120, lambda: index_paths(db, BagOfWordsEmbedder(), [root], options))
    assert report.unchanged >= 1 and report.indexed >= 1
    reference = open_database(tmp_path / "reference.db")
    index_paths(reference, BagOfWordsEmbedder(), [root], options)
    assert index_snapshot(db) == index_snapshot(reference)


# --- the bound ---------------------------------------------------------------------------


class _Parser:
    def interrupt(self) -> None:
        pass


class _Marks:
    def close(self) -> None:
        pass


class _CountingPreparer:
    """Prepares each job into `sizes[i]` chunks of `text_bytes` characters, instantly."""

    def __init__(self, sizes: list[int], text_bytes: int = 10) -> None:
        self.sizes = sizes
        self.text = "x" * text_bytes
        self.stopping = threading.Event()
        self.parser = _Parser()
        self.marks = _Marks()

    def prepare(self, job: FileJob) -> PreparedFile:
        count = self.sizes[int(job.found.rel_path)]
        chunks = [Chunk(i, self.text, None, None, None, (), 1) for i in range(count)]
        return PreparedFile(job, FileStamp(None, None, None), "chunked", chunks=chunks)


def _jobs(count: int) -> list[FileJob]:
    root = Root(1, "/r")
    return [FileJob(root, FoundFile(str(i), Path(f"/r/{i}"), 1, 0, 0), None) for i in range(count)]


def _drain(prepared: PreparedFiles) -> list[int]:
    """Take the files slowly, so the thread fills the hand-off to its bound."""
    taken = []
    for file in prepared:
        time.sleep(0.01)
        taken.append(int(file.job.found.rel_path))
    return taken


def test_the_lookahead_is_bounded_by_chunks_and_a_large_file_goes_alone() -> None:
    sizes = [3] * 30 + [50] + [3] * 10
    preparer = _CountingPreparer(sizes)
    with PreparedFiles(preparer, _jobs(len(sizes)), max_chunks=12) as prepared:  # type: ignore[arg-type]
        assert within(30, lambda: _drain(prepared)) == list(range(len(sizes)))
    assert prepared.peak_chunks == 50  # the large file, let through alone
    preparer = _CountingPreparer([3] * 40)
    with PreparedFiles(preparer, _jobs(40), max_chunks=12) as prepared:  # type: ignore[arg-type]
        within(30, lambda: _drain(prepared))
    assert 9 <= prepared.peak_chunks <= 12


def test_the_lookahead_is_bounded_by_bytes() -> None:
    preparer = _CountingPreparer([2] * 30, text_bytes=1000)  # ~4 kB a file (text + embedded)
    with PreparedFiles(preparer, _jobs(30), max_chunks=10_000, max_bytes=10_000) as prepared:  # type: ignore[arg-type]
        within(30, lambda: _drain(prepared))
    assert 0 < prepared.peak_chunks <= 4  # two files of 4 kB fit in 10 kB, three do not
