"""Counting scanned PDF pages for the estimate is bounded in time: PDFs left when the
budget is spent are scaled from the counted ones (in-process, a stand-in embedder)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gritdesk.ingest import estimate as estimate_module
from gritdesk.ingest.estimate import estimate_index
from gritdesk.ingest.parser_process import ParseLimits
from gritdesk.store.connection import open_database
from ingest.document_formats import make_scanned_pdf
from ingest.fake_embedder import BagOfWordsEmbedder


@pytest.mark.parametrize("budget_s", [60.0, 0.0])
def test_scanned_pages_past_the_counting_budget_are_scaled_by_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, budget_s: float
) -> None:
    root = tmp_path / "scans"
    root.mkdir()
    scan = make_scanned_pdf([["page one"], ["page two"], ["page three"]])
    for name in ("a.pdf", "b.pdf", "c.pdf"):  # the same bytes: the same pages per byte
        (root / name).write_bytes(scan)
    (root / "note.txt").write_text("a typed note\n" * 20)
    monkeypatch.setattr(estimate_module, "SCAN_COUNT_BUDGET_S", budget_s)
    db = open_database(tmp_path / "index.db")
    try:
        estimate = estimate_index(
            db, BagOfWordsEmbedder(), [root], limits=ParseLimits(ocr=False), time_sample=False
        )
    finally:
        db.close()
    assert estimate.pdfs_counted == (3 if budget_s else 1)  # one at least, whatever the budget
    assert estimate.scanned_pages == 9
    assert (estimate.ocr_pages, estimate.ocr_seconds) == (0, 0.0)
    assert estimate.ocr_skipped is not None and estimate.ocr_skipped.startswith("OCR turned off")
