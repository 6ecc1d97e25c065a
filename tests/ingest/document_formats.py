"""Files of each document family, written by each format's own library, with marker words."""

from __future__ import annotations

import io


def make_pptx(slides: list[tuple[str, str]], notes: dict[int, str] | None = None) -> bytes:
    """A deck of (title, body) slides written by python-pptx; `notes` by 1-based slide."""
    import pptx

    deck = pptx.Presentation()
    for number, (title, body) in enumerate(slides, 1):
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
        if notes and number in notes:
            slide.notes_slide.notes_text_frame.text = notes[number]
    out = io.BytesIO()
    deck.save(out)
    return out.getvalue()


def make_xlsx(sheets: dict[str, list[list[object]]]) -> bytes:
    """A workbook of sheets (name -> rows, the first the header) written by openpyxl."""
    import openpyxl

    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for name, rows in sheets.items():
        sheet = workbook.create_sheet(name)
        for row in rows:
            sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def encrypt_office(data: bytes, password: str = "secret") -> bytes:
    """`data` (an OOXML package) password-protected as Office does it, by msoffcrypto-tool."""
    from msoffcrypto.format.ooxml import OOXMLFile

    out = io.BytesIO()
    OOXMLFile(io.BytesIO(data)).encrypt(password, out)
    return out.getvalue()
