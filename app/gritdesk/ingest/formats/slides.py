"""Presentations: the text of each slide (title, text boxes, tables, speaker notes).

Every block of a slide carries the locator "slide N" (1-based, in show order), so a
chunk never spans two slides and is cited as `deck.pptx:slide 3`; the slide's title is
its heading.
"""

from __future__ import annotations

import io

from gritdesk.ingest.document import Block, ParsedDocument, ParseFailure
from gritdesk.ingest.formats import BlockBudget
from gritdesk.ingest.formats.packages import check_package

MAX_GROUP_DEPTH = 32  # group shapes nest; deeper ones are not read


def slide_locator(number: int) -> str:
    return f"slide {number}"


def parse_pptx(
    data: bytes, budget: BlockBudget | None = None, max_inflated_bytes: int | None = None
) -> ParsedDocument:
    """Blocks of each slide's text in shape order, then its notes, under its title.

    python-pptx (MIT, maintained by the python-docx author) reads the package; the
    package is checked first for encryption and for a zip bomb.
    """
    import pptx

    check_package(data, "PPTX", max_inflated_bytes)
    try:
        presentation = pptx.Presentation(io.BytesIO(data))
        slides = list(presentation.slides)
    except (MemoryError, RecursionError):
        raise
    except Exception as exc:  # zipfile.BadZipFile, KeyError, lxml and package errors
        raise ParseFailure(f"cannot read PPTX: {type(exc).__name__}: {exc}") from exc

    blocks: list[Block] = []
    for number, slide in enumerate(slides, 1):
        try:
            slide_blocks = _slide_blocks(slide, slide_locator(number))
        except (MemoryError, RecursionError):
            raise
        except Exception as exc:
            raise ParseFailure(
                f"cannot read PPTX slide {number}: {type(exc).__name__}: {exc}"
            ) from exc
        if budget is not None:
            budget.add(slide_blocks)
        blocks.extend(slide_blocks)
    return ParsedDocument("pptx", blocks)


def _slide_blocks(slide, locator: str) -> list[Block]:
    title_shape = slide.shapes.title
    title = " ".join(title_shape.text_frame.text.split()) if title_shape is not None else ""
    path = (title,) if title else ()
    blocks = []
    if title:
        blocks.append(Block(title, None, heading_path=path, is_heading=True, locator=locator))
    for text in _shape_texts(slide.shapes, skip=title_shape):
        blocks.append(Block(text, None, heading_path=path, locator=locator))
    if slide.has_notes_slide:
        notes_frame = slide.notes_slide.notes_text_frame
        notes = notes_frame.text if notes_frame is not None else ""
        for line in notes.splitlines():
            if line.strip():
                note = f"Notes: {line.strip()}"
                blocks.append(Block(note, None, heading_path=path, locator=locator))
    return blocks


def _shape_texts(shapes, skip=None) -> list[str]:
    """Text of each paragraph and table row, in shape order, groups opened (bounded)."""
    from pptx.shapes.group import GroupShape

    texts: list[str] = []
    stack = [(shape, 0) for shape in reversed(list(shapes))]
    while stack:
        shape, depth = stack.pop()
        if skip is not None and shape.shape_id == skip.shape_id:
            continue
        if isinstance(shape, GroupShape):
            if depth < MAX_GROUP_DEPTH:
                stack.extend((child, depth + 1) for child in reversed(list(shape.shapes)))
            continue
        if getattr(shape, "has_text_frame", False) and shape.has_text_frame:
            for paragraph in shape.text_frame.paragraphs:
                text = " ".join("".join(run.text for run in paragraph.runs).split())
                if text:
                    texts.append(text)
        if getattr(shape, "has_table", False) and shape.has_table:
            for row in shape.table.rows:
                cells = [" ".join(cell.text.split()) for cell in row.cells]
                text = " | ".join(c for c in dict.fromkeys(cells) if c)
                if text:
                    texts.append(text)
    return texts
