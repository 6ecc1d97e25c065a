"""Rich Text Format: the text striprtf (BSD-3-Clause, pure Python, no dependencies)
leaves once control words, groups and destinations are removed.

RTF source lines say nothing about where text is, so blocks carry no line numbers; an
RTF file is cited by its name and headings are not recovered.
"""

from __future__ import annotations

from gritdesk.ingest.decode_text import decode_text
from gritdesk.ingest.document import Block, ParsedDocument, ParseFailure, split_lines


def parse_rtf(data: bytes) -> ParsedDocument:
    from striprtf.striprtf import rtf_to_text

    if not data.lstrip().startswith(b"{\\rtf"):
        raise ParseFailure("cannot read RTF: it does not start with '{\\rtf'")
    try:
        text = rtf_to_text(decode_text(data), errors="replace")
    except (MemoryError, RecursionError):
        raise
    except Exception as exc:
        raise ParseFailure(f"cannot read RTF: {type(exc).__name__}: {exc}") from exc
    return ParsedDocument("rtf", [Block(line, None) for line in split_lines(text)])
