"""Parsers of document families beyond text, PDF and DOCX: one module per family.

Each turns a file's bytes into `Block`s carrying what its citation needs (a slide
number, a sheet range) and raises `SkipFile` or `ParseFailure` with a reason a user can
act on. `parse.parse_document` picks the parser by suffix; all of them run inside the
bounded parser process (ingest/parser_process.py).
"""

from __future__ import annotations

from typing import Protocol

from gritdesk.ingest.document import Block


class BlockBudget(Protocol):
    """The output limit (parse.py `_OutputBudget`): raises SkipFile once blocks add up past it."""

    def add(self, blocks: list[Block]) -> None: ...
