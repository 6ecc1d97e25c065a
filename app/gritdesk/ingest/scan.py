"""Which files an index run reads: the one scan behind both the run and its estimate.

A scope (a root, or a path in it) is walked (walk.py, with the run's FileSelection) and
each file compared, by stat alone, with what the index holds: skipped by the walk,
unchanged (no work), or to read. A file to read may still be skipped before it is read,
on its name and size (`skip_reason_unread`), because its parse was interrupted on an
earlier run (`parse_interrupted`), or on its first bytes (`FileSelection.reason_by_content`,
after `open_regular_file`). The indexer (indexer.py) acts on these verdicts; the estimate
(estimate.py) counts by them, so the two cannot disagree on which files count.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import apsw

from gritdesk.ingest.byte_sizes import describe_bytes
from gritdesk.ingest.document import SkipFile, UnindexableFile
from gritdesk.ingest.file_selection import FileSelection, is_selection_reason
from gritdesk.ingest.parse import skip_reason_from_name
from gritdesk.ingest.walk import FoundFile, SkippedPath, WalkStats, walk_root
from gritdesk.store.sources import (
    Root,
    SourceState,
    add_root,
    parse_attempts,
    root_containing,
    sources_in_scope,
)

Stamp = tuple[int | None, int | None, int | None]  # (size, mtime_ns, ctime_ns)


@dataclass(frozen=True)
class Scope:
    root: Root  # id -1: a folder no root holds yet (the estimate registers nothing)
    rel: str | None  # None: the whole root

    @classmethod
    def at(cls, root: Root, path: Path) -> Scope:
        """The scope of `path` (absolute, inside `root`)."""
        rel = path.relative_to(root.path).as_posix()
        return cls(root, None if rel == "." else rel)


@dataclass(frozen=True)
class ScannedPath:
    """One path the walk reported, with what the index holds there."""

    item: FoundFile | SkippedPath
    known: SourceState | None
    unchanged: bool = False  # a found file whose stat and chunking are as recorded


class ScopeScan:
    """One scope's walk against the index, by stat only (no file is opened). Iterating
    yields every path the walk reports, in walk order; then `gone` holds the known sources
    the walk did not find (those under a folder it could not list are kept: unknown) and
    `ignored` counts what it left out silently. A root that cannot be walked yields nothing
    and says why in `unreachable` (an unmounted drive: what it held is unknown).
    `fresh`: as if nothing under the scope were indexed yet (a rebuild)."""

    def __init__(
        self,
        db: apsw.Connection,
        scope: Scope,
        *,
        chunking: str,
        selection: FileSelection,
        exclude: Collection[Path] = (),
        fresh: bool = False,
    ) -> None:
        self.scope = scope
        self.chunking = chunking
        self.selection = selection
        self.exclude = exclude
        self.unreachable = _unreachable_folder(Path(scope.root.path))
        listed = scope.root.id >= 0 and self.unreachable is None
        self.known = sources_in_scope(db, scope.root.id, scope.rel) if listed and not fresh else {}
        # files whose parse began on an earlier run and never ended (see indexer._parse)
        self.attempts: dict[str, Stamp] = dict(parse_attempts(db, scope.root.id)) if listed else {}
        self.gone: list[SourceState] = []
        self.ignored = 0

    def __iter__(self) -> Iterator[ScannedPath]:
        if self.unreachable:
            return
        seen: set[str] = set()
        unlisted: list[str] = []
        stats = WalkStats()
        walk = walk_root(
            Path(self.scope.root.path),
            self.scope.rel,
            exclude=self.exclude,
            stats=stats,
            selection=self.selection,
        )
        for item in walk:
            seen.add(item.rel_path)
            state = self.known.get(item.rel_path)
            if isinstance(item, SkippedPath):
                if item.unlisted:
                    unlisted.append(item.rel_path)
                yield ScannedPath(item, state)
                continue
            unchanged = state is not None and source_unchanged(state, item, self.chunking)
            yield ScannedPath(item, state, unchanged)
        self.ignored = stats.ignored
        self.gone = [
            state
            for rel, state in self.known.items()
            if rel not in seen and not any(_inside(rel, folder) for folder in unlisted)
        ]


def scope_of(db: apsw.Connection, resolved: Path, *, register: bool) -> Scope:
    """Which root and which part of it an existing, resolved path means: the known root
    holding it, else a new root (a folder itself, a file its folder), registered when
    `register` (add_root), else Root(-1, ...): nothing of it is known yet."""
    root = root_containing(db, str(resolved))
    if root is not None:
        return Scope.at(root, resolved)
    folder, rel = (resolved, None) if resolved.is_dir() else (resolved.parent, resolved.name)
    return Scope(add_root(db, str(folder)) if register else Root(-1, str(folder)), rel)


def source_unchanged(state: SourceState, found: FoundFile, chunking: str) -> bool:
    """Whether a known source needs no work: its stat and chunking are as recorded. An
    unchanged stat costs nothing."""
    return (
        state.status != "error"  # errors (unreadable, ...) are retried every run
        and (state.size, state.mtime_ns, state.ctime_ns)
        == (found.size, found.mtime_ns, found.ctime_ns)
        and state.chunking == chunking
        and not judged_by_selection(state)  # the patterns or limits may differ now
    )


def judged_by_selection(state: SourceState) -> bool:
    """A file skipped as bulk data or in a vendored folder: judged again on every run, since
    the limits and --include patterns may have changed (no parse is retried this way)."""
    return state.status == "skipped" and is_selection_reason(state.reason)


def skip_reason_unread(
    found: FoundFile, selection: FileSelection, max_file_bytes: int
) -> str | None:
    """Why a file is skipped on its name and size alone (before it is read), else None."""
    reason = skip_reason_from_name(found.rel_path)
    if reason:
        return reason
    reason = selection.reason_by_name(found.rel_path, found.size)
    if reason:
        return reason
    if found.size > max_file_bytes:
        return _too_large(max_file_bytes, found.size)
    return None


def parse_interrupted(found: FoundFile, attempt: Stamp | None) -> bool:
    """Whether the file's parse began on an earlier run and never ended, and the file has
    not changed since: the run does not try it again."""
    return attempt == (found.size, found.mtime_ns, found.ctime_ns)


def open_regular_file(path: Path, identity: tuple[int, int] = (0, 0)) -> BinaryIO:
    """`path` opened for reading, refusing anything that is not a regular file by the time
    it is opened (raises UnindexableFile, or SkipFile for a special file).

    O_NONBLOCK: a file swapped for a FIFO after the walk cannot block the run.
    O_NOFOLLOW: the walk resolved symlinks already; a new one is not followed.
    `identity`: the (device, inode) the walk saw. O_NOFOLLOW guards only the last
    component, so a folder on the way swapped for a symlink would lead elsewhere;
    the opened file must be the one the walk found inside the root.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise UnindexableFile(f"cannot open: {exc.strerror}") from exc
    handle = os.fdopen(fd, "rb")
    try:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise SkipFile("not a regular file")
        if identity != (0, 0) and (info.st_dev, info.st_ino) != identity:
            raise UnindexableFile("changed since the scan (another file is now at this path)")
    except BaseException:
        handle.close()
        raise
    return handle


