"""Smaller KV blobs on disk: llama.cpp's sequence state with its f16 K/V rows stored as 8-bit
blocks (q8_0's scheme: 32 values, one f16 scale, int8 values), restored to f16 on load.

llama.cpp serialises one sequence's cache (`llama_state_seq_get_data`; llama-context.cpp
and llama-kv-cache.cpp `state_write`) as: u32 magic 0xaf143cd8, i32 seq id, u32 n_stream;
per stream u32 cell_count, then per cell i32 pos, u32 n_seq_id and the seq ids; u32 v_trans,
u32 n_layer; per layer i32 K type, u64 row size and the K rows; then per layer the V rows
(i32 type, u64 row size, rows) or, with V transposed (flash attention off), i32 type,
u32 element size, u32 n_embd_v and the n_embd_v x cell_count elements. Only the f16
tensors change on disk; everything else (positions, types, non-f16 tensors) is kept byte
for byte, and anything that does not parse exactly (another llama.cpp layout, cell
extensions) is stored as it is.

Packed form: b"GKQ8" | u64 original length | u32 n regions | per region u64 offset,
u64 f16 count, u64 values per row | the original minus those regions | per region its f16
scales then int8s (each row padded to whole blocks).
"""

from __future__ import annotations

import struct

import numpy as np

GGML_TYPE_F16 = 1
IO_MAGIC = 0xAF143CD8  # llama-context.cpp `io_magic`, first in every sequence state
BLOCK = 32
MAGIC = b"GKQ8"
_HEAD = struct.Struct("<4sQI")
_REGION = struct.Struct("<QQQ")


class KvStateLayoutError(ValueError):
    """The bytes are not a llama.cpp sequence state this codec understands."""


def f16_regions(data: bytes | bytearray | memoryview) -> list[tuple[int, int, int]]:
    """(byte offset, number of f16 values, values per row) of every f16 K/V tensor in a
    sequence state. A row is one cell's K (or V), or for a transposed V one dimension's
    values over all cells: 8-bit blocks never span two rows."""
    view = memoryview(data)
    at = 0

    def take(fmt: str) -> tuple[int, ...]:
        nonlocal at
        size = struct.calcsize(fmt)
        if at + size > len(view):
            raise KvStateLayoutError("truncated sequence state")
        values = struct.unpack_from(fmt, view, at)
        at += size
        return values

    regions: list[tuple[int, int, int]] = []

    def tensor(kind: int, n_bytes: int, row_bytes: int) -> None:
        nonlocal at
        if at + n_bytes > len(view):
            raise KvStateLayoutError("truncated sequence state")
        if kind == GGML_TYPE_F16 and n_bytes:
            regions.append((at, n_bytes // 2, row_bytes // 2))
        at += n_bytes

    magic, _seq = take("<Ii")
    if magic != IO_MAGIC:
        raise KvStateLayoutError("not a llama.cpp sequence state")
    (n_stream,) = take("<I")
    for _ in range(n_stream):
        (cells,) = take("<I")
        if cells == 0:
            continue
        for _ in range(cells):
            _pos, n_seq = take("<iI")
            take(f"<{n_seq}i")
        v_trans, n_layer = take("<II")
        for _ in range(n_layer):
            k_type, row = take("<iQ")
            tensor(k_type, cells * row, row)
        for _ in range(n_layer):
            if v_trans:
                v_type, element, n_embd_v = take("<iII")
                tensor(v_type, element * n_embd_v * cells, element * cells)
            else:
                v_type, row = take("<iQ")
                tensor(v_type, cells * row, row)
    if at != len(view):
        raise KvStateLayoutError(f"{len(view) - at} bytes left after the sequence state")
    return regions


def _n_blocks(count: int, row: int) -> int:
    return count // row * -(-row // BLOCK)


def _quantize(values: np.ndarray, row: int) -> tuple[bytes, bytes]:
    rows = values.astype(np.float32).reshape(-1, row)
    blocks = np.pad(rows, ((0, 0), (0, (-row) % BLOCK))).reshape(-1, BLOCK)
    scale = np.abs(blocks).max(axis=1) / 127.0
    scale16 = scale.astype(np.float16)
    safe = scale16.astype(np.float32)
    safe[safe == 0] = 1.0
    q = np.clip(np.rint(blocks / safe[:, None]), -127, 127).astype(np.int8)
    return scale16.tobytes(), q.tobytes()


def _dequantize(scales: memoryview, q: memoryview, count: int, row: int) -> np.ndarray:
    s = np.frombuffer(scales, np.float16).astype(np.float32)
    v = np.frombuffer(q, np.int8).reshape(-1, BLOCK).astype(np.float32) * s[:, None]
    return v.reshape(count // row, -1)[:, :row].astype(np.float16)


def pack_q8(data: bytes | bytearray) -> bytes:
    """The state with its f16 tensors as 8-bit blocks (about 0.53x their size); a state whose
    layout is not understood is packed as it is (no regions)."""
    try:
        regions = f16_regions(data)
    except KvStateLayoutError:
        regions = []
    view = memoryview(data)
    skeleton: list[bytes | memoryview] = []
    packed: list[bytes] = []
    at = 0
    for offset, count, row in regions:
        skeleton.append(view[at:offset])
        scales, q = _quantize(np.frombuffer(view[offset : offset + 2 * count], np.float16), row)
        packed += [scales, q]
        at = offset + 2 * count
    skeleton.append(view[at:])
    head = _HEAD.pack(MAGIC, len(data), len(regions)) + b"".join(
        _REGION.pack(*region) for region in regions
    )
    return b"".join([head, *skeleton, *packed])


def unpack_q8(packed: bytes | bytearray) -> bytearray:
    """The state as llama.cpp takes it back: f16 tensors restored from their 8-bit blocks."""
    view = memoryview(packed)
    if len(view) < _HEAD.size:
        raise KvStateLayoutError("truncated packed state")
    magic, length, n = _HEAD.unpack_from(view, 0)
    if magic != MAGIC:
        raise KvStateLayoutError("not a packed KV state")
    at = _HEAD.size
    regions = [_REGION.unpack_from(view, at + i * _REGION.size) for i in range(n)]
    at += n * _REGION.size
    out = bytearray(length)
    src = 0  # position in the original
    for offset, count, _row in regions:
        size = offset - src
        out[src:offset] = view[at : at + size]
        at += size
        src = offset + 2 * count
    out[src:] = view[at : at + length - src]
    at += length - src
    for offset, count, row in regions:
        if row <= 0 or count % row:
            raise KvStateLayoutError("packed state with a malformed region")
        n_blocks = _n_blocks(count, row)
        scales = view[at : at + 2 * n_blocks]
        q = view[at + 2 * n_blocks : at + 2 * n_blocks + BLOCK * n_blocks]
        if len(q) != BLOCK * n_blocks:
            raise KvStateLayoutError("truncated packed state")
        at += 2 * n_blocks + BLOCK * n_blocks
        out[offset : offset + 2 * count] = _dequantize(scales, q, count, row).tobytes()
    if at != len(view):
        raise KvStateLayoutError("packed state length does not match its regions")
    return out


class Q8RowsCodec:
    """`KvCacheStore` codec: f16 K/V rows on disk as 8-bit blocks, f16 again when restored."""

    name = "q8_rows"

    def encode(self, payload: bytes | bytearray) -> bytes:
        return pack_q8(payload)

    def decode(self, stored: bytearray) -> bytearray:
        return unpack_q8(stored)
