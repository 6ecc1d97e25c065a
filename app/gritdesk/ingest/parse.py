"""Turn a file's bytes into blocks of text with their positions and headings.

One entry point, `parse_document`, picks the parser by file extension. Parsers raise
`SkipFile` or `ParseFailure` with a reason a user can act on; the indexer records it
against the file and carries on with the next one.
"""

from __future__ import annotations

import io
import logging
import re
import time
from pathlib import PurePosixPath

from gritdesk.ingest.byte_sizes import describe_bytes
from gritdesk.ingest.decode_text import decode_text
from gritdesk.ingest.document import Block, ParsedDocument, ParseFailure, SkipFile, split_lines
from gritdesk.ingest.formats.ebooks import parse_epub
from gritdesk.ingest.formats.html import parse_html
from gritdesk.ingest.formats.mail import MAX_ATTACHMENT_BYTES, parse_mail
from gritdesk.ingest.formats.ocr import OCR_TURNED_OFF, OCR_UNAVAILABLE, ocr_pages, tesseract_path
from gritdesk.ingest.formats.opendocument import parse_opendocument
from gritdesk.ingest.formats.packages import check_package
from gritdesk.ingest.formats.rtf import parse_rtf
from gritdesk.ingest.formats.slides import parse_pptx
from gritdesk.ingest.formats.spreadsheets import parse_csv, parse_xlsx


def _words(text: str) -> list[str]:
    return text.split()


MARKDOWN_SUFFIXES = frozenset({".md", ".markdown", ".mdown", ".mkd", ".mdx"})
HTML_SUFFIXES = frozenset({".html", ".htm", ".xhtml"})

# Skipped without reading: their bytes are not text and no parser here reads them.
BINARY_SUFFIXES = frozenset(
    _words(
        """
        .png .jpg .jpeg .gif .bmp .tif .tiff .webp .ico .icns .heic .psd .raw .cr2 .nef .svgz
        .mp3 .wav .flac .ogg .m4a .aac .opus .mp4 .m4v .mov .avi .mkv .webm .wmv
        .zip .gz .tgz .bz2 .xz .zst .7z .rar .tar .jar .war .whl .egg .deb .rpm .dmg .iso .img
        .exe .dll .so .dylib .o .a .lib .obj .class .pyc .pyo .wasm .bin .dat
        .gguf .safetensors .pt .pth .onnx .npy .npz .pkl .pickle .h5 .parquet .arrow .feather
        .sqlite .sqlite3 .db .mdb .woff .woff2 .ttf .otf .eot
        """
    )
)
# Documents in formats no parser here reads yet.
UNSUPPORTED_SUFFIXES = frozenset(_words(".doc .xls .ppt .pages .numbers .key"))


def skip_reason_from_name(rel_path: str) -> str | None:
    """Why a file is skipped on its name alone (before reading it), or None."""
    suffix = PurePosixPath(rel_path).suffix.lower()
    if suffix in BINARY_SUFFIXES:
        return f"binary file type ({suffix})"
    if suffix in UNSUPPORTED_SUFFIXES:
        return f"unsupported document format ({suffix})"
    return None


def parse_document(
    rel_path: str,
    data: bytes,
    *,
    max_output_bytes: int | None = None,
    max_inflated_bytes: int | None = None,
    ocr: bool = True,
    ocr_seconds: float = 60.0,
) -> ParsedDocument:
    """Blocks of text from `data`, the bytes of the file at `rel_path`.

    Scanned PDF pages are read by OCR when `ocr` is on and tesseract is installed,
    for at most `ocr_seconds` per file.

    `max_output_bytes` bounds the result (text plus BLOCK_OVERHEAD per block) and
    `max_inflated_bytes` what a compressed format (DOCX) may expand to; past either the
    file is skipped, checked before the work where the size is known up front.
    """
    if not data:
        raise SkipFile("empty file")
    budget = _OutputBudget(max_output_bytes)
    suffix = PurePosixPath(rel_path).suffix.lower()
    if suffix == ".pdf":
        document = parse_pdf(data, budget, ocr=ocr, ocr_seconds=ocr_seconds)
    elif suffix == ".docx":
        document = parse_docx(data, max_inflated_bytes)
    elif suffix == ".pptx":
        document = parse_pptx(data, budget, max_inflated_bytes)
    elif suffix == ".xlsx":
        document = parse_xlsx(data, budget, max_inflated_bytes)
    elif suffix in (".odt", ".odp", ".ods"):
        document = parse_opendocument(data, suffix[1:], budget, max_inflated_bytes)
    elif suffix == ".epub":
        document = parse_epub(data, budget, max_inflated_bytes)
    elif suffix == ".rtf":
        document = parse_rtf(data)
    elif suffix in (".eml", ".mbox"):
        document = parse_mail(data, suffix[1:], budget, max_inflated_bytes, _attachment)
    elif suffix in (".csv", ".tsv"):
        document = parse_csv(budget.check_text(decode_text(data)), suffix, budget)
    elif suffix in HTML_SUFFIXES:
        document = parse_html(decode_text(data))
    elif suffix in MARKDOWN_SUFFIXES:
        document = parse_markdown(budget.check_text(decode_text(data)))
    else:
        document = parse_plain_text(budget.check_text(decode_text(data)))
    budget.check_blocks(document.blocks)
    if not any(block.text.strip() for block in document.blocks):
        raise SkipFile("no text content")
    return document


