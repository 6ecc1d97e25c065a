"""Checks on zip-packaged documents (OOXML, OpenDocument, EPUB) before a library opens them.

A zip bomb is refused by the sizes its members declare (zipfile never inflates a member
past its declared size), and a password-protected Office file, which is an OLE
compound file holding an `EncryptedPackage` stream rather than a zip, is named as such.
"""

from __future__ import annotations

import io
import zipfile

from gritdesk.ingest.byte_sizes import describe_bytes
from gritdesk.ingest.document import SkipFile

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ENCRYPTED_PACKAGE = "EncryptedPackage".encode("utf-16-le")


def zip_inflated_size(data: bytes) -> int:
    """The total size a zip's members declare once inflated (0 if it is no zip: the
    format's parser then names the problem)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return sum(item.file_size for item in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return 0


def check_package(data: bytes, kind: str, max_inflated_bytes: int | None) -> None:
    """Raise SkipFile for an encrypted or legacy binary Office file and for a zip that
    inflates past `max_inflated_bytes`; `kind` ("XLSX") names the format in the reason."""
    if data.startswith(_OLE_MAGIC):
        if _ENCRYPTED_PACKAGE in data:
            raise SkipFile(f"password-protected {kind} (encrypted; open it and save a copy)")
        raise SkipFile(f"not a {kind} package: a legacy binary Office file (unsupported)")
    if max_inflated_bytes is not None:
        inflated = zip_inflated_size(data)
        if inflated > max_inflated_bytes:
            raise SkipFile(
                f"{kind} inflates to {describe_bytes(inflated)}, over the "
                f"{describe_bytes(max_inflated_bytes)} limit (a quarter of parse_memory_mib)"
            )
