"""Bring the index up to date with folders on disk: incremental, resumable, crash-safe.

A run has two phases. The scan (scan.py, the estimate's too) walks every root and
compares each file's stat with what the index holds: an unchanged file costs one stat.
The update then reads the changed and new files (hashing them: a touched file with the
same bytes only gets its new stat recorded; a new file whose bytes match a vanished one
is a rename and keeps its chunks), parses and chunks them on a thread of its own
(prepare.py, prepared_queue.py) while this one embeds the files before them, batching
chunks of several files per `embed_documents` call, and writes each file's chunks in one
transaction of its own. Files that vanished are removed last.

Because the source row (with its stat and hash) changes in the same transaction as
its chunks, a run killed at any point leaves each file either fully old or fully
new, and the next run redoes exactly the files it had not finished.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import apsw
import numpy as np

from gritdesk.ingest.chunk import Chunk, ChunkingPolicy, chunking_signature
from gritdesk.ingest.file_selection import FileSelection
from gritdesk.ingest.parser_process import ParseLimits, ParserProcess
from gritdesk.ingest.prepare import (
    FileJob,
    FilePreparer,
    ParseMarks,
    PreparedFile,
    rename_candidates,
)
from gritdesk.ingest.prepared_queue import LOOKAHEAD_BATCHES, PreparedFiles
from gritdesk.ingest.scan import Scope, ScopeScan, Stamp, database_files, scope_of
from gritdesk.ingest.walk import FoundFile, SkippedPath
from gritdesk.runtime.errors import NonFiniteOutputError
from gritdesk.runtime.protocols import DocumentEmbedder
from gritdesk.store.index_throughput import record_throughput
from gritdesk.store.model_record import ModelRecord, bind_model
from gritdesk.store.sources import (
    ChunkRow,
    FileStamp,
    Root,
    SourceState,
    clear_parse_attempt,
    display_path,
    list_roots,
    move_source,
    record_unindexed_source,
    remove_sources,
    replace_source_chunks,
    root_containing,
    update_source_stamp,
)
from gritdesk.store.vectors import embeddings_by_text_hash

DEFAULT_BATCH_CHUNKS = 16


# --- what callers see ------------------------------------------------------------------


@dataclass(frozen=True)
class SkippedFile:
    path: str  # absolute
    reason: str
    status: Literal["skipped", "error"] = "skipped"


@dataclass(frozen=True)
class SlowFile:
    path: str  # absolute
    seconds: float  # reading, parsing and chunking it (on the preparing thread, overlapping
    # other files' embedding), plus its share of embedding time
    chunks: int
    tokens: int


SLOWEST_LISTED = 10


@dataclass
class IndexReport:
    roots: list[str] = field(default_factory=list)
    indexed: int = 0  # files whose chunks were (re)written this run
    unchanged: int = 0  # includes touched files whose bytes had not changed
    renamed: int = 0  # moved files whose chunks were kept
    removed: int = 0
    skipped: list[SkippedFile] = field(default_factory=list)  # every skip under the roots
    ignored: int = 0  # hidden, gitignored and junk paths left out
    chunks_written: int = 0
    chunks_embedded: int = 0  # chunks_written minus those whose embedding was reused
    tokens_embedded: int = 0
    elapsed_s: float = 0.0
    slowest: list[SlowFile] = field(default_factory=list)  # the files that took longest

    @property
    def errors(self) -> list[SkippedFile]:
        return [s for s in self.skipped if s.status == "error"]

    def as_dict(self) -> dict:
        return asdict(self)


Phase = Literal["scanning", "indexing", "removing", "done"]


@dataclass(frozen=True)
class IndexProgress:
    """A snapshot for a progress bar; sent after the scan, after each file and embed batch."""

    phase: Phase
    files_total: int  # files to read this run (new or changed since the last run)
    files_done: int
    bytes_total: int
    bytes_done: int
    chunks_done: int
    tokens_done: int
    elapsed_s: float
    current_path: str | None = None
    current_share: float | None = None  # the current file's share of the run's bytes
    tokens_expected: int | None = None  # the estimate's tokens for the run, if one was made

    @property
    def tokens_per_s(self) -> float:
        return self.tokens_done / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        """Seconds left: the estimate's tokens still to embed at the tokens/s measured so far
        (else bytes left at the bytes/s so far); None before there is a rate."""
        if self.tokens_expected and self.tokens_done > 0 and self.elapsed_s > 0:
            left = max(self.tokens_expected - self.tokens_done, 0)
            return left / self.tokens_per_s
        if self.bytes_done <= 0 or self.bytes_total <= self.bytes_done:
            return None if self.bytes_done <= 0 else 0.0
        return self.elapsed_s * (self.bytes_total - self.bytes_done) / self.bytes_done


ProgressCallback = Callable[[IndexProgress], None]


# --- the run ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class IndexOptions:
    """How a run indexes, whichever entry point starts it: the model name and recipe it
    records, chunking, batch size, the per-file `limits` (size, parse time, memory,
    output) and the `selection` of data files and vendored folders to skip."""

    model_path: str | None = None
    recipe: str | None = None
    policy: ChunkingPolicy = field(default_factory=ChunkingPolicy)
    batch_chunks: int = DEFAULT_BATCH_CHUNKS
    limits: ParseLimits = field(default_factory=ParseLimits)
    selection: FileSelection = field(default_factory=FileSelection)


def index_paths(
    db: apsw.Connection,
    embedder: DocumentEmbedder,
    paths: Iterable[str | os.PathLike],
    options: IndexOptions | None = None,
    *,
    progress: ProgressCallback | None = None,
    expected_tokens: int | None = None,
) -> IndexReport:
    """Index (or bring up to date) each path: a folder becomes a root, a file is indexed in
    its folder's root, a vanished path under a known root is removed from the index.

    Raises ModelMismatchError when the index was built with another model, and
    FileNotFoundError for a path that neither exists nor lies under a known root.
    `expected_tokens` (the estimate's) gives progress its ETA at the measured tokens/s.
    """
    options = options or IndexOptions()
    model = bind_model(db, ModelRecord.of(embedder, options.model_path, options.recipe))
    scopes = [_resolve_scope(db, Path(p)) for p in paths]
    return _run(db, embedder, model, scopes, options, progress, expected_tokens)


def index_changed_paths(
    db: apsw.Connection,
    embedder: DocumentEmbedder,
    paths: Iterable[str | os.PathLike],
    options: IndexOptions | None = None,
    *,
    progress: ProgressCallback | None = None,
) -> IndexReport:
    """Bring paths reported changed under known roots up to date (`index --watch`).

    Unlike `index_paths`, a path is never resolved into a new root: a symlink
    created inside a root is judged by the walk's own rule (never out of the root),
    and a path outside every known root is ignored.
    """
    options = options or IndexOptions()
    model = bind_model(db, ModelRecord.of(embedder, options.model_path, options.recipe))
    scopes = [scope for p in paths if (scope := _scope_in_known_root(db, Path(p))) is not None]
    return _run(db, embedder, model, scopes, options, progress)


def index_known_roots(
    db: apsw.Connection,
    embedder: DocumentEmbedder,
    options: IndexOptions | None = None,
    *,
    progress: ProgressCallback | None = None,
    expected_tokens: int | None = None,
) -> IndexReport:
    """Update every root the index knows (`gritdesk index` with no path; after --rebuild).

    Each root is taken as recorded, not looked up again by path: a root that is gone
    (an unmounted drive) is then reported and kept, never an error for the others.
    """
    options = options or IndexOptions()
    model = bind_model(db, ModelRecord.of(embedder, options.model_path, options.recipe))
    scopes = [Scope(root, None) for root in list_roots(db)]
    return _run(db, embedder, model, scopes, options, progress, expected_tokens)


def _run(
    db: apsw.Connection,
    embedder: DocumentEmbedder,
    model: ModelRecord,
    scopes: list[Scope],
    options: IndexOptions,
    progress: ProgressCallback | None,
    expected_tokens: int | None = None,
) -> IndexReport:
    with ParserProcess(options.limits) as parser:
        run = _IndexRun(db, embedder, model, options.policy, options.batch_chunks, parser)
        run.selection = options.selection
        run.expected_tokens = expected_tokens
        run.progress_callback = progress
        return run.execute(scopes)


@dataclass
class _PendingFile:
    job: FileJob
    stamp: FileStamp
    chunks: list[Chunk]
    vectors: list[np.ndarray | None]


def _resolve_scope(db: apsw.Connection, path: Path) -> Scope:
    """Which root (registering a new one if needed) and which part of it `path` means."""
    absolute = Path(os.path.abspath(path.expanduser()))
    if not absolute.exists():  # vanished (or a dangling symlink): only meaningful in a root
        gone = Path(os.path.realpath(absolute.parent)) / absolute.name
        root = root_containing(db, str(gone))
        if root is None:
            raise FileNotFoundError(f"{path}: no such file or folder")
        return Scope.at(root, gone)
    return scope_of(db, absolute.resolve(), register=True)


def _scope_in_known_root(db: apsw.Connection, path: Path) -> Scope | None:
    """The root and part of it a reported path means, its last component unresolved."""
    absolute = Path(os.path.abspath(path))
    located = Path(os.path.realpath(absolute.parent)) / absolute.name
    root = root_containing(db, str(located))
    return None if root is None else Scope.at(root, located)


class _IndexRun:
    def __init__(
        self,
        db: apsw.Connection,
        embedder: DocumentEmbedder,
        model: ModelRecord,
        policy: ChunkingPolicy,
        batch_chunks: int,
        parser: ParserProcess,
    ) -> None:
        self.db = db
        self.embedder = embedder
        self.model = model
        self.policy = policy
        self.batch_chunks = max(1, batch_chunks)
        self.parser = parser
        self.attempts: dict[tuple[int, str], Stamp] = {}
        self.progress_callback: ProgressCallback | None = None
        self.report = IndexReport()
        self.started = time.monotonic()
        self.pending: list[_PendingFile] = []
        self.files_total = self.files_done = self.bytes_total = self.bytes_done = 0
        self.exclude = database_files(db)
        self.chunking = chunking_signature(policy, embedder)
        self.selection = FileSelection()
        self.expected_tokens: int | None = None
        self.file_seconds: dict[tuple[str, str], float] = {}  # (root, rel) -> seconds so far

    # -- phases --

    def execute(self, scopes: Sequence[Scope]) -> IndexReport:
        jobs: list[FileJob] = []
        vanished: dict[int, tuple[Root, SourceState]] = {}
        for scope in scopes:
            if scope.root.path not in self.report.roots:
                self.report.roots.append(scope.root.path)
            scope_jobs, scope_vanished = self._scan(scope)
            jobs.extend(scope_jobs)
            vanished.update({state.id: (scope.root, state) for state in scope_vanished})
        jobs = _dedupe_jobs(jobs)
        if jobs:
            self.parser.start()  # boots while the first files are read and hashed
        self.files_total = len(jobs)
        self.bytes_total = sum(job.found.size for job in jobs)
        self._notify("scanning")

        preparer = FilePreparer(
            parser=self.parser,
            counter=self.embedder,
            policy=self.policy,
            selection=self.selection,
            chunking=self.chunking,
            attempts=self.attempts,
            renames=rename_candidates((state for _, state in vanished.values()), self.chunking),
            marks=ParseMarks(self.db.filename),
        )
        lookahead = LOOKAHEAD_BATCHES * self.batch_chunks
        with PreparedFiles(preparer, jobs, max_chunks=lookahead) as prepared:
            for file in prepared:
                self._take(file, vanished)
        self._flush()

        self._notify("removing")
        remove_sources(self.db, list(vanished))
        self.report.removed += len(vanished)
        self.report.elapsed_s = time.monotonic() - self.started
        record_throughput(  # the next run's estimate (see estimate.py)
            self.db,
            self.model.fingerprint,
            getattr(self.embedder, "saves_kv", False),
            self.report.tokens_embedded,
            self.report.elapsed_s,
        )
        self._notify("done")
        return self.report

    def _scan(self, scope: Scope) -> tuple[list[FileJob], list[SourceState]]:
        """Files to read, and known sources that are gone (by stat only: no file is opened)."""
        scan = ScopeScan(
            self.db, scope, chunking=self.chunking, selection=self.selection, exclude=self.exclude
        )
        if scan.unreachable:  # an unmounted drive, a renamed folder: what it held is unknown
            self.report.skipped.append(
                SkippedFile(
                    display_path(scope.root.path),
                    f"indexed folder {scan.unreachable}; its index entries are kept",
                    "error",
                )
            )
            return [], []
        self.attempts.update({(scope.root.id, rel): stamp for rel, stamp in scan.attempts.items()})
        jobs: list[FileJob] = []
        for scanned in scan:
            item, state = scanned.item, scanned.known
            if isinstance(item, SkippedPath):
                no_stamp = FileStamp(None, None, None, chunking=self.chunking)
                self._skip(scope.root, item.rel_path, no_stamp, item.reason, state)
            elif scanned.unchanged:
                assert state is not None
                self.report.unchanged += 1
                if state.status != "indexed":
                    self._report_skip(scope.root, item.rel_path, state.reason or "", state.status)
            else:
                jobs.append(FileJob(scope.root, item, state))
        self.report.ignored += scan.ignored
        return jobs, scan.gone

    def _take(self, file: PreparedFile, vanished: dict[int, tuple[Root, SourceState]]) -> None:
        """Store what the preparing thread made of one file, or queue its chunks to embed."""
        job, found, root = file.job, file.job.found, file.job.scope_root
        if file.clear_attempt:  # an earlier run's attempt: this verdict's record replaces it
            clear_parse_attempt(self.db, root.id, found.rel_path)
        if file.verdict == "chunked":
            key = (root.path, found.rel_path)
            self.file_seconds[key] = self.file_seconds.get(key, 0.0) + file.seconds
            reused = embeddings_by_text_hash(self.db, [chunk.text_hash for chunk in file.chunks])
            vectors = [
                np.frombuffer(reused[c.text_hash], dtype="<f4") if c.text_hash in reused else None
                for c in file.chunks
            ]
            self.pending.append(_PendingFile(job, file.stamp, file.chunks, vectors))
            if sum(v is None for p in self.pending for v in p.vectors) >= self.batch_chunks:
                self._flush()
            return
        if file.verdict == "unindexable":
            self._skip(root, found.rel_path, file.stamp, file.reason, job.known, file.status)
        elif file.verdict == "touched":  # the same bytes as indexed: only the stat is new
            known = job.known
            assert known is not None
            update_source_stamp(self.db, known.id, file.stamp)
            self.report.unchanged += 1
            if known.status != "indexed":
                self._report_skip(root, found.rel_path, known.reason or "", known.status)
        else:  # moved: the bytes of a vanished file, whose chunks it keeps
            assert file.moved_from is not None
            move_source(self.db, file.moved_from, root.id, found.rel_path, file.stamp)
            del vanished[file.moved_from]
            self.report.renamed += 1
        self._file_done(found)

    def _flush(self) -> None:
        """Embed every pending chunk (several files per call), then write file by file."""
        if not self.pending:
            return
        missing = [
            (file_index, chunk_index)
            for file_index, pending in enumerate(self.pending)
            for chunk_index, vector in enumerate(pending.vectors)
            if vector is None
        ]
        failed: dict[int, str] = {}
        for start in range(0, len(missing), self.batch_chunks):
            batch = missing[start : start + self.batch_chunks]
            texts = [self.pending[f].chunks[c].embedding_text for f, c in batch]
            started = time.monotonic()
            try:
                vectors = self._embed(texts)
            except NonFiniteOutputError:
                raise  # the model is broken, not this file: stop before anything is stored
            except Exception:
                failed.update(self._embed_one_by_one(batch))
                self._charge(batch, time.monotonic() - started)
                continue
            self._charge(batch, time.monotonic() - started)
            for (f, c), vector in zip(batch, vectors, strict=True):
                self.pending[f].vectors[c] = vector
            self.report.tokens_embedded += sum(
                self.pending[f].chunks[c].token_count for f, c in batch
            )
            self.report.chunks_embedded += len(batch)
            current = self.pending[batch[-1][0]].job.found
            self._notify("indexing", current.rel_path, self._share(current))

        for file_index, pending in enumerate(self.pending):
            job = pending.job
            if file_index in failed:
                self._skip(
                    job.scope_root,
                    job.found.rel_path,
                    pending.stamp,
                    failed[file_index],
                    job.known,
                    "error",
                )
            else:
                self._write(pending)
            self._file_done(job.found)
        self.pending = []

    def _charge(self, batch: list[tuple[int, int]], seconds: float) -> None:
        """Share an embedding call's time among its files, by tokens."""
        tokens = [max(self.pending[f].chunks[c].token_count, 1) for f, c in batch]
        total = sum(tokens)
        for (f, _), count in zip(batch, tokens, strict=True):
            found = self.pending[f].job
            key = (found.scope_root.path, found.found.rel_path)
            self.file_seconds[key] = self.file_seconds.get(key, 0.0) + seconds * count / total

    def _embed_one_by_one(self, batch: list[tuple[int, int]]) -> dict[int, str]:
        """After a failed batch, find which files' chunks fail alone; return their reasons."""
        failed: dict[int, str] = {}
        for f, c in batch:
            if f in failed:
                continue
            chunk = self.pending[f].chunks[c]
            try:
                self.pending[f].vectors[c] = self._embed([chunk.embedding_text])[0]
            except NonFiniteOutputError:
                raise
            except Exception as exc:
                failed[f] = f"embedding failed on chunk {c}: {type(exc).__name__}: {exc}"
                continue
            self.report.tokens_embedded += chunk.token_count
            self.report.chunks_embedded += 1
        return failed

    def _embed(self, texts: list[str]) -> np.ndarray:
        vectors = np.asarray(self.embedder.embed_documents(texts), dtype=np.float32)
        if vectors.shape != (len(texts), self.model.embedding_dim):
            raise ValueError(
                f"embed_documents returned shape {vectors.shape} for {len(texts)} texts, "
                f"expected ({len(texts)}, {self.model.embedding_dim})"
            )
        return vectors

    def _write(self, pending: _PendingFile) -> None:
        job = pending.job
        rows = [
            ChunkRow(
                ordinal=chunk.ordinal,
                text=chunk.text,
                start_line=chunk.start_line,
                end_line=chunk.end_line,
                page=chunk.page,
                heading_path=chunk.heading_label,
                token_count=chunk.token_count,
                text_hash=chunk.text_hash,
                locator=chunk.locator,
            )
            for chunk in pending.chunks
        ]
        replace_source_chunks(
            self.db,
            job.scope_root.id,
            job.found.rel_path,
            pending.stamp,
            rows,
            np.stack(pending.vectors),
            self.model.embedding_dim,
        )
        self.report.indexed += 1
        self.report.chunks_written += len(rows)
        key = (job.scope_root.path, job.found.rel_path)
        self._note_slow(
            SlowFile(
                display_path(os.path.join(*key)),
                self.file_seconds.pop(key, 0.0),
                len(rows),
                sum(row.token_count for row in rows),
            )
        )

    def _note_slow(self, slow: SlowFile) -> None:
        slowest = self.report.slowest
        if len(slowest) < SLOWEST_LISTED or slow.seconds > slowest[-1].seconds:
            slowest.append(slow)
            slowest.sort(key=lambda s: -s.seconds)
            del slowest[SLOWEST_LISTED:]

    # -- bookkeeping --

    def _skip(
        self,
        root: Root,
        rel_path: str,
        stamp: FileStamp,
        reason: str,
        known: SourceState | None,
        status: Literal["skipped", "error"] = "skipped",
    ) -> None:
        unchanged = (
            known is not None
            and known.status == status
            and known.reason == reason
            and (known.size, known.mtime_ns, known.ctime_ns, known.content_hash, known.chunking)
            == (stamp.size, stamp.mtime_ns, stamp.ctime_ns, stamp.content_hash, stamp.chunking)
        )
        if not unchanged:
            record_unindexed_source(self.db, root.id, rel_path, stamp, status, reason)
        self._report_skip(root, rel_path, reason, status)

    def _report_skip(self, root: Root, rel_path: str, reason: str, status: str) -> None:
        self.report.skipped.append(
            SkippedFile(
                display_path(os.path.join(root.path, rel_path)),
                display_path(reason),
                "error" if status == "error" else "skipped",
            )
        )

    def _file_done(self, found: FoundFile) -> None:
        self.files_done += 1
        self.bytes_done += found.size
        self._notify("indexing", found.rel_path, self._share(found))

    def _share(self, found: FoundFile) -> float | None:
        return found.size / self.bytes_total if self.bytes_total else None

    def _notify(self, phase: Phase, current: str | None = None, share: float | None = None) -> None:
        if self.progress_callback is None:
            return
        self.progress_callback(
            IndexProgress(
                phase=phase,
                files_total=self.files_total,
                files_done=self.files_done,
                bytes_total=self.bytes_total,
                bytes_done=self.bytes_done,
                chunks_done=self.report.chunks_embedded,
                tokens_done=self.report.tokens_embedded,
                elapsed_s=time.monotonic() - self.started,
                current_path=None if current is None else display_path(current),
                current_share=share,
                tokens_expected=self.expected_tokens,
            )
        )


def _dedupe_jobs(jobs: list[FileJob]) -> list[FileJob]:
    """Two overlapping paths on one command line must not index a file twice."""
    seen: set[tuple[int, str]] = set()
    unique = []
    for job in jobs:
        key = (job.scope_root.id, job.found.rel_path)
        if key not in seen:
            seen.add(key)
            unique.append(job)
    return unique
