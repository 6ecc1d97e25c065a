"""Files built to hang or exhaust a parser, for the hardening tests (issue 11).

Each is small on disk (or quick to write) and costs minutes or gigabytes to a parser
without bounds: a quadratic regex, a quadratic parent walk, a shared PDF content
stream, a DOCX zip bomb, tens of millions of one-character lines, a backtracking
ignore pattern.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from pathlib import Path

from ingest.fixture_files import make_docx, pdf_file


def markdown_heading_spaces(spaces: int = 1_000_000) -> bytes:
    """A heading line of a million spaces that does not end like a heading should."""
    return b"# a" + b" " * spaces + b"x\n\nmarkdown body after the long line\n"


def nested_html(depth: int = 200_000) -> bytes:
    return b"<html><body>" + b"<div>deep " * depth + b"</body></html>"


def pdf_shared_content_stream(pages: int, ops: int, shared: bool = True) -> bytes:
    """`pages` pages that all draw one compressed content stream of `ops` text operations
    (`shared`), or each a stream of its own alike."""
    content = b"BT /F1 12 Tf 72 720 Td " + b"(shared) Tj " * ops + b"ET"
    stream = zlib.compress(content, 9)
    streams = 1 if shared else pages
    objects: list[bytes] = [b"<< /Type /Catalog /Pages 2 0 R >>"]
    page_ids = [4 + streams + i for i in range(pages)]
    kids = " ".join(f"{pid} 0 R" for pid in page_ids)
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>".encode())
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for _ in range(streams):
        objects.append(
            b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream)
            + stream
            + b"\nendstream"
        )
    for index in range(pages):
        contents = 4 if shared else 4 + index
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
            b"/Resources << /Font << /F1 3 0 R >> >> >>" % contents
        )
    return pdf_file(objects)


def write_docx_bomb(path: Path, inflated_bytes: int) -> None:
    """A valid DOCX whose word/document.xml inflates to `inflated_bytes` (a zip bomb)."""
    template = zipfile.ZipFile(io.BytesIO(make_docx([(None, "bomb")])))
    head = (
        b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        b'<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        b"<w:body><w:p><w:r><w:t>"
    )
    tail = b"</w:t></w:r></w:p></w:body></w:document>"
    block = b"a" * (1 << 20)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as bomb:
        for item in template.infolist():
            if item.filename != "word/document.xml":
                bomb.writestr(item, template.read(item.filename))
        with bomb.open("word/document.xml", "w", force_zip64=True) as member:
            member.write(head)
            for _ in range(inflated_bytes // len(block)):
                member.write(block)
            member.write(tail)


def one_char_lines(total_bytes: int = 60 * 1024 * 1024) -> bytes:
    return b"a\n" * (total_bytes // 2)


BACKTRACKING_IGNORE = "*a" * 12 + "b\n"  # Python's re backtracks O(n^12) on a long 'aaa...' name
BACKTRACKING_NAME = "a" * 40 + ".txt"
