"""HTML: the text of each block element at its source line, under the headings before it
(also used for HTML mail bodies and EPUB chapters)."""

from __future__ import annotations

import warnings

from gritdesk.ingest.document import Block, ParsedDocument

_HTML_BLOCK_TAGS = frozenset(
    (
        """
        p div li dt dd pre blockquote td th caption figcaption address article aside section
        header footer main nav summary details h1 h2 h3 h4 h5 h6 title tr table ul ol dl body
        """
    ).split()
)
_HTML_SKIP_TAGS = frozenset({"script", "style", "noscript", "template", "svg", "head"})


def parse_html(text: str) -> ParsedDocument:
    """Text of each block element, at its source line, under the h1-h6 headings before it."""
    from bs4 import BeautifulSoup, Comment, Declaration, Doctype, ProcessingInstruction
    from bs4.element import NavigableString, PageElement, Tag

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        soup = BeautifulSoup(text, "html.parser")
    headings: list[tuple[int, str]] = []
    blocks: list[Block] = []
    current_block = None
    pieces: list[str] = []
    line: int | None = None

    def flush() -> None:
        joined = " ".join("".join(pieces).split())
        if joined:
            tag_name = current_block.name if current_block is not None else ""
            is_heading = tag_name in {"h1", "h2", "h3", "h4", "h5", "h6"}
            if is_heading:
                level = int(tag_name[1])
                while headings and headings[-1][0] >= level:
                    headings.pop()
                headings.append((level, joined))
            blocks.append(
                Block(
                    joined, line, heading_path=tuple(t for _, t in headings), is_heading=is_heading
                )
            )
        pieces.clear()

    for line_break in soup.find_all("br"):
        line_break.replace_with("\n")
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    if title:
        blocks.append(Block(title, soup.title.sourceline))
    # One pass over the tree with an explicit stack, carrying each node's nearest block
    # element down: asking every string for its parents is quadratic in the nesting
    # depth, and recursion would overflow on a page nested 200,000 deep.
    stack: list[tuple[PageElement, Tag | None]] = [(soup, None)]
    while stack:
        node, block = stack.pop()
        if isinstance(node, NavigableString):
            if isinstance(node, Comment | Declaration | Doctype | ProcessingInstruction):
                continue
            if block is not current_block:
                flush()
                current_block = block
                line = getattr(block, "sourceline", None)
            pieces.append(str(node))
            continue
        if not isinstance(node, Tag) or node.name in _HTML_SKIP_TAGS:
            continue
        if node.name in _HTML_BLOCK_TAGS:
            block = node
        stack.extend((child, block) for child in reversed(node.contents))
    flush()
    return ParsedDocument("html", blocks)
