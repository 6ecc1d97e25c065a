"""The one thread that owns the engine: a llama.cpp context is not thread-safe, so every
request becomes a job in one bounded queue and this thread runs them one at a time.

Jobs that can share work (embedding requests with the same format) are taken from the
queue together and run as one batch, so texts of requests that arrive together share
decodes. Results go back to the asyncio event loop of the HTTP or MCP server as events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass

from gritdesk.errors import GritdeskError
from gritdesk.rag.ask_service import AskService
from gritdesk.session import Session

log = logging.getLogger("gritdesk.server")


class QueueFullError(Exception):
    pass


class JobCancelledError(Exception):
    """The job was cancelled before it ran: its client left, or the server is stopping."""


@dataclass
class WorkerMetrics:
    """Counters the worker keeps; `GET /debug/metrics` shows them (tests read them too)."""

    jobs_done: int = 0
    jobs_failed: int = 0
    jobs_skipped_cancelled: int = 0  # cancelled while still queued: never ran
    embed_requests: int = 0
    embed_batches: int = 0  # Engine.embed calls; fewer than requests when they were merged
    embed_texts: int = 0
    generations: int = 0
    generated_tokens: int = 0
    cancelled_generations: int = 0
    tokens_after_cancel_last: int | None = None  # sampled after the client went away
    tokens_after_cancel_max: int = 0
    seconds_after_cancel_last: float | None = None  # until the engine was free again
    queue_depth: int = 0
    busy: bool = False

    def record_cancel(self, tokens_after: int, seconds_after: float) -> None:
        self.cancelled_generations += 1
        self.tokens_after_cancel_last = tokens_after
        self.tokens_after_cancel_max = max(self.tokens_after_cancel_max, tokens_after)
        self.seconds_after_cancel_last = seconds_after

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


class Job:
    """One request's work for the engine thread. `run` (on that thread) emits events that
    the request's coroutine reads with `next_event`: ("piece", text) while generating,
    ("sources", ...) for RAG, then ("done", result) or ("error", exception)."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._events: asyncio.Queue[tuple[str, object]] = asyncio.Queue()
        self._cancel = threading.Event()
        self.cancelled_at: float | None = None

    # --- called on the event loop ----------------------------------------------------------

    def cancel(self) -> None:
        """Ask the engine to stop this job before its next token (or not start it)."""
        if not self._cancel.is_set():
            self.cancelled_at = time.perf_counter()
            self._cancel.set()

    async def next_event(self) -> tuple[str, object]:
        return await self._events.get()

    async def result(self) -> object:
        """The final value, skipping intermediate events; raises the job's error."""
        while True:
            kind, value = await self.next_event()
            if kind == "done":
                return value
            if kind == "error":
                assert isinstance(value, BaseException)
                raise value

    # --- called on the engine thread -------------------------------------------------------

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def emit(self, kind: str, value: object = None) -> None:
        with contextlib.suppress(RuntimeError):  # the event loop closed: nobody is listening
            self._loop.call_soon_threadsafe(self._events.put_nowait, (kind, value))

    def batch_key(self) -> Hashable | None:
        """Jobs with the same non-None key may run together through `run_batch`."""
        return None

    def run(self, session: Session, metrics: WorkerMetrics) -> None:
        raise NotImplementedError

    @classmethod
    def run_batch(cls, jobs: Sequence[Job], session: Session, metrics: WorkerMetrics) -> None:
        for job in jobs:
            job.run(session, metrics)


class EngineWorker:
    """Owns `session` (its engines and database connection) on one thread."""

    def __init__(self, session: Session, queue_size: int, batch_limit: int = 256) -> None:
        self.session = session
        self.ask = AskService(session)  # used on the engine thread only, by RagJob/SearchJob
        self.queue_size = queue_size
        self.batch_limit = batch_limit  # jobs merged into one batch at most
        self.metrics = WorkerMetrics()
        self._jobs: deque[Job] = deque()
        self._wake = threading.Condition()
        self._closing = False
        self._running: list[Job] = []
        self._thread = threading.Thread(target=self._loop, name="gritdesk-engine", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Cancel what waits and what runs (it stops before its next token), join the thread."""
        with self._wake:
            self._closing = True
            for job in [*self._jobs, *self._running]:
                job.cancel()
            self._wake.notify_all()
        self._thread.join(timeout)

    def submit(self, job: Job) -> Job:
        with self._wake:
            if self._closing:
                raise QueueFullError("the server is shutting down")
            if len(self._jobs) >= self.queue_size:
                raise QueueFullError(f"{len(self._jobs)} jobs are waiting")
            self._jobs.append(job)
            self.metrics.queue_depth = len(self._jobs)
            self._wake.notify()
        return job

    def _take(self) -> list[Job] | None:
        """The next job, with every queued job that can share its batch."""
        with self._wake:
            while not self._jobs and not self._closing:
                self._wake.wait()
            if not self._jobs:
                return None
            first = self._jobs.popleft()
            batch = [first]
            key = first.batch_key()
            if key is not None:
                for job in list(self._jobs):
                    if len(batch) >= self.batch_limit:
                        break
                    if job.batch_key() == key:
                        self._jobs.remove(job)
                        batch.append(job)
            self.metrics.queue_depth = len(self._jobs)
            self._running = batch
            return batch

    def _loop(self) -> None:
        while (batch := self._take()) is not None:
            live = [job for job in batch if not job.cancelled]
            self.metrics.jobs_skipped_cancelled += len(batch) - len(live)
            for job in batch:
                if job.cancelled:
                    job.emit("error", JobCancelledError("cancelled before it ran"))
            if not live:
                continue
            self.metrics.busy = True
            try:
                type(live[0]).run_batch(live, self.session, self.metrics)
                self.metrics.jobs_done += len(live)
            except GritdeskError as exc:
                self.metrics.jobs_failed += len(live)
                for job in live:
                    job.emit("error", exc)
            except Exception as exc:  # a bug: keep serving, show the traceback in the log
                log.exception("engine job failed")
                self.metrics.jobs_failed += len(live)
                for job in live:
                    job.emit("error", exc)
            finally:
                self.metrics.busy = False
                with self._wake:
                    self._running = []
