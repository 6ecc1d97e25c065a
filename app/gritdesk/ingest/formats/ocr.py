"""Text for scanned PDF pages (no text layer), read by tesseract when it is installed.

tesseract is a system program (Debian/Ubuntu: apt-get install tesseract-ocr; macOS:
brew install tesseract), looked up on PATH when a scanned page turns up, so gritdesk
runs without it and says what to install. A page is rendered to a greyscale PNG by
pypdfium2 (PDFium, BSD-3-Clause/Apache-2.0, wheels for every platform) and handed to
`tesseract stdin stdout` in a subprocess, which inherits the parser process's memory and
CPU limits; OCR stops at a deadline so a long scan cannot take the whole parse time.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import time

OCR_UNAVAILABLE = "scanned page, OCR unavailable (install tesseract-ocr)"
OCR_TURNED_OFF = "scanned page, OCR turned off (ocr = false in config.toml [index])"
RENDER_DPI = 300  # tesseract's preferred resolution for body text
MAX_RENDER_PIXELS = 4000  # longest side of a rendered page, whatever its paper size


def tesseract_path() -> str | None:
    return shutil.which("tesseract")


def ocr_pages(data: bytes, pages: list[int], deadline: float) -> dict[int, str]:
    """Text of the given 1-based pages of the PDF `data`, by page, until `deadline`
    (time.monotonic()); pages left when it passes, or that tesseract fails on, are absent.
    """
    import pypdfium2

    tesseract = tesseract_path()
    if tesseract is None or not pages:
        return {}
    texts: dict[int, str] = {}
    document = pypdfium2.PdfDocument(data)
    try:
        for number in pages:
            left = deadline - time.monotonic()
            if left <= 1:
                break
            image = _render(document, number)
            try:
                done = subprocess.run(
                    [tesseract, "stdin", "stdout"],
                    input=image,
                    capture_output=True,
                    timeout=left,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                break
            if done.returncode == 0:
                texts[number] = done.stdout.decode("utf-8", errors="replace")
    finally:
        document.close()
    return texts


def time_ocr_page(data: bytes, page: int, seconds: float) -> tuple[float, str]:
    """How long OCR of one page of the PDF `data` takes on this machine (rendering and
    tesseract, as a run does it), at most `seconds`, and the text read (for the pre-run
    estimate: one real page of the user's own scans)."""
    started = time.monotonic()
    text = ocr_pages(data, [page], started + seconds).get(page, "")
    return time.monotonic() - started, text


def _render(document, number: int) -> bytes:
    page = document[number - 1]
    try:
        width, height = page.get_size()  # in points (1/72 inch)
        scale = min(RENDER_DPI / 72, MAX_RENDER_PIXELS / max(width, height, 1))
        image = page.render(scale=scale, grayscale=True).to_pil()
    finally:
        page.close()
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()
