"""Byte progress for long model operations (hashing, quantizing), shown with rich or not at all.

The operations take a `Progress` so they stay testable and quiet in tests; the CLI passes
`RichProgress`, which draws on stderr and leaves stdout for results.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.progress import Progress as _RichProgress


class ProgressTask(Protocol):
    def advance(self, n: int) -> None: ...

    def set(self, completed: int, total: int | None = None) -> None: ...


class Progress(Protocol):
    def task(self, label: str, total: int | None) -> AbstractContextManager[ProgressTask]: ...


class _SilentTask:
    def advance(self, n: int) -> None:
        pass

    def set(self, completed: int, total: int | None = None) -> None:
        pass


class SilentProgress:
    @contextmanager
    def task(self, label: str, total: int | None) -> Iterator[ProgressTask]:
        yield _SilentTask()


class _RichTask:
    def __init__(self, bar: _RichProgress, task_id: TaskID) -> None:
        self._bar = bar
        self._id = task_id

    def advance(self, n: int) -> None:
        self._bar.advance(self._id, n)

    def set(self, completed: int, total: int | None = None) -> None:
        if total is not None:
            self._bar.update(self._id, completed=completed, total=total)
        else:
            self._bar.update(self._id, completed=completed)


class RichProgress:
    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)

    @contextmanager
    def task(self, label: str, total: int | None) -> Iterator[ProgressTask]:
        bar = _RichProgress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        with bar:
            task_id = bar.add_task(label, total=total)
            yield _RichTask(bar, task_id)
