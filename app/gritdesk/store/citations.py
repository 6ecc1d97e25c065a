"""The one shape of a cited chunk: what rag produces for an answer, what the conversation
store keeps, what the CLI, the chat app and the JSON of `ask`, `serve` and `mcp` show.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


def chunk_location(
    path: str,
    start_line: int | None,
    end_line: int | None,
    page: int | None,
    locator: str | None,
) -> str:
    """`path:12-30`, `path:p4`, `path:slide 3`, `path:Sheet1!A1:D20` or `path`."""
    if locator:
        return f"{path}:{locator}"
    if start_line is not None:
        if end_line is not None and end_line != start_line:
            return f"{path}:{start_line}-{end_line}"
        return f"{path}:{start_line}"
    if page is not None:
        return f"{path}:p{page}"
    return path


def path_in_root(path: str, roots: Sequence[str]) -> str:
    """`folder/file.md` for a file under an indexed folder (the folder's own name first)."""
    for root in sorted(roots, key=len, reverse=True):
        prefix = root.rstrip("/") + "/"
        if path.startswith(prefix):
            return f"{Path(root).name}/{path[len(prefix) :]}"
    return path


@dataclass(frozen=True)
class Citation:
    """One chunk an answer was given, numbered as the answer cites it."""

    number: int
    path: str  # absolute, as indexed
    start_line: int | None
    end_line: int | None
    page: int | None
    heading_path: str
    score: float  # the fused retrieval score
    kv: str = "fresh"  # cached (restored), computed (embedded now and saved), fresh (as text)
    text: str = ""
    display_path: str = ""  # relative to its indexed folder, when known
    locator: str | None = None  # "slide 3", "Sheet1!A1:D20"
    rerank_score: float | None = None

    @property
    def location(self) -> str:
        """Where the chunk is, with the short display path when there is one."""
        return chunk_location(
            self.display_path or self.path, self.start_line, self.end_line, self.page,
            self.locator,
        )

    @property
    def full_location(self) -> str:
        """Where the chunk is, at its absolute path."""
        return chunk_location(self.path, self.start_line, self.end_line, self.page, self.locator)

    @property
    def label(self) -> str:
        return f"[{self.number}] {self.location}"

    def as_json(self) -> dict[str, object]:
        """The public JSON of a source (`ask --json`, the server, MCP)."""
        return {
            "n": self.number,
            "path": self.path,
            "location": self.full_location,
            "start_line": self.start_line,
            "end_line": self.end_line,
            "page": self.page,
            "locator": self.locator,
            "heading_path": self.heading_path,
            "score": self.score,
            "rerank_score": self.rerank_score,
            "kv": self.kv,
        }
