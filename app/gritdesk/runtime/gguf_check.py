"""Validate a GGUF file with the `gguf` reader before llama.cpp ever sees it.

llama.cpp may abort, hang or read garbage on a truncated or foreign file; every check
here turns such a file into a `ModelFileError` naming the file and what is wrong.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from dataclasses import asdict, dataclass
from pathlib import Path

import gguf

from gritdesk.runtime.errors import ModelFileError
from gritdesk.runtime.gguf_header import check_gguf_header

GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
# Architectures gritdesk's recipes and native patches are written and tested for.
SUPPORTED_ARCHITECTURES = ("llama",)
REQUIRED_ARCH_KEYS = ("block_count", "embedding_length", "attention.head_count")


@dataclass(frozen=True)
class GgufSummary:
    path: Path
    architecture: str
    name: str
    n_layer: int
    n_embd: int
    n_head: int
    n_head_kv: int
    n_ctx_train: int
    n_vocab: int
    file_type: int | None
    tensor_count: int
    file_size: int
    metadata: dict[str, str]


def _field(reader: gguf.GGUFReader, key: str) -> object | None:
    field = reader.fields.get(key)
    return None if field is None else field.contents()


def check_gguf(path: str | Path) -> GgufSummary:
    """Raise `ModelFileError` unless `path` is a complete GGUF this build can run.

    The `gguf` reader parses the whole vocabulary in Python (seconds for 32k tokens), so a
    file that passed once is remembered by (path, size, mtime, inode): any change to the
    file, such as a truncation, makes it checked again.
    """
    path = Path(path)
    key = _stat_key(path)
    if key is not None and key in _checked:
        return _checked[key]
    summary = _check_gguf(path)
    if key is not None:
        _checked[key] = summary
        _save_checked()
    return summary


def _stat_key(path: Path) -> str | None:
    try:
        st = path.stat()
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}"


def _checked_file() -> Path:
    from gritdesk.paths import cache_dir

    return cache_dir() / "gguf-checked.json"


def _load_checked() -> dict[str, GgufSummary]:
    try:
        raw = json.loads(_checked_file().read_text())
        return {k: GgufSummary(**{**v, "path": Path(v["path"])}) for k, v in raw.items()}
    except (OSError, ValueError, TypeError, KeyError):
        return {}


def _save_checked() -> None:
    target = _checked_file()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        data = {k: {**asdict(v), "path": str(v.path)} for k, v in list(_checked.items())[-64:]}
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, target)
    except OSError:
        pass  # a cache: failing to write it only costs the next start a re-check


_checked: dict[str, GgufSummary] = _load_checked()


def _check_gguf(path: Path) -> GgufSummary:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ModelFileError(path, "file not found") from None
    except OSError as exc:
        raise ModelFileError(path, f"cannot stat: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise ModelFileError(path, "not a regular file")
    try:
        with path.open("rb") as handle:
            head = handle.read(8)
            if len(head) < 8 or head[:4] != GGUF_MAGIC:
                raise ModelFileError(path, "not a GGUF file (bad magic bytes)")
            version = int.from_bytes(head[4:8], "little")
            if version not in SUPPORTED_VERSIONS:
                raise ModelFileError(path, f"unsupported GGUF version {version}")
            # every declared count and length against the file size, before the reader
            # allocates anything on the header's word
            check_gguf_header(path, handle, st.st_size)
    except OSError as exc:
        raise ModelFileError(path, f"cannot read: {exc.strerror}") from None

    try:
        reader = gguf.GGUFReader(path)
    except Exception as exc:  # the reader raises ValueError, IndexError, struct errors...
        raise ModelFileError(path, f"corrupt or truncated GGUF metadata ({exc})") from None

    arch = _field(reader, "general.architecture")
    if not isinstance(arch, str):
        raise ModelFileError(path, "no general.architecture key")
    if arch not in SUPPORTED_ARCHITECTURES:
        raise ModelFileError(
            path,
            f"architecture {arch!r} is not supported by gritdesk "
            f"(supported: {', '.join(SUPPORTED_ARCHITECTURES)})",
        )
    for key in REQUIRED_ARCH_KEYS:
        if _field(reader, f"{arch}.{key}") is None:
            raise ModelFileError(path, f"missing metadata key {arch}.{key}")
    tokens = _field(reader, "tokenizer.ggml.tokens")
    if _field(reader, "tokenizer.ggml.model") is None or not tokens:
        raise ModelFileError(path, "no tokenizer in the file (tokenizer.ggml.* keys missing)")
    if not reader.tensors:
        raise ModelFileError(path, "no tensors (a vocab-only file cannot embed or generate)")
    for tensor in reader.tensors:
        end = int(tensor.data_offset) + int(tensor.n_bytes)
        if end > st.st_size:
            raise ModelFileError(
                path,
                f"truncated: tensor {tensor.name} ends at byte {end}, file has {st.st_size}",
            )

    def as_int(key: str, default: int = 0) -> int:
        value = _field(reader, key)
        return int(value) if isinstance(value, int | float) else default

    n_head = as_int(f"{arch}.attention.head_count")
    metadata = {
        key: str(field.contents())
        for key, field in reader.fields.items()
        if not key.startswith("tokenizer.ggml.") and not key.startswith("GGUF.")
    }
    return GgufSummary(
        path=path,
        architecture=arch,
        name=str(_field(reader, "general.name") or path.stem),
        n_layer=as_int(f"{arch}.block_count"),
        n_embd=as_int(f"{arch}.embedding_length"),
        n_head=n_head,
        n_head_kv=as_int(f"{arch}.attention.head_count_kv", n_head),
        n_ctx_train=as_int(f"{arch}.context_length"),
        n_vocab=len(tokens),  # type: ignore[arg-type]
        file_type=as_int("general.file_type", -1),
        tensor_count=len(reader.tensors),
        file_size=st.st_size,
        metadata=metadata,
    )


def fingerprint(path: str | Path, *, samples: int = 16, block: int = 1 << 16) -> str:
    """Stable identity of a GGUF: size, the first MiB and evenly spaced blocks of tensor data.

    Hashing a 4 GB file whole would take seconds on every start; this reads about 2 MiB
    and still tells apart two files of the same shapes and different weights.
    """
    path = Path(path)
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with path.open("rb") as handle:
        digest.update(handle.read(1 << 20))
        for i in range(samples):
            handle.seek(size * (i + 1) // (samples + 1))
            digest.update(handle.read(block))
    return digest.hexdigest()[:32]
