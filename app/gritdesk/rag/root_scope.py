"""Which files a question may be answered from: an indexed folder, or a folder inside one.

`--root` (ask, search, chat), the server's `gritdesk.root` and MCP's `root` all come here,
so a folder means the same everywhere: an indexed folder (as given, or with symlinks
resolved) or any folder under one. Retrieval filters by the indexed folder's id (exact and
cheap); a subfolder also keeps only the hits under it, from a wider pool so `k` still fill.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import apsw

from gritdesk.errors import GritdeskError
from gritdesk.rag.retrieve import Hit, search
from gritdesk.runtime.protocols import DocumentEmbedder
from gritdesk.store.sources import Root, display_path, list_roots, root_containing

SUBFOLDER_POOL_FACTOR = 8  # hits fetched per hit wanted before keeping a subfolder's
SUBFOLDER_POOL_MIN = 50


class UnknownRootError(GritdeskError):
    """The folder is not an indexed folder nor inside one."""


@dataclass(frozen=True)
class RootScope:
    """An indexed folder (`root`) and, when narrower, the folder under it (`folder`)."""

    root: Root
    folder: str  # absolute; equals root.path for the whole indexed folder

    @property
    def id(self) -> int:
        return self.root.id

    @property
    def whole_root(self) -> bool:
        return self.folder == self.root.path

    def holds(self, path: str) -> bool:
        """Whether a hit's path (as retrieval shows it) lies in this scope."""
        folder = display_path(self.folder)
        return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def resolve_root(db: apsw.Connection, path: str | Path) -> RootScope:
    """The scope `path` names: symlinks resolved first, else the path as written (an index
    made through a symlink records it unresolved). Refused with the known folders."""
    given = Path(path).expanduser()
    for candidate in (os.path.realpath(given), os.path.abspath(given)):
        root = root_containing(db, candidate)
        if root is not None:
            return RootScope(root, root.path if candidate == root.path else candidate)
    known = ", ".join(display_path(r.path) for r in list_roots(db)) or "none yet"
    raise UnknownRootError(f"{path}: not an indexed folder nor inside one (indexed: {known})")


def scoped_search(
    db: apsw.Connection,
    embedder: DocumentEmbedder,
    query: str,
    k: int,
    scope: RootScope | None,
    *,
    by_file: bool = True,
) -> list[Hit]:
    """The `k` best chunks for `query`, only from files in `scope` when it is given
    (`by_file`: as `search` orders them)."""
    if scope is None:
        return search(db, embedder, query, k, by_file=by_file)
    if scope.whole_root:
        return search(db, embedder, query, k, root_id=scope.id, by_file=by_file)
    pool = max(SUBFOLDER_POOL_MIN, SUBFOLDER_POOL_FACTOR * k)
    hits = search(db, embedder, query, pool, root_id=scope.id, by_file=by_file)
    return [hit for hit in hits if scope.holds(hit.path)][:k]
