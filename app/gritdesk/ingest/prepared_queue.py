"""The preparing thread: the next files are read, parsed and chunked while the model embeds.

An index run's own thread embeds and writes (indexer.py); this one prepares the files after
the current batch (prepare.py) into a hand-off bounded by chunks and by bytes of chunk text,
so that reading, the parser worker's round trips and tokenizing happen while the model
computes instead of between its calls. The model's llama.cpp calls and the wait on the
parser's pipe release the GIL, so the two threads do run at once.

Writing stays on the run's thread: measured on git-doc pages (issue 23) a file's write
transaction took about 0.1% of the run's wall time, and the KV-saving embedder writes
through the same connection from inside its embedding call, which one thread must own.

Files come out in the order of the jobs. A failure outside a file's own handling (which
makes the file's skip record, as before) stops the thread and is raised on the run's thread
as `PreparationFailed`, naming the file, after every file prepared before it. A run that
stops early (Ctrl-C, a cancelled progress callback, a full disk) ends the thread on its way
out: the parse in progress is cut short by killing the parser worker, and what the thread
prepared is dropped, never stored.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Iterator, Sequence

from gritdesk.ingest.byte_sizes import MIB
from gritdesk.ingest.prepare import FileJob, FilePreparer, PreparedFile
from gritdesk.store.sources import display_path

LOOKAHEAD_BATCHES = 4  # chunks prepared ahead of the model, in embedding batches
LOOKAHEAD_BYTES = 32 * MIB  # chunk text prepared ahead (a larger file is still let through alone)
JOIN_S = 10.0  # how long stopping waits for a step that cannot be cut short (chunking a file)
_WAKE_S = 0.5  # the run's thread looks at least this often whether the thread is alive


class PreparationFailed(Exception):
    """The preparing thread failed outside any one file's handling."""

    def __init__(self, path: str, cause: BaseException) -> None:
        super().__init__(f"preparing {path} for indexing failed: {type(cause).__name__}: {cause}")
        self.path = path


class PreparedFiles:
    """Iterate to get each job's `PreparedFile`, in order, prepared on a thread of its own
    at most `max_chunks` chunks and `max_bytes` bytes of chunk text ahead. Use as a context
    manager: leaving it stops and joins the thread."""

    def __init__(
        self,
        preparer: FilePreparer,
        jobs: Sequence[FileJob],
        *,
        max_chunks: int,
        max_bytes: int = LOOKAHEAD_BYTES,
    ) -> None:
        self.preparer = preparer
        self.jobs = list(jobs)
        self.max_chunks = max_chunks
        self.max_bytes = max_bytes
        self.peak_chunks = 0  # the most chunks waiting at once
        self._ready: deque[PreparedFile] = deque()
        self._chunks = self._bytes = 0
        self._finished = False  # the thread has handed over everything it will
        self._failure: PreparationFailed | None = None
        self._stopped = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._work, name="gritdesk-prepare", daemon=True)

    def __enter__(self) -> PreparedFiles:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[PreparedFile]:
        while True:
            with self._cond:
                while not self._ready and not self._finished:
                    if not self._thread.is_alive():  # iterated outside `with`: never started
                        raise RuntimeError("the preparing thread is not running")
                    self._cond.wait(_WAKE_S)
                if not self._ready:
                    if self._failure is not None:
                        raise self._failure
                    return
                prepared = self._ready.popleft()
                self._chunks -= len(prepared.chunks)
                self._bytes -= prepared.text_bytes
                self._cond.notify_all()
            yield prepared

    def close(self) -> None:
        """Stop the thread (cutting a parse short) and wait for it, at most JOIN_S."""
        with self._cond:
            self._stopped = True
            finished = self._finished
            self._cond.notify_all()
        if self._thread.ident is None:  # never started
            return
        if not finished:
            self.preparer.stopping.set()  # first: the parse's mark must outlive the kill
            self.preparer.parser.interrupt()
        self._thread.join(JOIN_S)

    # -- the thread --

    def _work(self) -> None:
        job: FileJob | None = None
        try:
            for job in self.jobs:
                if self._stopped or not self._hand_over(self.preparer.prepare(job)):
                    return
        except BaseException as exc:  # raised again on the run's thread
            assert job is not None
            path = display_path(os.path.join(job.scope_root.path, job.found.rel_path))
            failure = PreparationFailed(path, exc)
            failure.__cause__ = exc
            with self._cond:
                self._failure = failure
        finally:
            self.preparer.marks.close()
            with self._cond:
                self._finished = True
                self._cond.notify_all()

    def _hand_over(self, prepared: PreparedFile) -> bool:
        """Queue `prepared` once there is room (always when nothing waits); False: stopped."""
        size, nbytes = len(prepared.chunks), prepared.text_bytes
        with self._cond:
            while (
                self._ready
                and not self._stopped
                and (self._chunks + size > self.max_chunks or self._bytes + nbytes > self.max_bytes)
            ):
                self._cond.wait()
            if self._stopped:
                return False
            self._ready.append(prepared)
            self._chunks += size
            self._bytes += nbytes
            self.peak_chunks = max(self.peak_chunks, self._chunks)
            self._cond.notify_all()
        return True
