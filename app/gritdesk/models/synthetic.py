"""Seeded synthetic llama-architecture GGUF models, for tests and benchmarks.

No hub access on our machines, so we make models: the real `llama` architecture with
Mistral-like grouped-query attention, LLaMA's real SentencePiece vocabulary (the
vocab-only GGUF shipped in the llama-cpp-python sdist), and seeded random weights.
Shapes and seeds are declared in ``synthetic.toml`` beside this module (package data).
Tensors are streamed to disk one at a time, so a 7B shape never sits in memory whole.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import gguf
import numpy as np

from gritdesk.paths import cache_dir, sdist_path

VOCAB_MEMBER = "vendor/llama.cpp/models/ggml-vocab-llama-spm.gguf"
RECIPES_FILE = resources.files("gritdesk.models").joinpath("synthetic.toml")


@dataclass(frozen=True)
class SyntheticShape:
    name: str
    n_layer: int
    n_embd: int
    n_head: int
    n_head_kv: int
    n_ff: int
    n_ctx_train: int
    seed: int
    dtype: str = "f32"
    quantize: str | None = None
    rope_freq_base: float = 10000.0
    rms_eps: float = 1e-5

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head


def load_shapes() -> dict[str, SyntheticShape]:
    raw = tomllib.loads(RECIPES_FILE.read_text(encoding="utf-8"))
    fields = SyntheticShape.__dataclass_fields__
    return {
        name: SyntheticShape(name=name, **{k: v for k, v in spec.items() if k in fields})
        for name, spec in raw.items()
    }


def _vocab_bytes() -> bytes:
    sdist = sdist_path()
    if not sdist.exists():
        raise FileNotFoundError(
            f"{sdist} not found: run ./build.sh first (it downloads the llama-cpp-python sdist "
            "whose vocab files the synthetic models use)"
        )
    with tarfile.open(sdist) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith(VOCAB_MEMBER))
        handle = tar.extractfile(member)
        assert handle is not None
        return handle.read()


def _read_vocab() -> gguf.GGUFReader:
    vocab_file = cache_dir() / "vocab" / "ggml-vocab-llama-spm.gguf"
    if not vocab_file.exists():
        vocab_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = vocab_file.with_suffix(".tmp")
        tmp.write_bytes(_vocab_bytes())
        os.replace(tmp, vocab_file)
    return gguf.GGUFReader(vocab_file)


def _copy_tokenizer(writer: gguf.GGUFWriter, vocab: gguf.GGUFReader) -> int:
    """Copy every tokenizer.* key of the vocab GGUF; returns the vocab size."""
    tokens = vocab.fields["tokenizer.ggml.tokens"].contents()
    writer.add_tokenizer_model(vocab.fields["tokenizer.ggml.model"].contents())
    writer.add_tokenizer_pre(vocab.fields["tokenizer.ggml.pre"].contents())
    writer.add_token_list(tokens)
    writer.add_token_scores(vocab.fields["tokenizer.ggml.scores"].contents())
    writer.add_token_types(vocab.fields["tokenizer.ggml.token_type"].contents())
    writer.add_bos_token_id(vocab.fields["tokenizer.ggml.bos_token_id"].contents())
    writer.add_eos_token_id(vocab.fields["tokenizer.ggml.eos_token_id"].contents())
    writer.add_unk_token_id(vocab.fields["tokenizer.ggml.unknown_token_id"].contents())
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    return len(tokens)


def tensor_specs(shape: SyntheticShape, n_vocab: int) -> Iterator[tuple[str, tuple[int, ...], str]]:
    """(name, numpy shape, kind) in file order; kind is 'norm' or 'weight'."""
    e, hd = shape.n_embd, shape.head_dim
    yield "token_embd.weight", (n_vocab, e), "weight"
    for i in range(shape.n_layer):
        yield f"blk.{i}.attn_norm.weight", (e,), "norm"
        yield f"blk.{i}.attn_q.weight", (shape.n_head * hd, e), "weight"
        yield f"blk.{i}.attn_k.weight", (shape.n_head_kv * hd, e), "weight"
        yield f"blk.{i}.attn_v.weight", (shape.n_head_kv * hd, e), "weight"
        yield f"blk.{i}.attn_output.weight", (e, shape.n_head * hd), "weight"
        yield f"blk.{i}.ffn_norm.weight", (e,), "norm"
        yield f"blk.{i}.ffn_gate.weight", (shape.n_ff, e), "weight"
        yield f"blk.{i}.ffn_up.weight", (shape.n_ff, e), "weight"
        yield f"blk.{i}.ffn_down.weight", (e, shape.n_ff), "weight"
    yield "output_norm.weight", (e,), "norm"
    yield "output.weight", (n_vocab, e), "weight"


def _tensor_values(
    rng: np.random.Generator, dims: tuple[int, ...], kind: str, dtype: np.dtype
) -> np.ndarray:
    if kind == "norm":
        # around 1 so every layer matters, not exactly 1 so a norm bug shows
        return (1.0 + 0.1 * rng.standard_normal(dims, dtype=np.float32)).astype(dtype)
    scale = 1.0 / np.sqrt(dims[-1])
    return (scale * rng.standard_normal(dims, dtype=np.float32)).astype(dtype)


def write_synthetic_gguf(
    shape: SyntheticShape,
    out: Path,
    *,
    architecture: str = "llama",
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write `shape` as an unquantized GGUF at `out` (atomic: temp file then rename)."""
    vocab = _read_vocab()
    dtype = np.dtype(np.float16 if shape.dtype == "f16" else np.float32)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"{out.name}.{os.getpid()}.partial")  # concurrent writers never collide
    writer = gguf.GGUFWriter(tmp, architecture)
    writer.add_name(f"gritdesk-synthetic-{shape.name}")
    writer.add_string("gritdesk.synthetic", f"{shape.name} seed={shape.seed}")
    writer.add_context_length(shape.n_ctx_train)
    writer.add_embedding_length(shape.n_embd)
    writer.add_block_count(shape.n_layer)
    writer.add_feed_forward_length(shape.n_ff)
    writer.add_head_count(shape.n_head)
    writer.add_head_count_kv(shape.n_head_kv)
    writer.add_rope_dimension_count(shape.head_dim)
    writer.add_rope_freq_base(shape.rope_freq_base)
    writer.add_layer_norm_rms_eps(shape.rms_eps)
    writer.add_file_type(
        gguf.LlamaFileType.MOSTLY_F16 if shape.dtype == "f16" else gguf.LlamaFileType.ALL_F32
    )
    n_vocab = _copy_tokenizer(writer, vocab)
    writer.add_vocab_size(n_vocab)

    specs = list(tensor_specs(shape, n_vocab))
    for name, dims, kind in specs:
        tdtype = np.dtype(np.float32) if kind == "norm" else dtype
        writer.add_tensor_info(name, dims, tdtype, int(np.prod(dims)) * tdtype.itemsize)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    rng = np.random.default_rng(shape.seed)
    for done, (_name, dims, kind) in enumerate(specs, start=1):
        tdtype = np.dtype(np.float32) if kind == "norm" else dtype
        writer.write_tensor_data(_tensor_values(rng, dims, kind, tdtype))
        if progress:
            progress(done, len(specs))
    writer.close()
    os.replace(tmp, out)
    return out