def _attachment(name: str, data: bytes, max_inflated_bytes: int | None) -> ParsedDocument | None:
    """A mail attachment parsed like a file of its name; None when gritdesk skips or cannot
    read it (handed to the mail parser, which sits below this module)."""
    if skip_reason_from_name(name):
        return None
    try:
        return parse_document(
            name,
            data,
            max_output_bytes=MAX_ATTACHMENT_BYTES * 4,
            max_inflated_bytes=max_inflated_bytes,
        )
    except (SkipFile, ParseFailure):
        return None


BLOCK_OVERHEAD = 32  # bytes a block costs beyond its text, for the output limit


def _output_size(blocks: list[Block]) -> int:
    return sum(len(block.text) + BLOCK_OVERHEAD for block in blocks)


class _OutputBudget:
    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.used = 0

    def check_text(self, text: str) -> str:
        """Text to be split into lines: refused before the lines are made."""
        self._check(len(text) + BLOCK_OVERHEAD * (text.count("\n") + text.count("\r") + 1))
        return text

    def check_blocks(self, blocks: list[Block]) -> None:
        self._check(_output_size(blocks))

    def add(self, blocks: list[Block]) -> None:
        """Blocks made one part at a time (a PDF page): refused as soon as they add up."""
        self.used += _output_size(blocks)
        self._check(self.used)

    def _check(self, size: int) -> None:
        if self.limit is not None and size > self.limit:
            raise SkipFile(
                f"parsed text and lines over the {describe_bytes(self.limit)} limit "
                "(limit: parse_output_mib)"
            )


def parse_plain_text(text: str) -> ParsedDocument:
    return ParsedDocument(
        "text", [Block(line, number) for number, line in enumerate(split_lines(text), 1)]
    )


# --- Markdown -----------------------------------------------------------------------------

_ATX_OPENING = re.compile(r" {0,3}(#{1,6})(?=[ \t]|$)")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_SETEXT_UNDERLINE = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")


def parse_markdown(text: str) -> ParsedDocument:
    """Lines with the heading path they sit under (ATX `#` and setext headings).

    Lines in code fences and in YAML front matter are never headings.
    """
    lines = split_lines(text)
    headings: list[tuple[int, str]] = []  # (level, title) of the open headings
    blocks: list[Block] = []
    fence: str | None = None
    previous_is_text = False  # a paragraph line, which a setext underline turns into a heading

    def current_path() -> tuple[str, ...]:
        return tuple(title for _, title in headings)

    def open_heading(level: int, title: str) -> tuple[str, ...]:
        while headings and headings[-1][0] >= level:
            headings.pop()
        headings.append((level, title))
        return current_path()

    front_matter_end = _front_matter_end(lines)
    for number, line in enumerate(lines, 1):
        if number <= front_matter_end:
            blocks.append(Block(line, number))
            continue
        fence_match = _FENCE.match(line)
        if fence is not None:
            marker = fence_match.group(1) if fence_match else ""
            if marker[:1] == fence[0] and len(marker) >= len(fence):
                fence = None
            blocks.append(Block(line, number, heading_path=current_path()))
            previous_is_text = False
            continue
        if fence_match:
            fence = fence_match.group(1)
            blocks.append(Block(line, number, heading_path=current_path()))
            previous_is_text = False
            continue
        atx = _atx_heading(line)
        if atx:
            path = open_heading(*atx)
            blocks.append(Block(line, number, heading_path=path, is_heading=True))
            previous_is_text = False
            continue
        underline = _SETEXT_UNDERLINE.match(line)
        if underline and previous_is_text:
            title_block = blocks[-1]
            path = open_heading(1 if underline.group(1)[0] == "=" else 2, title_block.text.strip())
            blocks[-1] = Block(
                title_block.text, title_block.line, heading_path=path, is_heading=True
            )
            blocks.append(Block(line, number, heading_path=path, is_heading=True))
            previous_is_text = False
            continue
        blocks.append(Block(line, number, heading_path=current_path()))
        previous_is_text = bool(line.strip())
    return ParsedDocument("markdown", blocks)


