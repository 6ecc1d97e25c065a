"""What the indexer does to a file before the model sees it: read, hash, decide, parse, chunk.

This runs on the preparing thread (prepared_queue.py) while the model embeds earlier files,
so it must not touch the run's database connection: that belongs to the thread that embeds
and writes, and may be mid-transaction at any moment. Each file's verdict (chunks to embed,
a skip, a touched or a moved file) is handed back as a `PreparedFile` for that thread to
store. The one write made here is the mark of a parse running long, which must reach the
disk while the parse runs (so a Ctrl-C during it still leaves the mark): `ParseMarks` makes
it through a connection of its own.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import PurePosixPath
from typing import Literal

import apsw

from gritdesk.ingest.chunk import Chunk, ChunkingPolicy, chunk_document
from gritdesk.ingest.document import ParsedDocument, SkipFile, UnindexableFile
from gritdesk.ingest.file_selection import FileSelection
from gritdesk.ingest.parser_process import ParserProcess
from gritdesk.ingest.scan import (
    Stamp,
    judged_by_selection,
    parse_interrupted,
    read_regular_file,
    skip_reason_unread,
)
from gritdesk.ingest.walk import FoundFile
from gritdesk.runtime.protocols import TokenCounter
from gritdesk.store.connection import open_database
from gritdesk.store.sources import (
    FileStamp,
    Root,
    SourceState,
    clear_parse_attempt,
    mark_parse_attempt,
)

SLOW_PARSE_S = 1.0  # a parse running this long is recorded as attempted (see ParseMarks)


@dataclass
class FileJob:
    """A file the scan found new or changed, with what the index knew of it."""

    scope_root: Root
    found: FoundFile
    known: SourceState | None


Verdict = Literal["chunked", "unindexable", "touched", "moved"]


@dataclass
class PreparedFile:
    """One file, ready for the thread that embeds and stores.

    `chunked`: `chunks` to embed and write; `unindexable`: record `reason` with `status`;
    `touched`: same bytes as indexed, only the stamp is new; `moved`: the bytes of the
    vanished source `moved_from`, whose chunks it keeps. `clear_attempt`: an earlier run's
    parse attempt of this file is to be removed (the verdict's record replaces it)."""

    job: FileJob
    stamp: FileStamp
    verdict: Verdict
    chunks: list[Chunk] = field(default_factory=list)
    reason: str = ""
    status: Literal["skipped", "error"] = "skipped"
    moved_from: int | None = None
    clear_attempt: bool = False
    seconds: float = 0.0  # reading, parsing and chunking it

    @cached_property
    def text_bytes(self) -> int:
        """What its chunks hold in memory, roughly: the measure the hand-off is bounded by."""
        return sum(len(chunk.text) + len(chunk.embedding_text) for chunk in self.chunks)


def kind_suffix(rel_path: str) -> str:
    return PurePosixPath(rel_path).suffix.lower()


def rename_candidates(vanished: Iterable[SourceState], chunking: str) -> dict[tuple[str, str], int]:
    """Vanished sources a new file may be a rename of: same bytes, same kind of file."""
    return {
        (state.content_hash, kind_suffix(state.rel_path)): state.id
        for state in vanished
        if state.status == "indexed" and state.content_hash and state.chunking == chunking
    }


class ParseMarks:
    """Marks a parse that runs past SLOW_PARSE_S, so that if the user stops gritdesk during
    it the next run skips the file (until it changes) instead of hanging on it again.

    Written through its own connection to the database file, opened on the first slow
    parse: the run's connection may be inside another thread's transaction. A database in
    memory has no next run, so nothing is marked there."""

    def __init__(self, db_path: str) -> None:
        self.db_path = db_path if db_path not in ("", ":memory:") else None
        self._conn: apsw.Connection | None = None

    def mark(self, root: Root, found: FoundFile) -> None:
        if self.db_path is not None:
            stamp = (found.size, found.mtime_ns, found.ctime_ns)
            mark_parse_attempt(self._connection(), root.id, found.rel_path, *stamp)

    def clear(self, root: Root, found: FoundFile) -> None:
        if self.db_path is not None:
            clear_parse_attempt(self._connection(), root.id, found.rel_path)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connection(self) -> apsw.Connection:
        if self._conn is None:
            assert self.db_path is not None
            self._conn = open_database(self.db_path)
        return self._conn


class FilePreparer:
    """Prepares the run's files one at a time (from one thread only: the parser worker and
    the rename candidates are its own while the run lasts)."""

    def __init__(
        self,
        *,
        parser: ParserProcess,
        counter: TokenCounter,
        policy: ChunkingPolicy,
        selection: FileSelection,
        chunking: str,
        attempts: dict[tuple[int, str], Stamp],
        renames: dict[tuple[str, str], int],
        marks: ParseMarks,
    ) -> None:
        self.parser = parser
        self.counter = counter
        self.policy = policy
        self.selection = selection
        self.chunking = chunking
        self.attempts = attempts
        self.renames = renames
        self.marks = marks
        self.max_file_bytes = parser.limits.file_bytes
        self.stopping = threading.Event()  # set by the run when it stops early

    def prepare(self, job: FileJob) -> PreparedFile:
        started = time.monotonic()
        prepared = self._prepare(job)
        prepared.seconds = time.monotonic() - started
        return prepared

    def _prepare(self, job: FileJob) -> PreparedFile:
        found, root = job.found, job.scope_root
        stamp = FileStamp(found.size, found.mtime_ns, None, found.ctime_ns, self.chunking)
        attempt = self.attempts.pop((root.id, found.rel_path), None)
        had_attempt = attempt is not None
        try:
            reason = skip_reason_unread(found, self.selection, self.max_file_bytes)
            if reason:
                raise SkipFile(reason)
            if parse_interrupted(found, attempt):
                raise SkipFile(
                    "parsing was interrupted on an earlier run after over "
                    f"{SLOW_PARSE_S:g} s; not retried until the file changes"
                )
            data = read_regular_file(found.path, self.max_file_bytes, found.identity)
            content_hash = hashlib.sha256(data).hexdigest()
            stamp = FileStamp(
                found.size, found.mtime_ns, content_hash, found.ctime_ns, self.chunking
            )
            reason = self.selection.reason_by_content(found.rel_path, found.size, data)
            if reason:
                raise SkipFile(reason)

            known = job.known
            if (
                known
                and known.content_hash == content_hash
                and known.status != "error"
                and known.chunking == self.chunking
                and not judged_by_selection(known)
            ):
                return PreparedFile(job, stamp, "touched", clear_attempt=had_attempt)
            if known is None:
                moved_from = self.renames.pop((content_hash, kind_suffix(found.rel_path)), None)
                if moved_from is not None:
                    return PreparedFile(
                        job, stamp, "moved", moved_from=moved_from, clear_attempt=had_attempt
                    )

            document = self._parse(root, found, data)
            chunks = chunk_document(document, self.counter, self.policy)
            if not chunks:
                raise SkipFile("no text content")
        except UnindexableFile as exc:
            return PreparedFile(
                job, stamp, "unindexable", reason=exc.reason, status=exc.status,
                clear_attempt=had_attempt,
            )  # fmt: skip
        except Exception as exc:  # a parser bug on one odd file must not stop the run
            return PreparedFile(
                job, stamp, "unindexable", reason=f"{type(exc).__name__}: {exc}",
                status="error", clear_attempt=had_attempt,
            )  # fmt: skip
        return PreparedFile(job, stamp, "chunked", chunks=chunks, clear_attempt=had_attempt)

    def _parse(self, root: Root, found: FoundFile, data: bytes) -> ParsedDocument:
        """Parse in the bounded worker; a parse still running after SLOW_PARSE_S is marked
        (ParseMarks) and the mark removed once it ends, unless the run was stopped during
        it: then the mark stays, for the next run to see."""
        marked = []

        def mark() -> None:
            self.marks.mark(root, found)
            marked.append(True)

        try:
            return self.parser.parse(found.rel_path, data, on_slow=mark, slow_after_s=SLOW_PARSE_S)
        finally:
            if marked and not self.stopping.is_set():
                self.marks.clear(root, found)
