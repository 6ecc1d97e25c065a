"""The on-disk format of one saved KV cache: a self-describing header, then llama.cpp's bytes.

llama.cpp's own state blob carries positions and K/V rows but no model identity and no
token ids: a blob from another model with the same shapes restores silently. So every
blob file says what it was made from, and `read_blob` refuses anything that does not
match what the caller expects *before* the bytes go anywhere near llama.cpp.

    b"GDKV" | u32 header length | header (JSON, UTF-8) | payload

The payload is checked with CRC32 (fast enough for 100+ MB blobs on a laptop; it is for
corruption, not tampering: the files are the user's own).
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from gritdesk.errors import GritdeskError

MAGIC = b"GDKV"
FORMAT_VERSION = 1
_LEN = struct.Struct("<I")


class KvBlobRejected(GritdeskError):
    """A blob that must not be restored; the reason says why (it will be recomputed)."""


def tokens_digest(tokens: Sequence[int]) -> str:
    return hashlib.sha256(struct.pack(f"<{len(tokens)}i", *tokens)).hexdigest()


@dataclass(frozen=True)
class BlobHeader:
    signature: Mapping[str, object]  # model fingerprint + the context settings the bytes depend on
    n_tokens: int
    tokens_sha256: str
    payload_len: int
    payload_crc32: int
    format_version: int = FORMAT_VERSION


def _encode_header(signature: Mapping[str, object], tokens: Sequence[int], payload: bytes) -> bytes:
    header = {
        "format_version": FORMAT_VERSION,
        "signature": dict(signature),
        "n_tokens": len(tokens),
        "tokens_sha256": tokens_digest(tokens),
        "payload_len": len(payload),
        "payload_crc32": zlib.crc32(payload),
    }
    head = json.dumps(header, sort_keys=True).encode()
    return MAGIC + _LEN.pack(len(head)) + head


def blob_size(signature: Mapping[str, object], tokens: Sequence[int], payload: bytes) -> int:
    """Exactly the bytes `write_blob` puts on disk, known before writing (for the budget)."""
    return len(_encode_header(signature, tokens, payload)) + len(payload)


def write_blob(
    path: Path, signature: Mapping[str, object], tokens: Sequence[int], payload: bytes
) -> int:
    """Write atomically (temp file, rename); returns bytes written.

    No fsync: a blob is a cache. After a power cut a torn file fails its length or CRC
    check and is recomputed, and an fsync per chunk made indexing 10% slower.
    """
    head = _encode_header(signature, tokens, payload)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as out:
            out.write(head)
            out.write(payload)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk must not also keep the half-written file
        raise
    return len(head) + len(payload)


def read_header(path: Path) -> tuple[BlobHeader, int]:
    """Header and payload offset; raises KvBlobRejected for anything malformed."""
    try:
        with path.open("rb") as handle:
            start = handle.read(len(MAGIC) + _LEN.size)
            if len(start) < len(MAGIC) + _LEN.size or start[:4] != MAGIC:
                raise KvBlobRejected(f"{path}: not a gritdesk KV blob")
            (head_len,) = _LEN.unpack(start[4:])
            if head_len > 1 << 20:
                raise KvBlobRejected(f"{path}: header length {head_len} is implausible")
            raw = handle.read(head_len)
    except OSError as exc:
        raise KvBlobRejected(f"{path}: cannot read ({exc.strerror})") from None
    try:
        data = json.loads(raw)
        header = BlobHeader(
            signature=data["signature"],
            n_tokens=int(data["n_tokens"]),
            tokens_sha256=str(data["tokens_sha256"]),
            payload_len=int(data["payload_len"]),
            payload_crc32=int(data["payload_crc32"]),
            format_version=int(data["format_version"]),
        )
    except (ValueError, KeyError, TypeError):
        raise KvBlobRejected(f"{path}: corrupt header") from None
    return header, len(MAGIC) + _LEN.size + head_len


def read_blob(path: Path, signature: Mapping[str, object], tokens: Sequence[int]) -> bytearray:
    """The payload, only if the blob was made by this model and settings from these tokens.

    Read straight into one writable buffer: the runtime hands it to llama.cpp without
    another copy (a 4000-token 7B blob is half a gigabyte).
    """
    header, offset = read_header(path)
    if header.format_version != FORMAT_VERSION:
        raise KvBlobRejected(
            f"{path}: format version {header.format_version}, expected {FORMAT_VERSION}"
        )
    expected = dict(signature)
    if dict(header.signature) != expected:
        diff = sorted(
            k
            for k in set(expected) | set(header.signature)
            if header.signature.get(k) != expected.get(k)
        )
        raise KvBlobRejected(
            f"{path}: made with other model or settings ({', '.join(diff)} differ)"
        )
    if header.n_tokens != len(tokens) or header.tokens_sha256 != tokens_digest(tokens):
        raise KvBlobRejected(f"{path}: made from other text (token ids differ)")
    actual = path.stat().st_size - offset
    if actual != header.payload_len:
        raise KvBlobRejected(f"{path}: payload is {actual} bytes, header says {header.payload_len}")
    payload = bytearray(header.payload_len)
    with path.open("rb") as handle:
        handle.seek(offset)
        if handle.readinto(payload) != header.payload_len:
            raise KvBlobRejected(f"{path}: shorter than its header says (changed while read)")
    if zlib.crc32(payload) != header.payload_crc32:
        raise KvBlobRejected(f"{path}: checksum mismatch (corrupt)")
    return payload
