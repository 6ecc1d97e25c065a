"""Find the files under an indexed root, safely.

Never follows a symlink out of the root; survives symlink loops, FIFOs, sockets and
folders it cannot list (each reported as skipped, with the reason); never opens
anything, so a FIFO cannot block it. Hidden files and folders, ignored paths and
`--exclude` matches are left out silently (counted in `WalkStats.ignored`); vendored
or generated folders (node_modules, a virtualenv) are reported skipped, unless included.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from gritdesk.ingest.file_selection import FileSelection
from gritdesk.ingest.ignore_rules import IgnoreRules, rules_above


@dataclass(frozen=True)
class FoundFile:
    rel_path: str  # relative to the root, POSIX separators: the name the index keeps
    path: Path  # what to read: the real file (a symlink's target), always inside the root
    size: int
    mtime_ns: int
    ctime_ns: int
    identity: tuple[int, int] = (0, 0)  # (st_dev, st_ino): the file the read must find


@dataclass(frozen=True)
class SkippedPath:
    rel_path: str
    reason: str
    unlisted: bool = False  # a folder that could not be listed: what it holds is unknown


@dataclass
class WalkStats:
    ignored: int = 0  # hidden, gitignored or junk paths left out (folders count once)
    folders: int = 0


@dataclass(frozen=True)
class _Folder:
    path: Path
    rel_path: str


@dataclass(frozen=True)
class _LinkedFolder(_Folder):
    """A folder reached through a symlink (inside the root)."""


@dataclass
class _WalkState:
    root: Path
    exclude: frozenset[str]
    stats: WalkStats
    selection: FileSelection
    visited: set[tuple[int, int]] = field(default_factory=set)


def walk_root(
    root: Path,
    scope: str | None = None,
    exclude: Collection[Path] = (),
    stats: WalkStats | None = None,
    selection: FileSelection | None = None,
) -> Iterator[FoundFile | SkippedPath]:
    """Files (and skipped paths) under `root`, or only under `scope` (a relative path in it).

    `root` must be absolute with symlinks resolved. `exclude` lists files never to
    yield (the index database itself). A `scope` that is absent, ignored or hidden
    yields nothing.
    """
    state = _WalkState(
        root=root,
        exclude=frozenset(os.path.realpath(p) for p in exclude),
        stats=stats if stats is not None else WalkStats(),
        selection=selection if selection is not None else FileSelection(),
    )
    state.visited.add(_identity(root) or (0, 0))
    rules = rules_above(root).with_folder(root, "")

    if scope:
        parts = scope.split("/")
        folder, rel = root, ""
        for name in parts[:-1]:  # the folders leading to the scope must themselves be walkable
            rel = f"{rel}/{name}" if rel else name
            folder = folder / name
            if (
                name.startswith(".")
                or rules.is_ignored(rel, True)
                or state.selection.excluded(rel, True)
                or state.selection.folder_skip_reason(name, folder, rel)
            ):
                state.stats.ignored += 1
                return
            rules = rules.with_folder(folder, rel)
        try:
            os.lstat(root / scope)
        except (FileNotFoundError, NotADirectoryError):
            return  # gone
        except OSError as exc:  # unreachable (a folder on the way cannot be searched): unknown
            yield SkippedPath(scope, f"cannot stat: {exc.strerror}", unlisted=True)
            return
        first = _classify(root / scope, scope, rules, state)
        if not isinstance(first, _Folder):
            if first is not None:
                yield first
            return
        start = first
    else:
        start = _Folder(root, "")

    # Real folders first, symlinked ones after: a folder reachable both ways is indexed
    # under its real path, and a link back into the tree ends the loop it would make.
    pending: list[tuple[_Folder, IgnoreRules]] = [
        (start, rules.with_folder(start.path, start.rel_path) if scope else rules)
    ]
    linked: list[tuple[_Folder, IgnoreRules]] = []
    while pending or linked:
        if pending:
            folder, rules = pending.pop()
        else:
            folder, rules = linked.pop(0)
            key = _identity(folder.path)
            if key is None or key in state.visited:
                yield SkippedPath(
                    folder.rel_path, f"symlink to a folder already walked ({folder.path})"
                )
                continue
            state.visited.add(key)
            rules = rules.with_folder(folder.path, folder.rel_path)
        state.stats.folders += 1
        try:
            with os.scandir(folder.path) as entries:
                names = sorted(entry.name for entry in entries)
        except OSError as exc:
            yield SkippedPath(
                folder.rel_path or ".", f"cannot list folder: {exc.strerror}", unlisted=True
            )
            continue
        subfolders = []
        for name in names:
            rel = f"{folder.rel_path}/{name}" if folder.rel_path else name
            found = _classify(folder.path / name, rel, rules, state)
            if isinstance(found, _LinkedFolder):
                linked.append((found, rules))
            elif isinstance(found, _Folder):
                subfolders.append(found)
            elif found is not None:
                yield found
        for sub in reversed(subfolders):  # a stack: reversed keeps the walk in sorted order
            pending.append((sub, rules.with_folder(sub.path, sub.rel_path)))


def _classify(
    path: Path, rel: str, rules: IgnoreRules, state: _WalkState
) -> FoundFile | SkippedPath | _Folder | None:
    """What one directory entry is to the walk; None when it is left out silently."""
    name = path.name
    if name.startswith("."):
        state.stats.ignored += 1
        return None
    try:
        link_stat = os.lstat(path)
    except OSError as exc:
        return SkippedPath(rel, f"cannot stat: {exc.strerror}")

    target = path
    file_stat = link_stat
    is_link = stat.S_ISLNK(link_stat.st_mode)
    if is_link:
        try:
            target = Path(os.path.realpath(path, strict=True))
        except FileNotFoundError:
            return _ignored_or(rules, rel, False, state, f"broken symlink to {os.readlink(path)}")
        except OSError as exc:
            return _ignored_or(rules, rel, False, state, f"symlink loop ({exc.strerror})")
        if not _is_inside(target, state.root):
            return _ignored_or(
                rules, rel, False, state, f"symlink to {target}, outside the indexed folder"
            )
        try:
            file_stat = os.stat(target)
        except OSError as exc:
            return SkippedPath(rel, f"cannot stat symlink target {target}: {exc.strerror}")

    mode = file_stat.st_mode
    if stat.S_ISDIR(mode):
        if rules.is_ignored(rel, True) or state.selection.excluded(rel, True):
            state.stats.ignored += 1
            return None
        vendored = state.selection.folder_skip_reason(name, target, rel)
        if vendored:
            return SkippedPath(rel, vendored)
        if is_link:
            return _LinkedFolder(target, rel)  # walked after every real folder
        key = (file_stat.st_dev, file_stat.st_ino)
        if key in state.visited:
            return None
        state.visited.add(key)
        return _Folder(target, rel)

    if rules.is_ignored(rel, False) or state.selection.excluded(rel, False):
        state.stats.ignored += 1
        return None
    if stat.S_ISREG(mode):
        if str(target) in state.exclude:
            return None
        return FoundFile(
            rel,
            target,
            file_stat.st_size,
            file_stat.st_mtime_ns,
            file_stat.st_ctime_ns,
            (file_stat.st_dev, file_stat.st_ino),
        )
    return SkippedPath(rel, f"not a regular file ({_kind(mode)})")


def _ignored_or(
    rules: IgnoreRules, rel: str, is_dir: bool, state: _WalkState, reason: str
) -> SkippedPath | None:
    if rules.is_ignored(rel, is_dir):
        state.stats.ignored += 1
        return None
    return SkippedPath(rel, reason)


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_dev, info.st_ino)


def _is_inside(path: Path, root: Path) -> bool:
    return path == root or path.is_relative_to(root)


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode):
        return "character device"
    if stat.S_ISBLK(mode):
        return "block device"
    return "special file"
