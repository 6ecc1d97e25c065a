"""What `gritdesk index` reads and how each kind is cited, for its --help and the README.

Kept apart from parse.py (no imports) so the CLI shows it without loading the parsers.
"""

FILE_TYPES_HELP = (
    "Read: text and code (cited by lines), Markdown and HTML (lines, headings), "
    "PDF (pages; scanned pages by OCR when tesseract is installed: apt-get install "
    "tesseract-ocr or brew install tesseract; index.ocr = false in config.toml turns "
    "it off), DOCX and ODT (headings), PPTX and ODP (cited as file:slide N), "
    "XLSX and ODS (file:Sheet!A1:D20, header row repeated in each region), "
    "CSV and TSV within the data-file limit (file.csv:A1:D20, header row repeated), "
    "EPUB (file:chapter N, chapter titles as headings), RTF (file), "
    "EML and MBOX (subject, from and date as the heading; mbox: file:message N; "
    "attachments of these kinds too). "
    "Skipped by name: binaries, archives, media, .doc .xls .ppt and Apple iWork files; "
    "encrypted files are reported as password-protected."
)
