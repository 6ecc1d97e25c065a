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


def make_odt(sections: list[tuple[str, str]]) -> bytes:
    """A text document of (heading, paragraph) sections written by odfpy."""
    from odf.opendocument import OpenDocumentText
    from odf.text import H, P

    document = OpenDocumentText()
    for heading, paragraph in sections:
        document.text.addElement(H(outlinelevel=1, text=heading))
        document.text.addElement(P(text=paragraph))
    return _odf_bytes(document)


def make_odp(slides: list[tuple[str, str]]) -> bytes:
    """A presentation of (title, body) slides written by odfpy."""
    from odf.draw import Frame, Page, TextBox
    from odf.namespaces import PRESENTATIONNS
    from odf.opendocument import OpenDocumentPresentation
    from odf.style import MasterPage, PageLayout
    from odf.text import P

    document = OpenDocumentPresentation()
    layout = PageLayout(name="layout")
    document.automaticstyles.addElement(layout)
    master = MasterPage(name="master", pagelayoutname=layout)
    document.masterstyles.addElement(master)
    for title, body in slides:
        page = Page(masterpagename=master)
        document.presentation.addElement(page)
        for cls, text in (("title", title), ("outline", body)):
            frame = Frame(width="20cm", height="3cm", x="1cm", y="1cm")
            frame.setAttrNS(PRESENTATIONNS, "class", cls)
            box = TextBox()
            box.addElement(P(text=text))
            frame.addElement(box)
            page.addElement(frame)
    return _odf_bytes(document)


def make_ods(sheets: dict[str, list[list[object]]]) -> bytes:
    """A spreadsheet (name -> rows, the first the header) written by odfpy."""
    from odf.opendocument import OpenDocumentSpreadsheet
    from odf.table import Table, TableCell, TableRow
    from odf.text import P

    document = OpenDocumentSpreadsheet()
    for name, rows in sheets.items():
        table = Table(name=name)
        for row in rows:
            table_row = TableRow()
            for value in row:
                if isinstance(value, int | float):
                    cell = TableCell(valuetype="float", value=value)
                else:
                    cell = TableCell(valuetype="string")
                cell.addElement(P(text=str(value)))
                table_row.addElement(cell)
            table.addElement(table_row)
        document.spreadsheet.addElement(table)
    return _odf_bytes(document)


def _odf_bytes(document) -> bytes:
    out = io.BytesIO()
    document.write(out)
    return out.getvalue()


def make_epub(chapters: list[tuple[str, str]]) -> bytes:
    """An EPUB 3 of (title, paragraph) chapters plus a cover page, written with zipfile
    to the EPUB spec (mimetype first and stored; nav document as the table of contents).
    The reader is zipfile + lxml too, so the layout is spelled out here, not shared."""
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as book:
        book.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        book.writestr(
            "META-INF/container.xml",
            '<?xml version="1.0"?><container version="1.0" '
            'xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles>'
            '<rootfile full-path="OEBPS/content.opf" '
            'media-type="application/oebps-package+xml"/></rootfiles></container>',
        )
        items = ['<item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" '
                 'properties="nav"/>',
                 '<item id="cover" href="text/cover.xhtml" media-type="application/xhtml+xml"/>']
        spine = ['<itemref idref="cover"/>']
        links = []
        book.writestr("OEBPS/text/cover.xhtml", _xhtml("Cover", "<p></p>"))
        for number, (title, paragraph) in enumerate(chapters, 1):
            name = f"text/ch{number}.xhtml"
            book.writestr(f"OEBPS/{name}", _xhtml(title, f"<h2>{title}</h2><p>{paragraph}</p>"))
            items.append(f'<item id="c{number}" href="{name}" media-type="application/xhtml+xml"/>')
            spine.append(f'<itemref idref="c{number}"/>')
            links.append(f'<li><a href="{name}">{title}</a></li>')
        book.writestr(
            "OEBPS/nav.xhtml",
            _xhtml("Contents", f'<nav epub:type="toc"><ol>{"".join(links)}</ol></nav>'),
        )
        book.writestr(
            "OEBPS/content.opf",
            '<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0" '
            'unique-identifier="id"><metadata xmlns:dc="http://purl.org/dc/elements/1.1/">'
            '<dc:identifier id="id">test</dc:identifier><dc:title>Book</dc:title></metadata>'
            f'<manifest>{"".join(items)}</manifest><spine>{"".join(spine)}</spine></package>',
        )
    return out.getvalue()


def _xhtml(title: str, body: str) -> str:
    return (
        '<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml" '
        f'xmlns:epub="http://www.idpf.org/2007/ops"><head><title>{title}</title></head>'
        f"<body>{body}</body></html>"
    )


def make_message(subject: str, sender: str, body: str, attachments=()) -> bytes:
    """One message written by the stdlib email package; attachments are (name, bytes)."""
    import datetime
    from email.message import EmailMessage
    from email.utils import format_datetime

    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = sender
    message["To"] = "me@example.org"
    message["Date"] = format_datetime(datetime.datetime(2024, 3, 5, 9, 30, tzinfo=datetime.UTC))
    message.set_content(body)
    for name, data in attachments:
        message.add_attachment(data, maintype="application", subtype="octet-stream",
                               filename=name)
    return message.as_bytes()


def make_mbox(path, messages: list[bytes]) -> None:
    """A mailbox at `path` written by the stdlib mailbox module."""
    import email
    import email.policy
    import mailbox

    box = mailbox.mbox(path)
    try:
        for raw in messages:
            box.add(email.message_from_bytes(raw, policy=email.policy.default))
        box.flush()
    finally:
        box.close()


def make_scanned_pdf(pages: list[list[str]]) -> bytes:
    """A PDF of page images with no text layer, as a scanner makes: each page's lines are
    drawn into a greyscale image by Pillow, which writes the PDF."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=56)
    images = []
    for lines in pages:
        image = Image.new("L", (1275, 1650), 255)  # US Letter at 150 dpi
        draw = ImageDraw.Draw(image)
        for number, line in enumerate(lines):
            draw.text((100, 150 + number * 90), line, fill=0, font=font)
        images.append(image)
    out = io.BytesIO()
    images[0].save(out, format="PDF", save_all=True, append_images=images[1:], resolution=150)
    return out.getvalue()
