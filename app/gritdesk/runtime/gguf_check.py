"""Validate a GGUF file with the `gguf` reader before llama.cpp ever sees it.

llama.cpp may abort, hang or read garbage on a truncated or foreign file; every check
here turns such a file into a `ModelFileError` naming the file and what is wrong.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import gguf

from gritdesk.runtime.errors import ModelFileError
from gritdesk.runtime.gguf_header import check_gguf_header

GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
# Architectures gritdesk's recipes and native patches are written and tested for: the
# decoders (embed and generate; each checked against tests/reference/ with a synthetic model:
# `llama` covers Mistral and Llama 3; what Doc Caching needs of each: runtime/doc_caching.py),
# and `bert` (an encoder: embeds only, has no KV cache; runtime/engine.py).
DECODER_ARCHITECTURES = ("llama", "qwen2", "qwen3", "gemma3", "phi3")
SUPPORTED_ARCHITECTURES = (*DECODER_ARCHITECTURES, "bert")
EMBEDDING_ONLY_ARCHITECTURES = ("bert",)
REQUIRED_ARCH_KEYS = ("block_count", "embedding_length", "attention.head_count")
T = TypeVar("T")


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
    if key is not None and (known := _summaries.get(key)) is not None:
        return known
    summary = _check_gguf(path)
    if key is not None:
        _summaries.put(key, summary)
    return summary


def _stat_key(path: Path) -> str | None:
    try:
        st = path.stat()
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}"


class _IdentityCache(Generic[T]):
    """Facts about model files, kept in a JSON file in the cache directory and keyed by
    the file's identity (`_stat_key`): a changed file is a new key. Read on first use, not
    at import; the last `keep` entries are written back after each new one."""

    def __init__(
        self,
        file_name: str,
        encode: Callable[[T], object],
        decode: Callable[[Any], T],
        keep: int = 64,
    ) -> None:
        self.file_name = file_name
        self.encode = encode
        self.decode = decode
        self.keep = keep
        self._entries: dict[str, T] | None = None

    def _file(self) -> Path:
        from gritdesk.paths import cache_dir

        return cache_dir() / self.file_name

    def _load(self) -> dict[str, T]:
        if self._entries is None:
            try:
                raw = json.loads(self._file().read_text())
                self._entries = {k: self.decode(v) for k, v in raw.items()}
            except (OSError, ValueError, TypeError, KeyError, AttributeError):
                self._entries = {}
        return self._entries

    def get(self, key: str) -> T | None:
        return self._load().get(key)

    def put(self, key: str, value: T) -> None:
        entries = self._load()
        entries[key] = value
        target = self._file()
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            data = {k: self.encode(v) for k, v in list(entries.items())[-self.keep :]}
            tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(data))
            os.replace(tmp, target)
        except OSError:
            pass  # a cache: failing to write it only costs the next start a re-check

    def forget(self) -> None:
        """Drop what was read (the next use reads the file again)."""
        self._entries = None


_summaries: _IdentityCache[GgufSummary] = _IdentityCache(
    "gguf-checked.json",
    encode=lambda v: {**asdict(v), "path": str(v.path)},
    decode=lambda v: GgufSummary(**{**v, "path": Path(v["path"])}),
)
_fingerprints: _IdentityCache[str] = _IdentityCache(
    "gguf-fingerprints.json", encode=str, decode=str, keep=256
)


def _checked_reader(path: Path) -> tuple[gguf.GGUFReader, os.stat_result]:
    """The gguf reader over `path`, once its header passed the bounds check."""
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

    return reader, st


def gguf_architecture(path: Path) -> str:
    """`general.architecture` of a GGUF, supported or not (for listings of other tools'
    models); raises ModelFileError for a file that is not a sound GGUF."""
    reader, _ = _checked_reader(path)
    arch = _field(reader, "general.architecture")
    if not isinstance(arch, str):
        raise ModelFileError(path, "no general.architecture key")
    return arch


def _check_gguf(path: Path) -> GgufSummary:
    reader, st = _checked_reader(path)
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


def fingerprint(path: str | Path) -> str:
    """Identity of a model file: BLAKE2b of every byte, hex.

    Two files differing anywhere get different fingerprints, so a saved KV cache or an
    index is never reused with another model's weights. Hashing reads about 730 MiB/s (6 s
    for a 4.4 GB model), paid once per file identity (path, size, mtime, inode): the result
    is cached on disk.
    """
    path = Path(path)
    key = _stat_key(path)
    if key is not None and (known := _fingerprints.get(key)) is not None:
        return known
    with path.open("rb") as handle:
        digest = hashlib.file_digest(handle, lambda: hashlib.blake2b(digest_size=32))
    value = digest.hexdigest()
    if key is not None and key == _stat_key(path):  # unchanged while it was read
        _fingerprints.put(key, value)
    return value


def sampled_fingerprint(path: str | Path, *, samples: int = 16, block: int = 1 << 16) -> str:
    """The fingerprint of gritdesk before full hashes: size, the first MiB and evenly spaced
    blocks. Kept only to recognise indexes recorded with it (`model_record` upgrades them);
    two files can share it, so nothing new is keyed on it."""
    path = Path(path)
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with path.open("rb") as handle:
        digest.update(handle.read(1 << 20))
        for i in range(samples):
            handle.seek(size * (i + 1) // (samples + 1))
            digest.update(handle.read(block))
    return digest.hexdigest()[:32]
