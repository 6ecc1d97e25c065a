"""What `gritdesk index` reads and how each kind is cited, for its --help and the README.

Kept apart from parse.py (no imports) so the CLI shows it without loading the parsers.
"""

FILE_TYPES_HELP = (
    "Read: text and code (cited by lines), Markdown and HTML (lines, headings), "
    "PDF (pages), DOCX (headings), PPTX (cited as file:slide N), "
    "XLSX (file:Sheet!A1:D20, header row repeated in each region). "
    "Skipped by name: binaries, archives, media, .doc .xls .ppt and other "
    "unsupported documents; encrypted files are reported as password-protected."
)

