"""Slides, spreadsheets and the other document families, indexed through the real CLI.

Each fixture is written by its format's own library with a marker word in one known
place; `gritdesk search --json` must rank that place first and cite it (slide number,
sheet range), and a corrupt or password-protected file of each kind is a named skip
while the run goes on.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from ingest.cli_runs import gritdesk_command, run_index
from ingest.document_formats import encrypt_office, make_pptx, make_xlsx


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
    for kind in ("PDF (pages)", "PPTX (cited as file:slide N)", "XLSX (file:Sheet!A1:D20"):
        assert kind in help_text, help_text
