"""Turn a file's bytes into blocks of text with their positions and headings.

One entry point, `parse_document`, picks the parser by file extension. Parsers raise
`SkipFile` or `ParseFailure` with a reason a user can act on; the indexer records it
against the file and carries on with the next one.
"""

from __future__ import annotations

import io
import logging
import re
import warnings
from pathlib import PurePosixPath

from gritdesk.ingest.decode_text import decode_text
from gritdesk.ingest.document import Block, ParsedDocument, ParseFailure, SkipFile


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
UNSUPPORTED_SUFFIXES = frozenset(
    _words(".doc .xls .xlsx .ppt .pptx .odt .ods .odp .epub .pages .numbers .key")
)

logging.getLogger("pypdf").setLevel(logging.ERROR)


def skip_reason_from_name(rel_path: str) -> str | None:
    """Why a file is skipped on its name alone (before reading it), or None."""
    suffix = PurePosixPath(rel_path).suffix.lower()
    if suffix in BINARY_SUFFIXES:
        return f"binary file type ({suffix})"
    if suffix in UNSUPPORTED_SUFFIXES:
        return f"unsupported document format ({suffix})"
    return None


def parse_document(rel_path: str, data: bytes) -> ParsedDocument:
    """Blocks of text from `data`, the bytes of the file at `rel_path`."""
    if not data:
        raise SkipFile("empty file")
    suffix = PurePosixPath(rel_path).suffix.lower()
    if suffix == ".pdf":
        document = parse_pdf(data)
    elif suffix == ".docx":
        document = parse_docx(data)
    elif suffix in HTML_SUFFIXES:
        document = parse_html(decode_text(data))
    elif suffix in MARKDOWN_SUFFIXES:
        document = parse_markdown(decode_text(data))
    else:
        document = parse_plain_text(decode_text(data))
    if not any(block.text.strip() for block in document.blocks):
        raise SkipFile("no text content")
    return document


def split_lines(text: str) -> list[str]:
    """Lines as editors number them (only \\n, \\r\\n and \\r end a line)."""
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def parse_plain_text(text: str) -> ParsedDocument:
    return ParsedDocument(
        "text", [Block(line, number) for number, line in enumerate(split_lines(text), 1)]
    )


# --- Markdown -----------------------------------------------------------------------------

_ATX_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
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
        atx = _ATX_HEADING.match(line)
        if atx:
            path = open_heading(len(atx.group(1)), (atx.group(2) or "").strip())
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


def _front_matter_end(lines: list[str]) -> int:
    """Line number of the `---` closing YAML front matter, or 0 when there is none."""
    if not lines or lines[0].strip() != "---":
        return 0
    for number, line in enumerate(lines[1:], 2):
        if line.strip() in ("---", "..."):
            return number
    return 0


# --- HTML ---------------------------------------------------------------------------------

_HTML_BLOCK_TAGS = frozenset(
    _words(
        """
        p div li dt dd pre blockquote td th caption figcaption address article aside section
        header footer main nav summary details h1 h2 h3 h4 h5 h6 title tr table ul ol dl body
        """
    )
)
_HTML_SKIP_TAGS = frozenset({"script", "style", "noscript", "template", "svg", "head"})


def parse_html(text: str) -> ParsedDocument:
    """Text of each block element, at its source line, under the h1-h6 headings before it."""
    from bs4 import BeautifulSoup, Comment, Declaration, Doctype, ProcessingInstruction

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
    for string in soup.find_all(string=True):
        if isinstance(string, Comment | Declaration | Doctype | ProcessingInstruction):
            continue
        if any(parent.name in _HTML_SKIP_TAGS for parent in string.parents):
            continue
        block = next((p for p in string.parents if p.name in _HTML_BLOCK_TAGS), None)
        if block is not current_block:
            flush()
            current_block = block
            line = getattr(block, "sourceline", None)
        pieces.append(str(string))
    flush()
    return ParsedDocument("html", blocks)


# --- PDF ----------------------------------------------------------------------------------


def parse_pdf(data: bytes) -> ParsedDocument:
    """Lines of each page's extracted text, with the page number."""
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not _opens_without_password(reader):
            raise SkipFile("encrypted PDF (needs a password)")
        pages = list(reader.pages)
    except SkipFile:
        raise
    except Exception as exc:  # pypdf raises many types for damaged files
        raise ParseFailure(f"cannot read PDF: {type(exc).__name__}: {exc}") from exc

    blocks: list[Block] = []
    failures = 0
    for number, page in enumerate(pages, 1):
        try:
            text = page.extract_text() or ""
        except Exception:
            failures += 1  # one bad page does not lose the others
            continue
        blocks.extend(Block(line, None, page=number) for line in split_lines(text))
    if failures and failures == len(pages):
        raise ParseFailure(f"cannot extract text from any of the {len(pages)} PDF pages")
    if not any(block.text.strip() for block in blocks):
        raise SkipFile("PDF has no extractable text (scanned images?)")
    return ParsedDocument("pdf", blocks)


def _opens_without_password(reader) -> bool:
    try:
        return bool(reader.decrypt(""))
    except Exception:
        return False


# --- DOCX ---------------------------------------------------------------------------------

_DOCX_HEADING_STYLE = re.compile(r"^Heading (\d)$")


def parse_docx(data: bytes) -> ParsedDocument:
    """Paragraphs and table rows in document order, under their Heading N / Title styles."""
    import docx
    from docx.opc.exceptions import PackageNotFoundError
    from docx.table import Table

    try:
        document = docx.Document(io.BytesIO(data))
        content = list(document.iter_inner_content())
    except (PackageNotFoundError, KeyError, ValueError, OSError) as exc:
        raise ParseFailure(f"cannot read DOCX: {exc or type(exc).__name__}") from exc
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
