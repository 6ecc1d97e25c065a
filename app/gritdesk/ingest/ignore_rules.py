"""Which paths a walk leaves out: .gitignore files (nested) and .gritdeskignore.

Git's precedence is kept: rules in a deeper ignore file beat those above it, and within
one file the last matching line wins (so `!keep.log` re-includes). A `.gritdeskignore`
(same syntax) is read after the `.gitignore` of its folder, so it can override it.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

import pathspec

IGNORE_FILE_NAMES = (".gitignore", ".gritdeskignore")


@dataclass(frozen=True)
class IgnoreLayer:
    """The rules of one ignore file.

    `base` is the file's folder relative to the walk root ("" at or above the root);
    `prefix` is the walk root relative to the file's folder, for files above the root.
    """

    spec: pathspec.GitIgnoreSpec
    origin: str
    base: str = ""
    prefix: str = ""

    def decides(self, rel_path: str, is_dir: bool) -> bool | None:
        """True: ignored, False: re-included by a `!` rule, None: no rule matches."""
        if self.base:
            if not rel_path.startswith(self.base + "/"):
                return None
            rel_path = rel_path[len(self.base) + 1 :]
        if self.prefix:
            rel_path = f"{self.prefix}/{rel_path}"
        return self.spec.check_file(matchable(rel_path + "/" if is_dir else rel_path)).include


class IgnoreRules:
    """An immutable stack of ignore layers; `with_folder` returns the stack one level deeper."""

    def __init__(self, layers: tuple[IgnoreLayer, ...] = ()) -> None:
        self.layers = layers

    def with_folder(self, folder: Path, rel_folder: str) -> IgnoreRules:
        """Rules for paths inside `folder` (absolute), adding its ignore files if any."""
        added = [
            layer
            for name in IGNORE_FILE_NAMES
            if (layer := read_layer(folder / name, base=rel_folder)) is not None
        ]
        return IgnoreRules(self.layers + tuple(added)) if added else self

    def is_ignored(self, rel_path: str, is_dir: bool) -> bool:
        """Whether `rel_path` (relative to the walk root, POSIX separators) is ignored."""
        for layer in reversed(self.layers):
            decision = layer.decides(rel_path, is_dir)
            if decision is not None:
                return decision
        return False


def matchable(rel_path: str) -> str:
    """A name that is not UTF-8 (surrogate-escaped) with U+FFFD for its odd bytes: RE2
    matches UTF-8 text only, and a wildcard matches U+FFFD like any character."""
    if rel_path.isascii():
        return rel_path
    return rel_path.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def rules_above(root: Path) -> IgnoreRules:
    """Rules of the ignore files between the enclosing git work tree (if any) and `root`.

    Indexing ~/proj/docs honours ~/proj/.gitignore when ~/proj is a git repository.
    """
    chain: list[Path] = []
    folder = root
    while folder.parent != folder:
        folder = folder.parent
        chain.append(folder)
        if (folder / ".git").exists():
            break
    else:
        return IgnoreRules()  # not inside a git work tree: nothing above applies
    layers = [
        layer
        for outer in reversed(chain)
        for name in IGNORE_FILE_NAMES
        if (layer := read_layer(outer / name, prefix=root.relative_to(outer).as_posix()))
        is not None
    ]
    return IgnoreRules(tuple(layers))


def read_layer(path: Path, base: str = "", prefix: str = "") -> IgnoreLayer | None:
    """The rules of one ignore file; None when it is absent, unreadable or not a plain file.

    A symlinked or special ignore file is not read: it could point out of the root or
    be a FIFO that blocks forever.
    """
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return None
        with open(path, encoding="utf-8", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    return IgnoreLayer(spec=compile_rules(lines), origin=str(path), base=base, prefix=prefix)


def compile_rules(lines: list[str]) -> pathspec.GitIgnoreSpec:
    """Compile gitignore lines for RE2, whose matching is linear in the path's length.

    Python's `re` backtracks: a pattern like `*a*a*a*a*a*a*a*a*a*a*a*a*b` costs
    minutes per path on a long name. A line RE2 refuses (too big for its memory
    budget) is dropped rather than run by the backtracking engine.
    """
    try:
        return pathspec.GitIgnoreSpec.from_lines(lines, backend=_BACKEND)
    except Exception:  # one bad line (or one too big for RE2): keep the others
        kept = [line for line in lines if _compiles(line)]
        return pathspec.GitIgnoreSpec.from_lines(kept, backend=_BACKEND)


def _compiles(line: str) -> bool:
    try:
        pathspec.GitIgnoreSpec.from_lines([line], backend=_BACKEND)
    except Exception:
        return False
    return True


def _linear_backend() -> str | None:
    try:
        import re2  # noqa: F401 (google-re2, a dependency; pathspec loads it by name)
    except ImportError:  # a broken install still works, at backtracking risk
        return None
    return "re2"


_BACKEND = _linear_backend()
