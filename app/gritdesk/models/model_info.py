"""What `models info` shows about a GGUF: shapes, size, quantization, and what its KV costs.

Parameters are counted from the tensor shapes (the metadata has no reliable count), and
the KV cache cost per token follows GRITLM_NOTES section 4:
n_layer x 2 (K and V) x row_size(type, n_kv_heads x head_dim).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import gguf

from gritdesk.runtime.chat_template import RECIPE_KEY, file_recipe_name
from gritdesk.runtime.doc_caching import doc_cache_support
from gritdesk.runtime.engine_settings import KvType
from gritdesk.runtime.errors import ModelFileError
from gritdesk.runtime.gguf_check import (
    EMBEDDING_ONLY_ARCHITECTURES,
    GgufSummary,
    check_gguf,
    fingerprint,
    gguf_architecture,
)
from gritdesk.runtime.recipes import DEFAULT_RECIPE, TEMPLATE_RECIPE


@dataclass(frozen=True)
class ModelInfo:
    path: str
    registered_name: str | None
    general_name: str
    architecture: str
    parameters: int
    quantization: str
    file_type: int | None
    file_size: int
    context_length: int
    vocab_size: int
    n_layer: int
    n_embd: int
    n_head: int
    n_head_kv: int
    head_dim: int
    expert_count: int
    recipe: str
    recipe_source: str
    kv_bytes_per_token: dict[str, int | None]
    fingerprint: str
    gpu_layers: int = 0  # as the engine would load it: -1 all, 0 none
    doc_caching: str = ""  # what the cached layouts may do (runtime/doc_caching.py)

    def to_json(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class ModelRuns:
    """Whether gritdesk can run a GGUF, and if not why (for listings of found models)."""

    architecture: str
    runnable: bool
    why_not: str = ""


def model_runs(path: Path) -> ModelRuns:
    try:
        return ModelRuns(check_gguf(path).architecture, True)
    except ModelFileError as exc:
        try:
            architecture = gguf_architecture(path)
        except ModelFileError:
            architecture = "?"
        return ModelRuns(architecture, False, exc.reason)


def kv_row_bytes(kv_type: str, n_values: int) -> int | None:
    """Bytes of one K (or V) row of `n_values` in `kv_type`; None if blocks do not fit."""
    qtype = gguf.GGMLQuantizationType[kv_type.upper()]
    block, block_bytes = gguf.GGML_QUANT_SIZES[qtype]
    if n_values % block:
        return None
    return n_values // block * block_bytes


def kv_bytes_per_token(n_layer: int, n_head_kv: int, head_dim: int) -> dict[str, int | None]:
    out: dict[str, int | None] = {}
    for kv_type in KvType:
        row = kv_row_bytes(kv_type, n_head_kv * head_dim)
        out[kv_type.value] = None if row is None else n_layer * 2 * row
    return out


def quantization_name(reader: gguf.GGUFReader, file_type: int | None) -> str:
    """`general.file_type` as llama.cpp names it (Q4_K_M, F16...); else the main tensor type."""
    if file_type is not None and file_type >= 0:
        try:
            name = gguf.LlamaFileType(file_type).name
        except ValueError:
            return f"file type {file_type}"
        return name.removeprefix("MOSTLY_").removeprefix("ALL_")
    by_type: Counter[str] = Counter()
    for tensor in reader.tensors:
        by_type[tensor.tensor_type.name] += int(tensor.n_elements)
    main = by_type.most_common(1)
    return f"mostly {main[0][0]} (no general.file_type)" if main else "unknown"


def _int_meta(summary: GgufSummary, key: str) -> int | None:
    value = summary.metadata.get(f"{summary.architecture}.{key}")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


# why a file no registry entry names runs with the recipe `file_recipe_name` gives it
_OWN_RECIPE_SOURCE = {
    TEMPLATE_RECIPE: "default: no registry entry names one; turns in the file's own chat template",
    DEFAULT_RECIPE: "default: no registry entry names one",
}


def model_info(
    path: Path,
    *,
    registered_name: str | None = None,
    recipe: str | None = None,
    recipe_source: str = "",
    gpu_layers: int = 0,
) -> ModelInfo:
    """Read `path` (validated first) and gather everything `models info` prints."""
    summary = check_gguf(path)
    reader = gguf.GGUFReader(path)
    parameters = sum(int(t.n_elements) for t in reader.tensors)
    head_dim = summary.head_size
    file_type = summary.file_type if (summary.file_type or 0) >= 0 else None
    encoder = summary.architecture in EMBEDDING_ONLY_ARCHITECTURES
    doc_caching = "none: an encoder keeps no KV"
    own_recipe = file_recipe_name(summary)
    if not encoder:
        add_bos = reader.fields.get("tokenizer.ggml.add_bos_token")
        tokenizer = reader.fields.get("tokenizer.ggml.model")
        adds_bos = (
            bool(add_bos.contents())
            if add_bos is not None
            else tokenizer is not None and tokenizer.contents() == "llama"  # SPM's default
        )
        doc_caching = doc_cache_support(summary, adds_bos=adds_bos).describe()
    return ModelInfo(
        path=str(path),
        registered_name=registered_name,
        general_name=summary.name,
        architecture=summary.architecture,
        parameters=parameters,
        quantization=quantization_name(reader, summary.file_type),
        file_type=file_type,
        file_size=summary.file_size,
        context_length=summary.n_ctx_train,
        vocab_size=summary.n_vocab,
        n_layer=summary.n_layer,
        n_embd=summary.n_embd,
        n_head=summary.n_head,
        n_head_kv=summary.n_head_kv,
        head_dim=head_dim,
        expert_count=_int_meta(summary, "expert_count") or 0,
        recipe=recipe or own_recipe,
        recipe_source=recipe_source
        or (f"its {RECIPE_KEY} key" if RECIPE_KEY in summary.metadata else "")
        or _OWN_RECIPE_SOURCE[own_recipe],
        # an encoder (bert) keeps no KV cache: nothing to size
        kv_bytes_per_token=(
            {} if encoder else kv_bytes_per_token(summary.n_layer, summary.n_head_kv, head_dim)
        ),
        fingerprint=fingerprint(path),
        gpu_layers=gpu_layers,
        doc_caching=doc_caching,
    )