def read_regular_file(path: Path, limit: int, identity: tuple[int, int] = (0, 0)) -> bytes:
    """The bytes of `path` (see open_regular_file), refusing a file over `limit` bytes."""
    with open_regular_file(path, identity) as handle:
        size = os.fstat(handle.fileno()).st_size
        if size > limit:
            raise SkipFile(_too_large(limit, size))
        try:
            return handle.read(limit + 1)
        except OSError as exc:
            raise UnindexableFile(f"cannot read: {exc.strerror}") from exc


def database_files(db: apsw.Connection) -> list[Path]:
    """The index database's own files: never indexed, even inside a root."""
    name = db.filename
    if not name:
        return []
    return [Path(name + suffix) for suffix in ("", "-wal", "-shm", "-journal")]


def _too_large(limit: int, size: int) -> str:
    return f"larger than the {describe_bytes(limit)} limit ({describe_bytes(size)})"


def _inside(rel_path: str, folder: str) -> bool:
    return folder == "." or rel_path == folder or rel_path.startswith(folder + "/")


def _unreachable_folder(path: Path) -> str | None:
    """Why the folder at `path` cannot be walked (missing, not a folder, unreadable)."""
    try:
        with os.scandir(path):
            return None
    except FileNotFoundError:
        return "is missing (renamed, deleted, or on a drive that is not mounted)"
    except NotADirectoryError:
        return "is no longer a folder"
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
