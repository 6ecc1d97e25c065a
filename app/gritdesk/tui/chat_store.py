"""The chat app's own connection to the index database, used from one thread of its own.

History writes and index statistics must never stall the UI (another process may hold the
write lock while indexing) nor share a connection with the engine's retrieval (SQLite
transactions are per connection). One worker thread runs every call in order, so a
question is always stored before its answer; the UI awaits results without blocking.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import apsw

from gritdesk.store.connection import open_database

T = TypeVar("T")


class ChatStore:
    """Runs `fn(conn, *args, **kwargs)` calls on the store thread, in the order they were made."""

    def __init__(self, db_path: Path, on_error: Callable[[BaseException], None]) -> None:
        self.db_path = db_path
        self._on_error = on_error
        self._conn: apsw.Connection | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gritdesk-chat-store")
        self._opened = self._pool.submit(self._open)

    def _open(self) -> None:
        self._conn = open_database(self.db_path)

    def _run(self, fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> T:
        self._opened.result()  # re-raises why the database could not be opened
        assert self._conn is not None
        return fn(self._conn, *args, **kwargs)

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run on the store thread and wait (without blocking the event loop) for the result."""
        return await asyncio.wrap_future(self._pool.submit(self._run, fn, args, kwargs))

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future[Any]:
        """Run on the store thread without waiting; a failure goes to `on_error`."""
        future = self._pool.submit(self._run, fn, args, kwargs)
        future.add_done_callback(self._report)
        return future

    def _report(self, future: Future[Any]) -> None:
        error = future.exception()
        if error is not None:
            self._on_error(error)

    async def flush(self) -> None:
        """Wait until every call made so far has finished."""
        await asyncio.wrap_future(self._pool.submit(lambda: None))

    def close(self) -> None:
        """Finish pending writes, then close the connection."""

        def close_connection() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        self._pool.submit(close_connection)
        self._pool.shutdown(wait=True)
