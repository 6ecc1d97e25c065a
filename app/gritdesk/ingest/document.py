"""What parsing produces and chunking consumes: a document as a list of small blocks."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)  # slots: a file can have millions of blocks
class Block:
    """One line of a text file, one paragraph of a DOCX or HTML page, one line of a PDF page.

    Chunks are built from whole blocks, so a block's position is what a citation shows.
    """

    text: str
    line: int | None  # 1-based line in the source file, None when the format has no lines
    page: int | None = None  # 1-based PDF page
    heading_path: tuple[str, ...] = ()  # headings this block sits under (its own, if a heading)
    is_heading: bool = False
    # Where the block is in formats cited by something other than lines or PDF pages:
    # "slide 3", "Budget!A1:D20", "message 2". Blocks with different locators never share a
    # chunk, and a chunk's citation shows its locator.
    locator: str | None = None
    # A table's header row: when its section (a sheet region) is cut into several chunks,
    # every chunk starts with it, so a chunk of figures still says what the columns are.
    repeated: bool = False


@dataclass(frozen=True)
class ParsedDocument:
    format: str  # "text", "markdown", "html", "pdf", "docx", "pptx", "xlsx", ...
    blocks: list[Block]


class UnindexableFile(Exception):
    """A file that yields no text to index. `status` says whether that is expected.

    "skipped": by policy or by nature (binary, empty, too large, scanned PDF);
    "error": reading or parsing failed (unreadable, broken PDF).
    """

    status = "error"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SkipFile(UnindexableFile):
    status = "skipped"


class ParseFailure(UnindexableFile):
    status = "error"


def split_lines(text: str) -> list[str]:
    """Lines as editors number them (only \\n, \\r\\n and \\r end a line)."""
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
