"""Parsing: encodings, binary detection, Markdown/HTML headings, PDF pages, DOCX styles."""

from __future__ import annotations

import pytest

from gritdesk.ingest.decode_text import decode_text
from gritdesk.ingest.document import ParseFailure, SkipFile
from gritdesk.ingest.parse import parse_document, skip_reason_from_name
from ingest.fixture_files import make_docx, make_pdf


def texts(document) -> list[str]:
    return [block.text for block in document.blocks if block.text.strip()]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"plain ascii\n", "plain ascii\n"),
        ("naïve café ☕\n".encode(), "naïve café ☕\n"),
        ("\ufeffwith bom".encode("utf-8"), "with bom"),
        ("utf-16 text é".encode("utf-16"), "utf-16 text é"),
        (
            "Le café est très bon; la crème brûlée à la française.\n".encode("latin-1"),
            "Le café est très bon; la crème brûlée à la française.\n",
        ),
        (
            "Grüße aus Köln. Schöne Straße, große Füße.\n".encode("cp1252"),
            "Grüße aus Köln. Schöne Straße, große Füße.\n",
        ),
    ],
)
def test_decode_text_encodings(data: bytes, expected: str) -> None:
    assert decode_text(data) == expected


def test_mostly_utf8_with_bad_bytes_keeps_utf8() -> None:
    data = "première ligne, déjà vu\n".encode() + b"broken \xff\xfe byte\n" + "fin ☕\n".encode()
    text = decode_text(data)
    assert text.startswith("première ligne, déjà vu\n")
    assert "\ufffd" in text
    assert text.endswith("fin ☕\n")


def test_binary_is_refused_with_a_reason() -> None:
    with pytest.raises(SkipFile, match="binary file"):
        decode_text(b"\x7fELF\x02\x01\x01\x00\x00\x00" + bytes(range(256)))
    with pytest.raises(SkipFile, match="binary file"):
        decode_text(bytes([1, 2, 3, 4, 5, 6, 7, 8]) * 100)


def test_empty_file_and_name_based_skips() -> None:
    with pytest.raises(SkipFile, match="empty file"):
        parse_document("empty.txt", b"")
    with pytest.raises(SkipFile, match="no text content"):
        parse_document("blank.txt", b"\n\n   \n")
    assert skip_reason_from_name("photo.JPG") == "binary file type (.jpg)"
    assert skip_reason_from_name("sheet.xls") == "unsupported document format (.xls)"
    assert skip_reason_from_name("sheet.xlsx") is None
    assert skip_reason_from_name("notes.md") is None


def test_plain_text_lines_are_numbered_like_an_editor() -> None:
    document = parse_document("a.txt", b"one\r\ntwo\rthree\nfour\x0cstill four\n")
    assert [(b.line, b.text) for b in document.blocks[:4]] == [
        (1, "one"),
        (2, "two"),
        (3, "three"),
        (4, "four\x0cstill four"),
    ]


def test_markdown_heading_paths_ignore_code_fences() -> None:
    source = "\n".join(
        [
            "# Guide",  # 1
            "intro",  # 2
            "## Install",  # 3
            "```sh",  # 4
            "# not a heading",  # 5
            "```",  # 6
            "Setext Title",  # 7
            "------------",  # 8
            "body",  # 9
            "# Other ##",  # 10
            "end",  # 11
        ]
    )
    document = parse_document("g.md", source.encode())
    path_of = {block.line: block.heading_path for block in document.blocks}
    assert path_of[2] == ("Guide",)
    assert path_of[5] == ("Guide", "Install")
    assert path_of[9] == ("Guide", "Setext Title")
    assert path_of[11] == ("Other",)
    headings = [b.line for b in document.blocks if b.is_heading]
    assert headings == [1, 3, 7, 8, 10]


def test_html_text_headings_and_source_lines() -> None:
    html = """<!doctype html>
<html><head><title>Page T</title><style>.x { color: red }</style></head>
<body>
<h1>Top</h1>
<p>First <b>para</b>graph.</p>
<script>var hidden = "nope";</script>
<h2>Sub</h2>
<ul><li>item one</li>
<li>item two</li></ul>
</body></html>
"""
    document = parse_document("p.html", html.encode())
    rows = [(b.text, b.line, b.heading_path) for b in document.blocks]
    assert ("Page T", 2, ()) in rows
    assert ("Top", 4, ("Top",)) in rows
    assert ("First paragraph.", 5, ("Top",)) in rows
    assert ("item two", 9, ("Top", "Sub")) in rows
    assert not any("nope" in text or "color" in text for text, _, _ in rows)


def test_pdf_pages_are_kept() -> None:
    data = make_pdf([["Alpha line one", "Alpha line two"], ["Beta on page two"]])
    document = parse_document("doc.pdf", data)
    assert document.format == "pdf"
    pages = {b.text: b.page for b in document.blocks if b.text.strip()}
    assert pages == {"Alpha line one": 1, "Alpha line two": 1, "Beta on page two": 2}


def test_broken_pdf_is_a_parse_failure_with_reason() -> None:
    with pytest.raises(ParseFailure, match="cannot read PDF"):
        parse_document("broken.pdf", b"%PDF-1.4\n1 0 obj << /Type /Catalog garbage")
    truncated = make_pdf([["some text"]])[:150]
    with pytest.raises(ParseFailure, match="PDF"):
        parse_document("truncated.pdf", truncated)


def test_pdf_without_text_is_skipped() -> None:
    with pytest.raises(SkipFile, match="no extractable text"):
        parse_document("scan.pdf", make_pdf([[]]))


def test_docx_headings_paragraphs_and_tables() -> None:
    data = make_docx(
        [
            ("Title", "Report"),
            ("Heading 1", "Results"),
            (None, "It worked."),
            ("Heading 2", "Detail"),
        ],
        table=[["name", "value"], ["speed", "fast"]],
    )
    document = parse_document("r.docx", data)
    rows = [(b.text, b.heading_path, b.is_heading) for b in document.blocks]
    assert rows == [
        ("Report", ("Report",), True),
        ("Results", ("Report", "Results"), True),
        ("It worked.", ("Report", "Results"), False),
        ("Detail", ("Report", "Results", "Detail"), True),
        ("name | value", ("Report", "Results", "Detail"), False),
        ("speed | fast", ("Report", "Results", "Detail"), False),
    ]


def test_broken_docx_is_a_parse_failure_with_reason() -> None:
    with pytest.raises(ParseFailure, match="cannot read DOCX"):
        parse_document("broken.docx", b"PK\x03\x04 this is not a zip")
