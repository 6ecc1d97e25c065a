"""Seeded synthetic GGUF models of each supported decoder architecture, for tests and
benchmarks.

No hub access on our machines, so we make models: a real architecture (`llama` with
Mistral-like grouped-query attention, `qwen2`, `qwen3`, `gemma3`, `phi3`: the tensors
llama.cpp loads for it, see `ARCHITECTURES`), a real tokenizer of the kind that family
ships (the vocab-only GGUFs in the llama-cpp-python sdist), and seeded random weights.
Shapes and seeds are declared in ``synthetic.toml`` beside this module (package data).
Tensors are streamed to disk one at a time, so a 7B shape never sits in memory whole.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import gguf
import numpy as np

from gritdesk.paths import cache_dir, sdist_path

VOCAB_DIR = "vendor/llama.cpp/models/"
VOCAB_MEMBER = VOCAB_DIR + "ggml-vocab-llama-spm.gguf"


@dataclass(frozen=True)
class ArchitectureKind:
    """What a synthetic model of one architecture is made of, as llama.cpp's loader for it
    (`src/models/<arch>.cpp`) reads it."""

    vocab: str  # the sdist's vocab-only GGUF with this family's tokenizer kind
    add_bos: bool  # the family's tokenizer puts BOS first (Qwen's does not)
    qkv_bias: bool = False  # qwen2: biases on the Q, K, V projections
    qk_norm: bool = False  # qwen3, gemma3: RMSNorm of each head's q and k before RoPE
    post_norms: bool = False  # gemma3: RMSNorm after attention and after the FFN
    fused: bool = False  # phi3: one attn_qkv matrix, ffn_up holding gate and up
    rope_freq_base: float = 10000.0


# Gemma 3's own tokenizer (262k SentencePiece) is not in the sdist (its gemma-4 vocab is
# another kind, `gemma4`): the gemma3 model takes LLaMA's SentencePiece vocab, the same
# kind (`llama`, BOS first) as Gemma 3's.
ARCHITECTURES = {
    "llama": ArchitectureKind(vocab="ggml-vocab-llama-spm.gguf", add_bos=True),
    "qwen2": ArchitectureKind(
        vocab="ggml-vocab-qwen2.gguf", add_bos=False, qkv_bias=True, rope_freq_base=1e6
    ),
    "qwen3": ArchitectureKind(
        vocab="ggml-vocab-qwen2.gguf", add_bos=False, qk_norm=True, rope_freq_base=1e6
    ),
    "gemma3": ArchitectureKind(
        vocab="ggml-vocab-llama-spm.gguf",
        add_bos=True,
        qk_norm=True,
        post_norms=True,
        rope_freq_base=1e6,  # global layers; sliding-window layers keep 10000
    ),
    "phi3": ArchitectureKind(vocab="ggml-vocab-phi-3.gguf", add_bos=True, fused=True),
}
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
    rope_freq_base: float | None = None  # None: the architecture's (ARCHITECTURES)
    rms_eps: float = 1e-5
    architecture: str = "llama"
    tied_output: bool = False  # no output.weight: the LM head reuses token_embd
    sliding_window: int = 0  # gemma3: window of its sliding-window layers (0: none)
    sliding_window_pattern: int = 0  # gemma3: every n-th layer is global (0: llama.cpp's 6)
    # the vocab file's own chat template (its family's real one) goes into the file, so the
    # engine renders turns with it (no tuned recipe names the model); not in the repr: the
    # shapes without it keep the cache file names they had
    chat_template: bool = field(default=False, repr=False)

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    @property
    def kind(self) -> ArchitectureKind:
        return ARCHITECTURES[self.architecture]


def load_shapes() -> dict[str, SyntheticShape]:
    raw = tomllib.loads(RECIPES_FILE.read_text(encoding="utf-8"))
    fields = SyntheticShape.__dataclass_fields__
    return {
        name: SyntheticShape(name=name, **{k: v for k, v in spec.items() if k in fields})
        for name, spec in raw.items()
    }


def _vocab_bytes(member_name: str) -> bytes:
    sdist = sdist_path()
    if not sdist.exists():
        raise FileNotFoundError(
            f"{sdist} not found: run ./build.sh first (it downloads the llama-cpp-python sdist "
            "whose vocab files the synthetic models use)"
        )
    with tarfile.open(sdist) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith(VOCAB_DIR + member_name))
        handle = tar.extractfile(member)
        assert handle is not None
        return handle.read()


def _read_vocab(name: str = "ggml-vocab-llama-spm.gguf") -> gguf.GGUFReader:
    vocab_file = cache_dir() / "vocab" / name
    if not vocab_file.exists():
        vocab_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = vocab_file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(_vocab_bytes(name))
        os.replace(tmp, vocab_file)
    return gguf.GGUFReader(vocab_file)


def _copy_tokenizer(
    writer: gguf.GGUFWriter, vocab: gguf.GGUFReader, add_bos: bool, chat_template: bool
) -> int:
    """Copy the tokenizer keys of the vocab GGUF (scores for SentencePiece, merges for BPE);
    returns the vocab size. The chat template only with `chat_template`: without it a recipe
    formats prompts (GritLM's, the default)."""

    def get(key: str):
        field = vocab.fields.get(f"tokenizer.ggml.{key}")
        return None if field is None else field.contents()

    tokens = get("tokens")
    writer.add_tokenizer_model(get("model"))
    writer.add_tokenizer_pre(get("pre"))
    writer.add_token_list(tokens)
    if get("scores") is not None:
        writer.add_token_scores(get("scores"))
    writer.add_token_types(get("token_type"))
    if get("merges") is not None:
        writer.add_token_merges(get("merges"))
    writer.add_bos_token_id(get("bos_token_id"))
    writer.add_eos_token_id(get("eos_token_id"))
    if get("unknown_token_id") is not None:
        writer.add_unk_token_id(get("unknown_token_id"))
    if get("padding_token_id") is not None and get("model") != "llama":
        writer.add_pad_token_id(get("padding_token_id"))
    writer.add_add_bos_token(add_bos)
    writer.add_add_eos_token(False)
    if chat_template:
        template = vocab.fields.get("tokenizer.chat_template")
        if template is None:
            raise ValueError("this family's vocab file has no chat template to copy")
        writer.add_chat_template(template.contents())
    return len(tokens)


def tensor_specs(shape: SyntheticShape, n_vocab: int) -> Iterator[tuple[str, tuple[int, ...], str]]:
    """(name, numpy shape, kind) in file order; kind is 'norm' or 'weight'."""
    e, hd, kind = shape.n_embd, shape.head_dim, shape.kind
    n_q, n_kv = shape.n_head * hd, shape.n_head_kv * hd
    yield "token_embd.weight", (n_vocab, e), "weight"
    for i in range(shape.n_layer):
        yield f"blk.{i}.attn_norm.weight", (e,), "norm"
        if kind.fused:
            yield f"blk.{i}.attn_qkv.weight", (n_q + 2 * n_kv, e), "weight"
        else:
            yield f"blk.{i}.attn_q.weight", (n_q, e), "weight"
            yield f"blk.{i}.attn_k.weight", (n_kv, e), "weight"
            yield f"blk.{i}.attn_v.weight", (n_kv, e), "weight"
        if kind.qkv_bias:
            yield f"blk.{i}.attn_q.bias", (n_q,), "bias"
            yield f"blk.{i}.attn_k.bias", (n_kv,), "bias"
            yield f"blk.{i}.attn_v.bias", (n_kv,), "bias"
        if kind.qk_norm:
            yield f"blk.{i}.attn_q_norm.weight", (hd,), "norm"
            yield f"blk.{i}.attn_k_norm.weight", (hd,), "norm"
        yield f"blk.{i}.attn_output.weight", (e, n_q), "weight"
        if kind.post_norms:
            yield f"blk.{i}.post_attention_norm.weight", (e,), "norm"
        yield f"blk.{i}.ffn_norm.weight", (e,), "norm"
        if kind.fused:
            yield f"blk.{i}.ffn_up.weight", (2 * shape.n_ff, e), "weight"  # gate rows, then up
        else:
            yield f"blk.{i}.ffn_gate.weight", (shape.n_ff, e), "weight"
            yield f"blk.{i}.ffn_up.weight", (shape.n_ff, e), "weight"
        yield f"blk.{i}.ffn_down.weight", (e, shape.n_ff), "weight"
        if kind.post_norms:
            yield f"blk.{i}.post_ffw_norm.weight", (e,), "norm"
    yield "output_norm.weight", (e,), "norm"
    if not shape.tied_output:
        yield "output.weight", (n_vocab, e), "weight"


def _tensor_values(
    rng: np.random.Generator, dims: tuple[int, ...], kind: str, dtype: np.dtype
) -> np.ndarray:
    if kind == "norm":
        # around 1 so every layer matters, not exactly 1 so a norm bug shows
        return (1.0 + 0.1 * rng.standard_normal(dims, dtype=np.float32)).astype(dtype)
    if kind == "bias":
        # as large as a projection's outputs, so leaving the bias out shows
        return (0.5 * rng.standard_normal(dims, dtype=np.float32)).astype(dtype)
    scale = 1.0 / np.sqrt(dims[-1])
    return (scale * rng.standard_normal(dims, dtype=np.float32)).astype(dtype)


def write_synthetic_gguf(
    shape: SyntheticShape,
    out: Path,
    *,
    architecture: str | None = None,
    chat_template: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write `shape` as an unquantized GGUF at `out` (atomic: temp file then rename).
    `architecture` names another architecture in the header over the shape's tensors (a
    file gritdesk must refuse, for tests); `chat_template` writes that template instead of
    the family's (a template gritdesk must refuse or split, for tests)."""
    if shape.architecture not in ARCHITECTURES:
        raise ValueError(
            f"no synthetic {shape.architecture!r} models; known: {', '.join(ARCHITECTURES)}"
        )
    family = shape.kind
    vocab = _read_vocab(family.vocab)
    dtype = np.dtype(np.float16 if shape.dtype == "f16" else np.float32)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"{out.name}.{os.getpid()}.partial")  # concurrent writers never collide
    writer = gguf.GGUFWriter(tmp, architecture or shape.architecture)
    writer.add_name(f"gritdesk-synthetic-{shape.name}")
    writer.add_string("gritdesk.synthetic", f"{shape.name} seed={shape.seed}")
    writer.add_context_length(shape.n_ctx_train)
    writer.add_embedding_length(shape.n_embd)
    writer.add_block_count(shape.n_layer)
    writer.add_feed_forward_length(shape.n_ff)
    writer.add_head_count(shape.n_head)
    writer.add_head_count_kv(shape.n_head_kv)
    writer.add_rope_dimension_count(shape.head_dim)
    rope_base = shape.rope_freq_base if shape.rope_freq_base is not None else family.rope_freq_base
    writer.add_rope_freq_base(rope_base)
    writer.add_layer_norm_rms_eps(shape.rms_eps)
    if shape.sliding_window:
        writer.add_sliding_window(shape.sliding_window)
    if shape.sliding_window_pattern:
        writer.add_uint32(
            f"{writer.arch}.attention.sliding_window_pattern", shape.sliding_window_pattern
        )
    writer.add_file_type(
        gguf.LlamaFileType.MOSTLY_F16 if shape.dtype == "f16" else gguf.LlamaFileType.ALL_F32
    )
    n_vocab = _copy_tokenizer(
        writer, vocab, family.add_bos, shape.chat_template and chat_template is None
    )
    if chat_template is not None:
        writer.add_chat_template(chat_template)
    writer.add_vocab_size(n_vocab)

    specs = list(tensor_specs(shape, n_vocab))
    for name, dims, kind in specs:
        tdtype = np.dtype(np.float32) if kind != "weight" else dtype
        writer.add_tensor_info(name, dims, tdtype, int(np.prod(dims)) * tdtype.itemsize)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    rng = np.random.default_rng(shape.seed)
    for done, (_name, dims, kind) in enumerate(specs, start=1):
        tdtype = np.dtype(np.float32) if kind != "weight" else dtype
        writer.write_tensor_data(_tensor_values(rng, dims, kind, tdtype))
        if progress:
            progress(done, len(specs))
    writer.close()
    os.replace(tmp, out)
    return out


def _recipe_digest(shape: SyntheticShape) -> str:
    described = repr(shape) + (" chat_template" if shape.chat_template else "")
    return hashlib.sha256(described.encode()).hexdigest()[:10]


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
