"""OpenDocument text, presentations and spreadsheets (.odt, .odp, .ods).

The package's `content.xml` is read with lxml (already here through python-docx; BSD,
actively maintained) under a parser that resolves no entities, loads no DTD and
touches no network. odfpy, the other choice, has had no release since 2020 and would
only wrap the same XML. Citations follow the other families: headings for .odt,
`slide N` for .odp, `Sheet!A1:D20` regions for .ods (spreadsheets.py).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator

from gritdesk.ingest.document import Block, ParsedDocument, ParseFailure, SkipFile
from gritdesk.ingest.formats import BlockBudget
from gritdesk.ingest.formats.packages import check_package
from gritdesk.ingest.formats.slides import slide_locator
from gritdesk.ingest.formats.spreadsheets import Row, cell_text, sheet_blocks

_NS = {
    "office": "urn:oasis:names:tc:opendocument:xmlns:office:1.0",
    "text": "urn:oasis:names:tc:opendocument:xmlns:text:1.0",
    "table": "urn:oasis:names:tc:opendocument:xmlns:table:1.0",
    "draw": "urn:oasis:names:tc:opendocument:xmlns:drawing:1.0",
    "presentation": "urn:oasis:names:tc:opendocument:xmlns:presentation:1.0",
}
MAX_REPEAT = 256  # a repeated non-empty cell or row is shown at most this many times


def _q(name: str) -> str:
    prefix, local = name.split(":")
    return f"{{{_NS[prefix]}}}{local}"


_SPACERS = {_q("text:s"), _q("text:tab"), _q("text:line-break")}
_PARAGRAPHS = {_q("text:p"), _q("text:h")}


def parse_opendocument(
    data: bytes,
    kind: str,
    budget: BlockBudget | None = None,
    max_inflated_bytes: int | None = None,
) -> ParsedDocument:
    """`kind` is "odt", "odp" or "ods"."""
    body = _read_body(data, kind.upper(), max_inflated_bytes)
    try:
        if kind == "odp":
            blocks = _presentation_blocks(body, budget)
        elif kind == "ods":
            blocks = []
            for table in body.iter(_q("table:table")):
                name = table.get(_q("table:name")) or "Sheet"
                blocks.extend(sheet_blocks(name, _table_rows(table), budget))
        else:
            blocks = _text_blocks(body)
    except (SkipFile, MemoryError, RecursionError):
        raise
    except Exception as exc:
        raise ParseFailure(f"cannot read {kind.upper()}: {type(exc).__name__}: {exc}") from exc
    return ParsedDocument(kind, blocks)


def _read_body(data: bytes, kind: str, max_inflated_bytes: int | None):
    from lxml import etree

    check_package(data, kind, max_inflated_bytes)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as package:
            names = set(package.namelist())
            manifest_name = "META-INF/manifest.xml"
            manifest = package.read(manifest_name) if manifest_name in names else b""
            content = package.read("content.xml")
        if b"encryption-data" in manifest:
            raise SkipFile(f"password-protected {kind} (encrypted; open it and save a copy)")
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
        root = etree.fromstring(content, parser)
    except (SkipFile, MemoryError, RecursionError):
        raise
    except Exception as exc:  # BadZipFile, KeyError (no content.xml), XMLSyntaxError
        raise ParseFailure(f"cannot read {kind}: {type(exc).__name__}: {exc}") from exc
    for spacer in root.iter(*_SPACERS):
        spacer.text = " "
    body = root.find(_q("office:body"))
    if body is None:
        raise ParseFailure(f"cannot read {kind}: content.xml has no office:body")
    return body


def _text(element) -> str:
    return " ".join("".join(element.itertext()).split())


def _text_blocks(body) -> list[Block]:
    """Paragraphs and table rows in order, under the text:h headings (by outline level)."""
    headings: list[tuple[int, str]] = []
    blocks: list[Block] = []
    for element in body.iter(_q("text:p"), _q("text:h"), _q("table:table-row")):
        if element.tag == _q("table:table-row"):
            cells = [_text(cell) for cell in element.iter(_q("table:table-cell"))]
            text = " | ".join(c for c in cells if c)
            if text:
                blocks.append(Block(text, None, heading_path=tuple(t for _, t in headings)))
            continue
        if any(parent.tag == _q("table:table-cell") for parent in element.iterancestors()):
            continue  # read with its row
        text = _text(element)
        if not text:
            continue
        is_heading = element.tag == _q("text:h")
        if is_heading:
            level = int(element.get(_q("text:outline-level")) or 1)
            while headings and headings[-1][0] >= level:
                headings.pop()
            headings.append((level, text))
        blocks.append(
            Block(text, None, heading_path=tuple(t for _, t in headings), is_heading=is_heading)
        )
    return blocks


def _presentation_blocks(body, budget: BlockBudget | None) -> list[Block]:
    """Each draw:page is a slide: its title frame is the heading, notes come last."""
    blocks: list[Block] = []
    for number, page in enumerate(body.iter(_q("draw:page")), 1):
        locator = slide_locator(number)
        title, texts, notes = "", [], []
        for frame in page.iter(_q("draw:frame")):
            in_notes = any(p.tag == _q("presentation:notes") for p in frame.iterancestors())
            frame_texts = [t for p in frame.iter(*_PARAGRAPHS) if (t := _text(p))]
            if in_notes:
                notes.extend(frame_texts)
            elif frame.get(_q("presentation:class")) == "title" and not title and frame_texts:
                title = " ".join(frame_texts)
            else:
                texts.extend(frame_texts)
        path = (title,) if title else ()
        slide = []
        if title:
            slide.append(Block(title, None, heading_path=path, is_heading=True, locator=locator))
        slide += [Block(t, None, heading_path=path, locator=locator) for t in texts]
        slide += [Block(f"Notes: {t}", None, heading_path=path, locator=locator) for t in notes]
        if budget is not None:
            budget.add(slide)
        blocks.extend(slide)
    return blocks


def _table_rows(table) -> Iterator[Row]:
    """(row number, [(column, text)]) of a table:table, repeats expanded within bounds."""
    number = 0
    for row in table.iter(_q("table:table-row")):
        repeat = int(row.get(_q("table:number-rows-repeated")) or 1)
        cells: list[tuple[int, str]] = []
        column = 0
        for cell in row:
            if cell.tag not in (_q("table:table-cell"), _q("table:covered-table-cell")):
                continue
            span = int(cell.get(_q("table:number-columns-repeated")) or 1)
            text = _cell_value(cell)
            if text:
                cells.extend((column + i + 1, text) for i in range(min(span, MAX_REPEAT)))
            column += span
        if cells:
            for i in range(min(repeat, MAX_REPEAT)):
                yield number + i + 1, cells
        number += repeat


def _cell_value(cell) -> str:
    text = _text(cell)
    if text:
        return text
    value = cell.get(f"{{{_NS['office']}}}value")
    return cell_text(value) if value is not None else ""