def _atx_heading(line: str) -> tuple[int, str] | None:
    """(level, title) of an ATX heading line (`## Title ##`), else None.

    String methods, not one regex: a lazy title group followed by optional closing
    hashes and trailing blanks backtracks quadratically on a line of spaces.
    """
    opening = _ATX_OPENING.match(line)
    if opening is None:
        return None
    title = line[opening.end() :].strip(" \t")
    without_closing = title.rstrip("#")
    if not without_closing:
        title = ""  # only the closing sequence
    elif without_closing[-1] in " \t" and len(without_closing) < len(title):
        title = without_closing.rstrip(" \t")
    return len(opening.group(1)), title.strip()


def _front_matter_end(lines: list[str]) -> int:
    """Line number of the `---` closing YAML front matter, or 0 when there is none."""
    if not lines or lines[0].strip() != "---":
        return 0
    for number, line in enumerate(lines[1:], 2):
        if line.strip() in ("---", "..."):
            return number
    return 0


# --- PDF ----------------------------------------------------------------------------------


def parse_pdf(
    data: bytes,
    budget: _OutputBudget | None = None,
    *,
    ocr: bool = True,
    ocr_seconds: float = 60.0,
) -> ParsedDocument:
    """Lines of each page's extracted text, with the page number.

    A page with no text but an image is a scanned page: its text comes from OCR
    (formats/ocr.py) when `ocr` is on and tesseract is installed.

    Pages that draw the very same content stream as an earlier page (one stream shared
    by thousands of pages costs thousands of extractions) add no text of their own.
    """
    from pypdf import PdfReader

    # pypdf logs every repaired cross-reference: a damaged file is our skip reason instead
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not _opens_without_password(reader):
            raise SkipFile("encrypted PDF (needs a password)")
        pages = list(reader.pages)
    except (SkipFile, MemoryError, RecursionError):  # limits are the caller's to report
        raise
    except Exception as exc:  # pypdf raises many types for damaged files
        raise ParseFailure(f"cannot read PDF: {type(exc).__name__}: {exc}") from exc

    by_page: dict[int, list[Block]] = {}
    failures = 0
    scanned: list[int] = []
    drawn: set[tuple] = set()
    for number, page in enumerate(pages, 1):
        contents = _content_streams(page)
        if contents is not None:
            if contents in drawn:
                continue
            drawn.add(contents)
        try:
            text = page.extract_text() or ""
        except (MemoryError, RecursionError):
            raise
        except Exception:
            failures += 1  # one bad page does not lose the others
            continue
        if not text.strip() and _draws_images(page):
            scanned.append(number)
            continue
        page_blocks = [Block(line, None, page=number) for line in split_lines(text)]
        if budget is not None:
            budget.add(page_blocks)
        by_page[number] = page_blocks
    if failures and failures == len(pages):
        raise ParseFailure(f"cannot extract text from any of the {len(pages)} PDF pages")
    ocr_unfinished = False
    if scanned and ocr and tesseract_path():
        deadline = time.monotonic() + ocr_seconds
        read = ocr_pages(data, scanned, deadline)
        ocr_unfinished = time.monotonic() >= deadline - 1 and len(read) < len(scanned)
        for number, text in read.items():
            page_blocks = [Block(line, None, page=number) for line in split_lines(text)]
            if budget is not None:
                budget.add(page_blocks)
            by_page[number] = page_blocks
    blocks = [block for number in sorted(by_page) for block in by_page[number]]
    if not any(block.text.strip() for block in blocks):
        if scanned and not ocr:
            raise SkipFile(OCR_TURNED_OFF)
        if scanned and not tesseract_path():
            raise SkipFile(OCR_UNAVAILABLE)
        if scanned and ocr_unfinished:
            raise SkipFile(
                f"scanned PDF: OCR of {len(scanned)} pages did not finish in "
                f"{ocr_seconds:g} s (limit: parse_timeout_s)"
            )
        if scanned:
            raise SkipFile("scanned PDF: OCR found no text on its pages")
        raise SkipFile("PDF has no extractable text (scanned images?)")
    return ParsedDocument("pdf", blocks)


