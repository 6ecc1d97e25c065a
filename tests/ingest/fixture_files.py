"""Small real documents for parser and indexer tests: PDFs and DOCX files built here."""

from __future__ import annotations

import io


def words(text: str) -> list[str]:
    return text.split()


def make_pdf(pages: list[list[str]]) -> bytes:
    """A valid PDF with one text line per entry of each page (Helvetica, no compression)."""
    objects: list[bytes] = []
    page_ids = [3 + 2 * i for i in range(len(pages))]
    font_id = 3 + 2 * len(pages)
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    kids = " ".join(f"{pid} 0 R" for pid in page_ids)
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
    for page_index, lines in enumerate(pages):
        page_id = page_ids[page_index]
        ops = ["BT", "/F1 12 Tf", "72 720 Td", "14 TL"]
        for line in lines:
            escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
            ops.append(f"({escaped}) Tj T*")
        ops.append("ET")
        stream = "\n".join(ops).encode("latin-1")
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {page_id + 1} 0 R "
            f"/Resources << /Font << /F1 {font_id} 0 R >> >> >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")

    return pdf_file(objects)


def pdf_file(objects: list[bytes]) -> bytes:
    """A PDF of these numbered objects (object 1 the catalog), with its xref table."""
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return out.getvalue()


def make_docx(
    paragraphs: list[tuple[str | None, str]], table: list[list[str]] | None = None
) -> bytes:
    """A DOCX of (style, text) paragraphs; style "Title", "Heading 1", ... or None."""
    import docx

    document = docx.Document()
    for style, text in paragraphs:
        if style == "Title":
            document.add_heading(text, level=0)
        elif style and style.startswith("Heading "):
            document.add_heading(text, level=int(style.split()[1]))
        else:
            document.add_paragraph(text)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                grid.cell(r, c).text = value
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


WORDS = words(
    "river mountain lantern copper harbor violet orchard thunder meadow signal granite "
    "compass ember falcon glacier hollow island juniper kettle lumen marble nectar "
    "oyster pepper quartz raven saddle timber umber velvet willow yonder zephyr"
)


def paragraph(rng, n_words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n_words)) + "."


def write_corpus(root, n_files: int, seed: int = 0) -> list:
    """A folder of Markdown and text files (some multi-chunk, some nested); returns paths."""
    import random

    rng = random.Random(seed)
    paths = []
    for i in range(n_files):
        folder = root / f"part{i % 4}" / ("deep" if i % 3 == 0 else "")
        folder.mkdir(parents=True, exist_ok=True)
        if i % 2:
            path = folder / f"note{i}.md"
            sections = [
                f"## Section {s}\n\n"
                + "\n\n".join(paragraph(rng, rng.randint(5, 40)) for _ in range(rng.randint(1, 4)))
                for s in range(rng.randint(1, 4))
            ]
            path.write_text(f"# Note {i}\n\n" + "\n\n".join(sections) + "\n")
        else:
            path = folder / f"text{i}.txt"
            path.write_text(
                "\n".join(paragraph(rng, rng.randint(3, 25)) for _ in range(rng.randint(1, 12)))
                + "\n"
            )
        paths.append(path)
    (root / "part0" / "report.pdf").write_bytes(
        make_pdf([[paragraph(rng, 8) for _ in range(4)], [paragraph(rng, 8) for _ in range(3)]])
    )
    (root / "part1" / "memo.docx").write_bytes(
        make_docx([("Title", "Memo"), ("Heading 1", "Budget"), (None, paragraph(rng, 30))])
    )
    return paths
