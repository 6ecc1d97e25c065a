"""Bytes to text for plain-text files: binary detection, then encoding detection.

UTF-8 is tried first (most files); a file that is UTF-8 with a few bad bytes keeps its
UTF-8 and gets U+FFFD for the bad bytes, instead of being misread as Latin-1;
anything else goes to charset-normalizer, preferring Windows-1252 among guesses it
rates equally (a short French note in Latin-1 also "fits" Central European cp1250).
Text that no encoding explains is binary.
"""

from __future__ import annotations

import codecs

import charset_normalizer

from gritdesk.ingest.document import SkipFile

SNIFF_BYTES = 8192
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_WESTERN = ("cp1252", "latin_1", "iso8859_15")  # preferred among equally good guesses
_CONTROL = frozenset(range(0, 32)) - {9, 10, 12, 13, 27}


def decode_text(data: bytes) -> str:
    """The text of a plain-text file; raises SkipFile for binary or undecodable data."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError:
                break
    head = data[:SNIFF_BYTES]
    if b"\x00" in head:
        raise SkipFile("binary file (contains NUL bytes)")
    if head and sum(byte in _CONTROL for byte in head) > len(head) // 100 + 2:
        raise SkipFile("binary file (control characters)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    loose = data.decode("utf-8", errors="replace")
    bad = loose.count("\ufffd")
    good_non_ascii = sum(1 for ch in loose if ord(ch) > 127) - bad
    if good_non_ascii >= bad and bad <= max(16, len(loose) // 50):
        return loose  # UTF-8 with a few bad bytes (Latin-1 text has no valid UTF-8 sequences)
    matches = charset_normalizer.from_bytes(data)
    best = matches.best()
    if best is None:
        raise SkipFile("binary file (no text encoding fits)")
    for match in matches:  # short Western text fits several code pages equally well
        if (
            match.encoding in _WESTERN
            and match.chaos <= best.chaos + 0.01
            and match.coherence >= best.coherence - 0.1
        ):
            return str(match)
    return str(best)
