"""Fenced code blocks in an answer, for "copy the last code block"."""

from __future__ import annotations

import re

FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})[^\n]*\n(?P<code>.*?)^(?P=fence)[ \t]*$", re.M | re.S)


def code_blocks(markdown: str) -> list[str]:
    """The contents of every closed fenced block, in order, without the fences."""
    return [match.group("code") for match in FENCE.finditer(markdown)]


def last_code_block(markdown: str) -> str | None:
    blocks = code_blocks(markdown)
    return blocks[-1] if blocks else None