def scanned_pdf_pages(data: bytes) -> tuple[int, list[int]]:
    """The PDF's page count, and the 1-based pages a parse would send to OCR, found
    cheaply for the pre-run estimate: pages that draw images and show no text (no `BT`
    text object in their content stream; the parse's own test extracts the text, which
    costs as much as the parse). Pages repeating an earlier page's content stream are
    left out, as there."""
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    if reader.is_encrypted and not _opens_without_password(reader):
        return 0, []  # skipped by the run
    scanned: list[int] = []
    drawn: set[tuple] = set()
    for number, page in enumerate(reader.pages, 1):
        contents = _content_streams(page)
        if contents is not None:
            if contents in drawn:
                continue
            drawn.add(contents)
        if _draws_images(page) and not _shows_text(page):
            scanned.append(number)
    return len(reader.pages), scanned


_TEXT_OBJECT = re.compile(rb"(?<![A-Za-z0-9_])BT(?![A-Za-z0-9_])")


def _shows_text(page) -> bool:
    try:
        contents = page.get_contents()
        return contents is not None and bool(_TEXT_OBJECT.search(contents.get_data()))
    except Exception:
        return True  # unreadable: not counted as a scan


def _draws_images(page) -> bool:
    """Whether the page's resources hold images or forms (what a scan is drawn with)."""
    try:
        resources = page.get("/Resources")
        resources = resources.get_object() if resources is not None else None
        return bool(resources and resources.get("/XObject"))
    except Exception:
        return False


def _content_streams(page) -> tuple | None:
    """The page's content stream references as (object, generation) pairs; None when the
    page holds its contents directly (nothing to share)."""
    from pypdf.generic import IndirectObject

    try:
        contents = page.get("/Contents")
        refs = contents if isinstance(contents, list) else [contents]
        if refs and all(isinstance(ref, IndirectObject) for ref in refs):
            return tuple((ref.idnum, ref.generation) for ref in refs)
    except Exception:
        pass
    return None


def _opens_without_password(reader) -> bool:
    try:
        return bool(reader.decrypt(""))
    except Exception:
        return False


# --- DOCX ---------------------------------------------------------------------------------

_DOCX_HEADING_STYLE = re.compile(r"^Heading (\d)$")


def parse_docx(data: bytes, max_inflated_bytes: int | None = None) -> ParsedDocument:
    """Paragraphs and table rows in document order, under their Heading N / Title styles.

    python-docx reads each part whole, so a part that inflates past `max_inflated_bytes`
    (a zip bomb) is refused by its declared size first; zipfile never inflates a member
    past the size it declares.
    """
    import docx
    from docx.opc.exceptions import PackageNotFoundError
    from docx.table import Table

    check_package(data, "DOCX", max_inflated_bytes)
    try:
        document = docx.Document(io.BytesIO(data))
        content = list(document.iter_inner_content())
    except (PackageNotFoundError, KeyError, ValueError, OSError) as exc:
        raise ParseFailure(f"cannot read DOCX: {exc or type(exc).__name__}") from exc
    except (MemoryError, RecursionError):
        raise
    except Exception as exc:  # zipfile.BadZipFile, lxml errors
        raise ParseFailure(f"cannot read DOCX: {type(exc).__name__}: {exc}") from exc

    headings: list[tuple[int, str]] = []
    blocks: list[Block] = []
    for item in content:
        if isinstance(item, Table):
            for row in item.rows:
                cells = [" ".join(cell.text.split()) for cell in row.cells]
                text = " | ".join(c for c in dict.fromkeys(cells) if c)  # merged cells repeat
                if text:
                    blocks.append(Block(text, None, heading_path=tuple(t for _, t in headings)))
            continue
        text = item.text.strip()
        if not text:
            continue
        style = item.style.name if item.style is not None else ""
        match = _DOCX_HEADING_STYLE.match(style or "")
        level = 0 if style == "Title" else int(match.group(1)) if match else None
        if level is not None:
            while headings and headings[-1][0] >= level:
                headings.pop()
            headings.append((level, text))
        blocks.append(
            Block(
                text,
                None,
                heading_path=tuple(t for _, t in headings),
                is_heading=level is not None,
            )
        )
    return ParsedDocument("docx", blocks)
