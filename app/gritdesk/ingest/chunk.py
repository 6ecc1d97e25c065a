"""Cut a parsed document into chunks the embedder can take whole.

Chunks are measured in the model's own tokens (`TokenCounter`), never span two
Markdown sections or two PDF pages, prefer to end at a blank line, and repeat a few
lines of their predecessor (overlap) so a sentence cut at a boundary is still found.
The text embedded is the chunk text under its heading path ("Guide > Install\\n...");
it is counted with that prefix and no chunk exceeds `max_document_tokens`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from itertools import groupby

from gritdesk.ingest.document import Block, ParsedDocument
from gritdesk.runtime.protocols import TokenCounter

HEADING_SEPARATOR = " > "
# Bump when parsing or chunking would cut the same file differently: every file is then
# re-chunked on its next index run (embeddings of unchanged chunk texts are reused).
CHUNKING_VERSION = 3  # 2: slides, spreadsheets...; chunk locators. 3: CSV/TSV as sheets,
# header rows repeated in every chunk of a sheet region


@dataclass(frozen=True)
class ChunkingPolicy:
    target_tokens: int = 384  # citations stay precise; GritLM's own encoder stops at 512
    overlap_tokens: int = 48
    prefer_blank_line_within: float = 0.4  # end early at a blank line in the last 40%


@dataclass(frozen=True)
class Chunk:
    ordinal: int
    text: str
    start_line: int | None
    end_line: int | None
    page: int | None
    heading_path: tuple[str, ...]
    token_count: int  # tokens of `embedding_text`
    locator: str | None = None  # "slide 3", "Sheet1!A1:D20": see Block.locator

    @property
    def heading_label(self) -> str:
        return HEADING_SEPARATOR.join(self.heading_path)

    @property
    def embedding_text(self) -> str:
        return embedding_text(self.text, self.heading_path)

    @property
    def text_hash(self) -> str:
        return text_digest(self.embedding_text)


def chunking_signature(policy: ChunkingPolicy, counter: TokenCounter) -> str:
    """Everything besides a file's bytes that decides its chunks, as one comparable string."""
    limit = counter.max_document_tokens
    return (
        f"v{CHUNKING_VERSION} target={min(policy.target_tokens, limit)} "
        f"overlap={policy.overlap_tokens} blank={policy.prefer_blank_line_within} limit={limit}"
    )


def embedding_text(text: str, heading_path: tuple[str, ...]) -> str:
    if not heading_path:
        return text
    return HEADING_SEPARATOR.join(heading_path) + "\n" + text


