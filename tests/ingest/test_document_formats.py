"""Slides, spreadsheets and the other document families, indexed through the real CLI.

Each fixture is written by its format's own library with a marker word in one known
place; `gritdesk search --json` must rank that place first and cite it (slide number,
sheet range), and a corrupt or password-protected file of each kind is a named skip
while the run goes on.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from gritdesk.ingest.document import SkipFile
from gritdesk.ingest.formats.mail import MAX_ATTACHMENT_BYTES, MAX_ATTACHMENTS
from gritdesk.ingest.parse import parse_document
from ingest.cli_runs import cli_env, gritdesk_command, run_index
from ingest.document_formats import (
    encrypt_office,
    make_epub,
    make_mbox,
    make_message,
    make_odp,
    make_ods,
    make_odt,
    make_pptx,
    make_scanned_pdf,
    make_xlsx,
)
from ingest.fixture_files import make_docx, make_pdf


def search_json(model: Path, db: Path, query: str) -> list[dict]:
    proc = subprocess.run(
        gritdesk_command("search", query, "--db", db, "--model", model, "--json", "-k", "3"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def search_text(model: Path, db: Path, query: str) -> str:
    proc = subprocess.run(
        gritdesk_command("search", query, "--db", db, "--model", model, "-k", "1"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def reasons_by_name(report: dict) -> dict[str, tuple[str, str]]:
    return {Path(s["path"]).name: (s["status"], s["reason"]) for s in report["skipped"]}


def test_slides_and_sheets_are_found_and_cited(tmp_path: Path, tiny_model_path: Path):
    root = tmp_path / "docs"
    root.mkdir()
    (root / "deck.pptx").write_bytes(
        make_pptx(
            [
                ("Quarterly review", "revenue grew in the north"),
                ("Roadmap", "launch the zanzibar quokka programme"),
                ("Risks", "supply of copper is short"),
            ],
            notes={3: "mention the pelican contract"},
        )
    )
    rows: list[list[object]] = [["Item", "Amount", "Owner"]]
    rows += [[f"ordinary line {n}", n * 10, "finance"] for n in range(2, 121)]
    rows[79] = ["marmalade shipment", 790, "harbourmaster"]  # sheet row 80
    (root / "budget.xlsx").write_bytes(make_xlsx({"Intro": [["Notes"], ["see Budget"]],
                                                  "Budget": rows}))
    (root / "notes.txt").write_text("an ordinary text file about quokka sightings\n")
    db = tmp_path / "index.db"

    report, _ = run_index(tiny_model_path, db, root)
    assert report["indexed"] == 3, report

    top = search_json(tiny_model_path, db, "zanzibar")[0]
    assert Path(top["path"]).name == "deck.pptx"
    assert top["locator"] == "slide 2" and top["heading_path"] == "Roadmap"
    assert "zanzibar quokka" in top["text"]
    assert search_json(tiny_model_path, db, "pelican")[0]["locator"] == "slide 3"  # notes
    assert "deck.pptx:slide 2" in search_text(tiny_model_path, db, "zanzibar")

    top = search_json(tiny_model_path, db, "marmalade harbourmaster")[0]
    assert Path(top["path"]).name == "budget.xlsx"
    match = re.fullmatch(r"Budget!A(\d+):C(\d+)", top["locator"])
    assert match, top["locator"]
    first, last = int(match.group(1)), int(match.group(2))
    assert 1 < first <= 80 <= last < 121, top["locator"]  # a region inside the sheet
    lines = top["text"].splitlines()
    assert lines[0] == "Item | Amount | Owner"  # the header row, repeated
    assert lines[1] == f"ordinary line {first} | {first * 10} | finance"  # the region's first
    assert "marmalade shipment | 790 | harbourmaster" in lines
    assert f"budget.xlsx:{top['locator']}" in search_text(tiny_model_path, db, "marmalade")


def test_csv_and_tsv_rows_are_found_and_cited_as_sheet_ranges(
    tmp_path: Path, tiny_model_path: Path
):
    root = tmp_path / "tables"
    root.mkdir()
    rows = ["Station,Species,Count,Observer"]
    rows += [f"site {n},sparrow,{n},volunteer" for n in range(2, 121)]
    rows[56] = 'site 57,"cassowary, southern",570,rangemaster'  # record (sheet row) 57
    (root / "census.csv").write_text("\n".join(rows) + "\n")
    (root / "tides.tsv").write_text("Port\tHigh\nDover\t6.1\nBarracuda Bay\t4.4\n")
    db = tmp_path / "index.db"

    report, _ = run_index(tiny_model_path, db, root)
    assert report["indexed"] == 2, report

    top = search_json(tiny_model_path, db, "cassowary rangemaster")[0]
    assert Path(top["path"]).name == "census.csv"
    match = re.fullmatch(r"A(\d+):D(\d+)", top["locator"] or "")
    assert match, top["locator"]
    first, last = int(match.group(1)), int(match.group(2))
    assert 1 < first <= 57 <= last < 121, top["locator"]  # a region inside the table
    lines = top["text"].splitlines()
    assert lines[0] == "Station | Species | Count | Observer"  # the header row, repeated
    assert lines[1] == f"site {first} | sparrow | {first} | volunteer"  # the region's first
    assert "site 57 | cassowary, southern | 570 | rangemaster" in lines
    assert f"census.csv:{top['locator']}" in search_text(tiny_model_path, db, "cassowary")

    top = search_json(tiny_model_path, db, "barracuda")[0]
    assert (Path(top["path"]).name, top["locator"]) == ("tides.tsv", "A1:B3")
    assert top["text"].splitlines() == ["Port | High", "Dover | 6.1", "Barracuda Bay | 4.4"]


def test_broken_and_protected_office_files_are_named_skips(
    tmp_path: Path, tiny_model_path: Path
):
    root = tmp_path / "docs"
    root.mkdir()
    deck = make_pptx([("Plan", "walrus itinerary")])
    sheet = make_xlsx({"Data": [["Name"], ["walrus census"]]})
    (root / "cut.pptx").write_bytes(deck[: len(deck) // 2])
    (root / "noise.xlsx").write_bytes(b"PK\x03\x04 this is not really a workbook" * 20)
    (root / "locked.xlsx").write_bytes(encrypt_office(sheet))
    (root / "locked.pptx").write_bytes(encrypt_office(deck))
    (root / "locked.docx").write_bytes(encrypt_office(make_docx([(None, "walrus memo")])))
    (root / "good.pptx").write_bytes(deck)
    (root / "good.xlsx").write_bytes(sheet)
    db = tmp_path / "index.db"

    report, _ = run_index(tiny_model_path, db, root)
    skipped = reasons_by_name(report)
    assert report["indexed"] == 2, report
    assert skipped["cut.pptx"][0] == "error" and "cannot read PPTX" in skipped["cut.pptx"][1]
    assert "cannot read XLSX" in skipped["noise.xlsx"][1]
    assert skipped["locked.xlsx"] == ("skipped", _protected("XLSX"))
    assert skipped["locked.pptx"] == ("skipped", _protected("PPTX"))
    assert skipped["locked.docx"] == ("skipped", _protected("DOCX"))
    names = {Path(hit["path"]).name for hit in search_json(tiny_model_path, db, "walrus")}
    assert names == {"good.pptx", "good.xlsx"}


def _protected(kind: str) -> str:
    return f"password-protected {kind} (encrypted; open it and save a copy)"


def test_index_help_lists_the_file_types():
    proc = subprocess.run(
        gritdesk_command("index", "--help"), capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    help_text = " ".join(proc.stdout.split())
    for kind in (
        "PDF (pages; scanned pages by OCR when tesseract is installed",
        "PPTX and ODP (cited as file:slide N)",
        "XLSX and ODS (file:Sheet!A1:D20",
        "CSV and TSV within the data-file limit (file.csv:A1:D20, header row repeated)",
        "index.ocr = false in config.toml turns it off",
        "DOCX and ODT (headings)",
        "EPUB (file:chapter N",
        "RTF (file)",
        "EML and MBOX (subject, from and date as the heading; mbox: file:message N",
    ):
        assert kind in help_text, help_text


def test_opendocument_ebooks_rtf_and_mail_are_found_and_cited(
    tmp_path: Path, tiny_model_path: Path
):
    root = tmp_path / "docs"
    root.mkdir()
    (root / "report.odt").write_bytes(
        make_odt([("Summary", "all is well"), ("Findings", "the ocelot escaped twice")])
    )
    (root / "talk.odp").write_bytes(
        make_odp([("Welcome", "hello everyone"), ("Results", "the narwhal count doubled")])
    )
    rows: list[list[object]] = [["Species", "Count"]]
    rows += [[f"common bird {n}", n] for n in range(2, 90)]
    rows[59] = ["kakapo", 60]  # sheet row 60
    (root / "census.ods").write_bytes(make_ods({"Birds": rows}))
    (root / "novel.epub").write_bytes(
        make_epub(
            [
                ("Departure", "they left at dawn"),
                ("The Storm", "the lighthouse keeper saw the axolotl"),
                ("Home", "they came back"),
            ]
        )
    )
    (root / "letter.rtf").write_bytes(
        rb"{\rtf1\ansi{\fonttbl\f0\fswiss Helvetica;}\f0\pard Dear friend,\par "
        rb"the {\b chinchilla} arrived safely.\par}"
    )
    pdf = make_pdf([["cover page"], ["the tapir invoice total"]])
    (root / "lunch.eml").write_bytes(
        make_message("Lunch plans", "Ann <ann@example.org>", "meet by the okapi statue",
                     attachments=[("invoice.pdf", pdf)])
    )
    make_mbox(
        root / "archive.mbox",
        [
            make_message("Hello", "bob@example.org", "an ordinary greeting"),
            make_message("Trip", "cy@example.org", "From the train\nwe spotted a quetzal"),
        ],
    )
    db = tmp_path / "index.db"

    report, _ = run_index(tiny_model_path, db, root)
    assert report["indexed"] == 7, report

    def top(query: str) -> dict:
        hit = search_json(tiny_model_path, db, query)[0]
        return {**hit, "name": Path(hit["path"]).name}

    hit = top("ocelot")
    assert (hit["name"], hit["heading_path"], hit["locator"]) == ("report.odt", "Findings", None)
    hit = top("narwhal")
    assert (hit["name"], hit["locator"], hit["heading_path"]) == ("talk.odp", "slide 2", "Results")
    hit = top("kakapo")
    match = re.fullmatch(r"Birds!A(\d+):B(\d+)", hit["locator"] or "")
    assert hit["name"] == "census.ods" and match, hit["locator"]
    assert int(match.group(1)) <= 60 <= int(match.group(2))
    assert hit["text"].splitlines()[0] == "Species | Count"
    hit = top("axolotl")
    assert (hit["name"], hit["locator"], hit["heading_path"]) == (
        "novel.epub", "chapter 2", "The Storm"  # the empty cover page is no chapter
    )
    hit = top("chinchilla")
    assert hit["name"] == "letter.rtf" and "the chinchilla arrived safely." in hit["text"]
    hit = top("okapi")
    assert hit["name"] == "lunch.eml"
    assert hit["heading_path"] == (
        "Lunch plans — Ann <ann@example.org>, Tue, 05 Mar 2024 09:30:00 +0000"
    )
    hit = top("tapir")
    assert (hit["name"], hit["locator"]) == ("lunch.eml", "attachment invoice.pdf p2")
    hit = top("quetzal")
    assert (hit["name"], hit["locator"]) == ("archive.mbox", "message 2")
    assert hit["heading_path"].startswith("Trip — cy@example.org")
    assert "From the train" in hit["text"].splitlines()  # the mbox ">From" escape undone


def test_broken_files_of_each_new_kind_are_named_and_the_run_goes_on(
    tmp_path: Path, tiny_model_path: Path
):
    root = tmp_path / "docs"
    root.mkdir()
    for name in ("a.odt", "b.odp", "c.ods", "d.epub"):
        (root / name).write_bytes(b"PK\x03\x04 truncated package " * 10)
    (root / "e.rtf").write_bytes(b"plain words, no rtf header")
    (root / "f.eml").write_bytes(b"\x00\x01 binary noise that is no message")
    (root / "g.mbox").write_bytes(b"not a mailbox at all")
    (root / "fine.txt").write_text("the run goes on to the gecko\n")
    drm = io.BytesIO(make_epub([("One", "sealed words")]))
    with zipfile.ZipFile(drm, "a") as book:  # a content document encrypted with AES
        book.writestr(
            "META-INF/encryption.xml",
            '<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container" '
            'xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData>'
            '<enc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/>'
            '<enc:CipherData><enc:CipherReference URI="OEBPS/text/ch1.xhtml"/>'
            "</enc:CipherData></enc:EncryptedData></encryption>",
        )
    (root / "sealed.epub").write_bytes(drm.getvalue())
    db = tmp_path / "index.db"

    report, _ = run_index(tiny_model_path, db, root)
    skipped = reasons_by_name(report)
    assert report["indexed"] == 1, report
    for name, kind in (("a.odt", "ODT"), ("b.odp", "ODP"), ("c.ods", "ODS"), ("d.epub", "EPUB")):
        assert skipped[name] == ("error", f"cannot read {kind}: BadZipFile: File is not a zip file")
    assert skipped["e.rtf"] == ("error", "cannot read RTF: it does not start with '{\\rtf'")
    assert skipped["f.eml"][1].startswith("cannot read EML: no mail headers")
    assert skipped["g.mbox"][1] == "cannot read MBOX: it does not start with a 'From ' line"
    assert skipped["sealed.epub"] == (
        "skipped", "DRM-protected EPUB (encrypted; gritdesk cannot read it)"
    )
    assert Path(search_json(tiny_model_path, db, "gecko")[0]["path"]).name == "fine.txt"


OCR_UNAVAILABLE = "scanned page, OCR unavailable (install tesseract-ocr)"


def test_scanned_pdf_is_read_by_ocr_when_tesseract_is_installed(
    tmp_path: Path, tiny_model_path: Path
):
    """Three runs over a scanned PDF: without tesseract on PATH, with `ocr = false`, and
    as this machine is (OCR when tesseract is installed, else the same named skip)."""
    root = tmp_path / "docs"
    root.mkdir()
    (root / "scan.pdf").write_bytes(
        make_scanned_pdf([["The quarterly minutes", "were approved."],
                          ["Budget for the", "heliotrope garden party"]])
    )
    (root / "typed.txt").write_text("a typed note about the garden\n")
    no_programs = tmp_path / "empty-bin"
    no_programs.mkdir()

    env = cli_env(tmp_path / "data-a", PATH=no_programs)
    report, _ = run_index(tiny_model_path, tmp_path / "a.db", root, env=env)
    assert report["indexed"] == 1, report
    assert reasons_by_name(report)["scan.pdf"] == ("skipped", OCR_UNAVAILABLE)

    env = cli_env(tmp_path / "data-b", "[index]\nocr = false\n")
    report, _ = run_index(tiny_model_path, tmp_path / "b.db", root, env=env)
    assert reasons_by_name(report)["scan.pdf"] == (
        "skipped", "scanned page, OCR turned off (ocr = false in config.toml [index])"
    )

    env = cli_env(tmp_path / "data-c")
    db = tmp_path / "c.db"
    report, _ = run_index(tiny_model_path, db, root, env=env)
    if shutil.which("tesseract") is None:
        assert reasons_by_name(report)["scan.pdf"] == ("skipped", OCR_UNAVAILABLE)
        return
    assert report["indexed"] == 2, report
    hit = search_json(tiny_model_path, db, "heliotrope")[0]
    assert (Path(hit["path"]).name, hit["page"], hit["locator"]) == ("scan.pdf", 2, None)
    assert "heliotrope garden party" in hit["text"]
    assert "scan.pdf:p2" in search_text(tiny_model_path, db, "heliotrope")


def test_mail_attachments_are_bounded_by_count_and_size():
    """Known kinds are read up to MAX_ATTACHMENTS a message; an oversized one and mail
    inside mail are passed over, and the message itself is still read."""
    attachments = [(f"part{n}.txt", f"attachment word{n}\n".encode()) for n in range(15)]
    attachments.insert(1, ("huge.txt", b"gigantic " * (MAX_ATTACHMENT_BYTES // 9 + 1)))
    attachments.insert(2, ("forwarded.eml", make_message("Inner", "x@y", "nested words")))
    raw = make_message("Many parts", "a@b", "the body itself", attachments)
    blocks = parse_document("many.eml", raw).blocks
    read = sorted({b.locator for b in blocks if b.locator})
    assert read == sorted(f"attachment part{n}.txt" for n in range(MAX_ATTACHMENTS)), read
    assert "the body itself" in [b.text for b in blocks]
    assert not any("gigantic" in b.text or "nested words" in b.text for b in blocks)


def test_ocr_out_of_time_is_a_named_skip():
    """No OCR time left: a skip that names the limit (with tesseract), else the install hint."""
    scan = make_scanned_pdf([["a page nobody will read"]])
    with pytest.raises(SkipFile) as skip:
        parse_document("scan.pdf", scan, ocr_seconds=0.5)
    if shutil.which("tesseract") is None:
        assert skip.value.reason == OCR_UNAVAILABLE
    else:
        assert skip.value.reason == (
            "scanned PDF: OCR of 1 pages did not finish in 0.5 s (limit: parse_timeout_s)"
        )
