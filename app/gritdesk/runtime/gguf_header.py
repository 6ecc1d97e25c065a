"""Walk a GGUF header checking every declared count and length against the file's size.

The `gguf` reader trusts the header: a 49-byte file declaring a 2^62-element array makes
it allocate gigabytes before anything else is looked at. This walker reads the key/value
section and the tensor infos with seeks and small reads only, and refuses any string,
array or table whose declared size cannot fit in the bytes left in the file; so whatever
the header says, checking it costs memory bounded by the largest single read (8 bytes).
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

import gguf

from gritdesk.runtime.errors import ModelFileError

GGML_MAX_DIMS = 4
DEFAULT_ALIGNMENT = 32
MAX_NESTING = 8  # arrays of arrays: deeper than any real file, shallow enough to bound recursion

# GGUF value types (gguf.GGUFValueType) -> fixed size in bytes; strings (8) and arrays (9) vary
_FIXED_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_STRING, _ARRAY = 8, 9
_U32, _U64 = struct.Struct("<I"), struct.Struct("<Q")
# the fewest bytes one entry can take: key/name length + type, tensor info without dims
_MIN_KV_BYTES = 8 + 4 + 1
_MIN_TENSOR_INFO_BYTES = 8 + 4 + 4 + 8


class _Walker:
    def __init__(self, path: Path, handle: BinaryIO, size: int) -> None:
        self.path = path
        self.handle = handle
        self.size = size

    def fail(self, what: str) -> ModelFileError:
        return ModelFileError(self.path, f"corrupt or truncated GGUF header: {what}")

    def left(self) -> int:
        return self.size - self.handle.tell()

    def read(self, n: int, what: str) -> bytes:
        data = self.handle.read(n)
        if len(data) != n:
            raise self.fail(f"{what} runs past the end of the file ({self.size} bytes)")
        return data

    def u32(self, what: str) -> int:
        return _U32.unpack(self.read(4, what))[0]

    def u64(self, what: str) -> int:
        return _U64.unpack(self.read(8, what))[0]

    def skip(self, n: int, what: str) -> None:
        if n > self.left():
            raise self.fail(
                f"{what} declares {n} bytes at offset {self.handle.tell()}, "
                f"only {self.left()} left in the file"
            )
        self.handle.seek(n, 1)

    def string(self, what: str, keep: bool = False) -> str:
        n = self.u64(f"{what} length")
        if not keep:
            self.skip(n, what)
            return ""
        if n > min(self.left(), 1 << 16):
            raise self.fail(f"{what} declares {n} bytes, {self.left()} left in the file")
        return self.read(n, what).decode("utf-8", errors="replace")

    def value(self, value_type: int, what: str, depth: int = 0) -> None:
        if value_type in _FIXED_SIZES:
            self.skip(_FIXED_SIZES[value_type], what)
        elif value_type == _STRING:
            self.string(what)
        elif value_type == _ARRAY:
            if depth >= MAX_NESTING:
                raise self.fail(f"{what}: arrays nested deeper than {MAX_NESTING}")
            item_type = self.u32(f"{what} item type")
            count = self.u64(f"{what} item count")
            least = _FIXED_SIZES.get(item_type, 8 if item_type == _STRING else 12)
            if item_type not in _FIXED_SIZES and item_type not in (_STRING, _ARRAY):
                raise self.fail(f"{what}: unknown array item type {item_type}")
            if count * least > self.left():
                raise self.fail(
                    f"{what} declares {count} items, more than the {self.left()} bytes left hold"
                )
            if item_type in _FIXED_SIZES:
                self.skip(count * least, what)
            else:
                for _ in range(count):
                    self.value(item_type, what, depth + 1)
        else:
            raise self.fail(f"{what}: unknown value type {value_type}")


def check_gguf_header(path: Path, handle: BinaryIO, size: int) -> None:
    """Raise `ModelFileError` unless every size the header declares fits in `size` bytes.

    Checks the key/value section, the tensor infos (at most GGML_MAX_DIMS dimensions, data
    of each tensor inside the file) and the alignment; `handle` is positioned anywhere.
    """
    walker = _Walker(path, handle, size)
    handle.seek(8)  # magic and version: checked by the caller
    n_tensors = walker.u64("tensor count")
    n_kv = walker.u64("key/value count")
    if n_kv * _MIN_KV_BYTES > walker.left():
        raise walker.fail(f"declares {n_kv} keys, more than the {walker.left()} bytes left hold")
    if n_tensors * _MIN_TENSOR_INFO_BYTES > walker.left():
        raise walker.fail(
            f"declares {n_tensors} tensors, more than the {walker.left()} bytes left hold"
        )
    alignment = DEFAULT_ALIGNMENT
    for i in range(n_kv):
        key = walker.string(f"key {i + 1}", keep=True)
        value_type = walker.u32(f"type of {key!r}")
        if key == "general.alignment" and value_type == 4:
            alignment = walker.u32(key)
            if alignment == 0 or alignment & (alignment - 1):
                raise walker.fail(f"general.alignment {alignment} is not a power of two")
        else:
            walker.value(value_type, f"value of {key!r}")
    ends: list[tuple[int, str]] = []
    for i in range(n_tensors):
        name = walker.string(f"tensor {i + 1} name", keep=True)
        n_dims = walker.u32(f"tensor {name!r} dimension count")
        if n_dims > GGML_MAX_DIMS:
            raise walker.fail(f"tensor {name!r} has {n_dims} dimensions (at most {GGML_MAX_DIMS})")
        elements = 1
        for _ in range(n_dims):
            elements *= walker.u64(f"tensor {name!r} dimension")
        ggml_type = walker.u32(f"tensor {name!r} type")
        offset = walker.u64(f"tensor {name!r} offset")
        try:
            block, type_size = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType(ggml_type)]
        except (ValueError, KeyError):
            raise walker.fail(f"tensor {name!r} has unknown type {ggml_type}") from None
        ends.append((offset + -(-elements // block) * type_size, name))
    data_start = -(-handle.tell() // alignment) * alignment
    for end, name in ends:
        if data_start + end > size:
            raise ModelFileError(
                path,
                f"truncated: tensor {name} ends at byte {data_start + end}, file has {size}",
            )
