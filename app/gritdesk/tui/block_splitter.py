"""Keeps every Markdown block of a streaming answer short, so drawing a token costs the same
at the end of a long answer as at its start.

Textual's Markdown re-parses and re-wraps the whole last block on each append: a long
paragraph or code block makes every update cost more than the one before (measured: a
7,750-character paragraph, as a synthetic 1B model writes, took ~0.3 s of the UI thread
per update on 2 busy cores, and keystrokes waited behind it). While an answer streams,
the text fed to the widget gets a block break once a block passes `limit` characters: a
blank line after a space in prose, or a fence closed and reopened at a line end in code.
When the answer ends, the widget is drawn once from the exact text.
"""

from __future__ import annotations

import re

FENCE = re.compile(r" {0,3}(`{3,}|~{3,})(.*)")
BLOCK_CHARS = 800


class BlockSplitter:
    """Feed it the pieces of a streaming answer; it returns them with breaks added."""

    def __init__(self, limit: int = BLOCK_CHARS) -> None:
        self.limit = limit
        self.line = ""  # the current line so far
        self.block = 0  # characters in the current block
        self.fence: tuple[str, str] | None = None  # (marker, info) of an open code fence
        self.split = False  # a break was added: the answer needs drawing again at the end

    def feed(self, piece: str) -> str:
        out: list[str] = []
        for char in piece:
            out.append(char)
            self.block += 1
            if char != "\n":
                self.line += char
                if char == " " and self.fence is None and self._full():
                    out.append("\n\n")
                    self._new_block()
                continue
            self._end_line()
            if self._full():
                if self.fence is None:
                    out.append("\n")  # a blank line: a new paragraph
                else:
                    marker, info = self.fence
                    out.append(f"{marker}\n\n{marker}{info}\n")
                self._new_block()
        return "".join(out)

    def _full(self) -> bool:
        return self.block >= self.limit

    def _new_block(self) -> None:
        self.block = 0
        self.line = ""
        self.split = True

    def _end_line(self) -> None:
        line, self.line = self.line, ""
        match = FENCE.fullmatch(line)
        if self.fence is None:
            if match:
                self.fence = (match.group(1), match.group(2))
                self.block = 0
            elif not line.strip():
                self.block = 0  # a blank line ends a paragraph
        elif match and match.group(1).startswith(self.fence[0]) and not match.group(2).strip():
            self.fence = None
            self.block = 0