def text_digest(text: str) -> str:
    """The key of a chunk's saved KV: the sha256 of the embedded text (chunks.text_hash)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def chunk_document(
    document: ParsedDocument, counter: TokenCounter, policy: ChunkingPolicy | None = None
) -> list[Chunk]:
    """The chunks of `document`, in order."""
    return _Chunker(counter, policy or ChunkingPolicy()).chunk(document)


class _Chunker:
    def __init__(self, counter: TokenCounter, policy: ChunkingPolicy) -> None:
        self.counter = counter
        self.policy = policy
        self.limit = counter.max_document_tokens
        if self.limit < 8:
            raise ValueError(f"max_document_tokens is {self.limit}: too small to chunk into")
        self.target = max(8, min(policy.target_tokens, self.limit))
        self.chunks: list[Chunk] = []

    def chunk(self, document: ParsedDocument) -> list[Chunk]:
        for section in _sections(document.blocks):
            self._chunk_section(section)
        return self.chunks

    def _chunk_section(self, blocks: list[Block]) -> None:
        heading_path = blocks[-1].heading_path
        page = blocks[0].page
        locator = blocks[0].locator
        if self._tokens(embedding_text("", heading_path)) > self.target // 2:
            heading_path = ()  # absurdly long headings: keep the budget for the text
        budget = self.target - self._tokens(embedding_text("", heading_path))
        pieces = [piece for block in blocks for piece in self._fit(block, budget)]
        costs = [self._tokens(piece.text) + 1 for piece in pieces]  # +1: the newline
        # a table header row, repeated atop each later chunk (if it leaves room for rows)
        header = pieces[:1] if blocks[0].repeated and costs[0] <= budget // 2 else []

        start = 0
        while start < len(pieces):
            while start < len(pieces) and not pieces[start].text.strip():
                start += 1  # chunks do not begin with blank lines
            if start == len(pieces):
                break
            lead = header if start > 0 else []
            room = budget - (costs[0] if lead else 0)
            end, used = start, 0
            while end < len(pieces) and (end == start or used + costs[end] <= room):
                used += costs[end]
                end += 1
            if end < len(pieces):
                end = self._prefer_blank_line(pieces, start, end)
            chunk_pieces = lead + pieces[start:end]
            end = self._emit(chunk_pieces, heading_path, page, end, locator, len(lead))
            if not any(piece.text.strip() for piece in pieces[end:]):
                break
            start = self._overlap_start(costs, start, end)

    def _prefer_blank_line(self, pieces: list[Block], start: int, end: int) -> int:
        earliest = end - int((end - start) * self.policy.prefer_blank_line_within)
        for index in range(end - 1, max(earliest, start + 1) - 1, -1):
            if not pieces[index].text.strip():
                return index
        return end

    def _overlap_start(self, costs: list[int], start: int, end: int) -> int:
        """Where the next chunk starts: a few pieces back from `end`, but always forward."""
        overlap = min(self.policy.overlap_tokens, self.target // 4)
        back, used = end, 0
        while back - 1 > start and used + costs[back - 1] <= overlap:
            back -= 1
            used += costs[back]
        return back

    def _emit(
        self,
        pieces: list[Block],
        heading_path: tuple[str, ...],
        page: int | None,
        end: int,
        locator: str | None = None,
        lead: int = 0,
    ) -> int:
        """Append a chunk of `pieces` (trimmed so its exact count fits); return its real end.
        The first `lead` pieces are a repeated header, not part of the section's progress."""
        while len(pieces) > lead + 1 and not pieces[-1].text.strip():
            pieces = pieces[:-1]
            end -= 1
        while True:
            text = "\n".join(piece.text for piece in pieces)
            tokens = self._tokens(embedding_text(text, heading_path))
            if tokens <= self.limit or len(pieces) <= lead + 1:
                break
            pieces = pieces[:-1]  # the estimate was short: give back a piece and recount
            end -= 1
        if tokens > self.limit:  # one piece alone over the limit: a tokenizer quirk, cut it
            text = self._truncate(text, self.limit - self._tokens(embedding_text("", heading_path)))
            tokens = self._tokens(embedding_text(text, heading_path))
        lines = [piece.line for piece in pieces if piece.line is not None]
        self.chunks.append(
            Chunk(
                ordinal=len(self.chunks),
                text=text,
                start_line=min(lines) if lines else None,
                end_line=max(lines) if lines else None,
                page=page,
                heading_path=heading_path,
                token_count=tokens,
                locator=locator,
            )
        )
        return end

    def _fit(self, block: Block, budget: int) -> list[Block]:
        """The block itself, or pieces of it that each fit `budget` (a very long line)."""
        if self._tokens(block.text) + 1 <= budget:
            return [block]
        return [
            Block(
                piece, block.line, block.page, block.heading_path, block.is_heading, block.locator
            )
            for piece in _split_text(block.text, budget - 1, self._tokens)
        ]

    def _truncate(self, text: str, limit: int) -> str:
        return _split_text(text, max(1, limit), self._tokens)[0]

    def _tokens(self, text: str) -> int:
        return self.counter.count_tokens(text) if text else 0


def _sections(blocks: list[Block]) -> list[list[Block]]:
    """Runs of blocks under one heading path on one page (and one slide or sheet region).

    A run holding only headings ("# Guide" right before "## Install") joins the run
    after it when that one is its subsection, so the title is cited with its text.
    """
    runs = [
        list(run) for _, run in groupby(blocks, key=lambda b: (b.heading_path, b.page, b.locator))
    ]
    sections: list[list[Block]] = []
    carried: list[Block] = []
    for run in runs:
        if carried:
            parent = carried[-1].heading_path
            same_place = (run[0].page, run[0].locator) == (carried[0].page, carried[0].locator)
            if same_place and run[0].heading_path[: len(parent)] == parent:
                run = carried + run
            else:
                sections.append(carried)
            carried = []
        if all(block.is_heading or not block.text.strip() for block in run):
            carried = run
        elif any(block.text.strip() for block in run):
            sections.append(run)
    if carried:
        sections.append(carried)
    return [section for section in sections if any(block.text.strip() for block in section)]


def _split_text(text: str, limit: int, tokens: Callable[[str], int]) -> list[str]:
    """Cut `text` into pieces of at most `limit` tokens, at whitespace where possible.

    Each cut is searched in a window of `limit * 24` characters (more than any
    tokenizer puts in `limit` tokens), so a megabyte-long line costs O(n log n).
    """
    window = limit * 24
    pieces = []
    rest = text
    while rest:
        head = rest[:window]
        if tokens(head) <= limit:
            cut = len(head)
        else:
            low, high = 1, len(head)  # longest prefix that fits, by binary search
            while low < high:
                mid = (low + high + 1) // 2
                if tokens(head[:mid]) <= limit:
                    low = mid
                else:
                    high = mid - 1
            cut = low
        if cut < len(rest):
            space = rest.rfind(" ", 0, cut + 1)
            if space > cut // 2:
                cut = space + 1
        pieces.append(rest[:cut].strip())
        rest = rest[cut:]
    return [piece for piece in pieces if piece] or [text[:1]]