def _recipe_digest(shape: SyntheticShape) -> str:
    return hashlib.sha256(repr(shape).encode()).hexdigest()[:10]


def synthetic_model_path(
    name: str,
    *,
    quantize: Callable[[Path, Path, str], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Path of synthetic model `name`, made on first use and cached outside the repo.

    Shapes with a `quantize` type need `quantize(src, dst, type)` (the runtime's quantizer).
    """
    shapes = load_shapes()
    if name not in shapes:
        raise KeyError(f"unknown synthetic model {name!r}; known: {', '.join(shapes)}")
    shape = shapes[name]
    folder = cache_dir() / "models" / "synthetic"
    base = folder / f"{name}-{_recipe_digest(shape)}-{shape.dtype}.gguf"
    if not base.exists():
        write_synthetic_gguf(shape, base, progress=progress)
    if not shape.quantize:
        return base
    final = base.with_name(base.name.replace(f"-{shape.dtype}.gguf", f"-{shape.quantize}.gguf"))
    if not final.exists():
        if quantize is None:
            raise ValueError(f"synthetic model {name!r} needs a quantizer for {shape.quantize}")
        tmp = final.with_name(f"{final.name}.{os.getpid()}.partial")
        quantize(base, tmp, shape.quantize)
        os.replace(tmp, final)
    return final
