"""An independent BERT sentence embedder in numpy, written from the architecture, not llama.cpp.

It reads the ORIGINAL sentence-transformers files (model.safetensors, tokenizer.json, the
Pooling config), never the GGUF gritdesk converts them to, so a wrong tensor name, a
transposed matrix or a mangled vocabulary in the conversion shows up as a mismatch.

    tokens   = Hugging Face `tokenizers` reading tokenizer.json: [CLS] wordpieces [SEP],
               truncated at max_seq_length (sentence_bert_config.json) like
               sentence-transformers
    x        = LayerNorm(word[tok] + position[0..n-1] + token_type[0])
    6 times:   x = LayerNorm(x + Attention(x))        self-attention with biases, 12 heads
               x = LayerNorm(x + W2 GELU(W1 x + b1) + b2)   GELU with erf, as HF's "gelu"
    vector   = mean of x over every token ([CLS] and [SEP] included: the attention mask is
               all ones for one unpadded text), then L2-normalised

float64 throughout. `pooling="cls"` and `lowercase=False` build the wrong variants the tests
use to show their check can fail.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer, normalizers

_DTYPES = {"F32": "<f4", "F16": "<f2", "I64": "<i8"}
_erf = np.frompyfunc(math.erf, 1, 1)


def load_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Every tensor of a .safetensors file: u64 header size, JSON header, raw data."""
    raw = path.read_bytes()
    (n,) = struct.unpack_from("<Q", raw, 0)
    header = json.loads(raw[8 : 8 + n])
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        data = np.frombuffer(raw, dtype=_DTYPES[info["dtype"]], count=-1, offset=8 + n + start)
        count = int(np.prod(info["shape"])) if info["shape"] else 1
        assert data[:count].nbytes == end - start
        tensors[name] = data[:count].reshape(info["shape"]).astype(np.float64)
    return tensors


@dataclass
class BertReference:
    tensors: dict[str, np.ndarray]
    tokenizer: Tokenizer
    n_layer: int
    n_head: int
    eps: float
    max_seq_length: int

    @classmethod
    def load(cls, folder: Path, *, lowercase: bool = True) -> BertReference:
        config = json.loads((folder / "config.json").read_text())
        st_config = json.loads((folder / "sentence_bert_config.json").read_text())
        tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=st_config["max_seq_length"])
        if not lowercase:  # the wrong variant: a cased tokenizer over an uncased vocabulary
            tokenizer.normalizer = normalizers.BertNormalizer(lowercase=False, strip_accents=False)
        return cls(
            tensors=load_safetensors(folder / "model.safetensors"),
            tokenizer=tokenizer,
            n_layer=config["num_hidden_layers"],
            n_head=config["num_attention_heads"],
            eps=config["layer_norm_eps"],
            max_seq_length=st_config["max_seq_length"],
        )

    def tokens(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text).ids)

    def hidden_states(self, tokens: list[int]) -> np.ndarray:
        """The last layer's output, (n_tokens, hidden)."""
        t = self.tensors
        n = len(tokens)
        x = (
            t["embeddings.word_embeddings.weight"][tokens]
            + t["embeddings.position_embeddings.weight"][:n]
            + t["embeddings.token_type_embeddings.weight"][0]
        )
        x = layer_norm(x, t, "embeddings.LayerNorm", self.eps)
        for i in range(self.n_layer):
            p = f"encoder.layer.{i}."
            x = layer_norm(x + self.attention(x, p), t, p + "attention.output.LayerNorm", self.eps)
            h = gelu(linear(x, t, p + "intermediate.dense"))
            x = layer_norm(
                x + linear(h, t, p + "output.dense"), t, p + "output.LayerNorm", self.eps
            )
        return x

    def attention(self, x: np.ndarray, p: str) -> np.ndarray:
        n, width = x.shape
        d = width // self.n_head

        def heads(name: str) -> np.ndarray:  # (heads, n, d)
            return linear(x, self.tensors, p + name).reshape(n, self.n_head, d).transpose(1, 0, 2)

        q, k, v = (heads(f"attention.self.{name}") for name in ("query", "key", "value"))
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(d)
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        out = (scores / scores.sum(axis=-1, keepdims=True)) @ v
        merged = out.transpose(1, 0, 2).reshape(n, width)  # heads side by side again
        return linear(merged, self.tensors, p + "attention.output.dense")

    def embed(self, text: str, *, pooling: str = "mean") -> np.ndarray:
        hidden = self.hidden_states(self.tokens(text))
        pooled = hidden.mean(axis=0) if pooling == "mean" else hidden[0]
        return pooled / np.linalg.norm(pooled)


def linear(x: np.ndarray, t: dict[str, np.ndarray], name: str) -> np.ndarray:
    return x @ t[name + ".weight"].T + t[name + ".bias"]  # HF Linear stores (out, in)


def layer_norm(x: np.ndarray, t: dict[str, np.ndarray], name: str, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * t[name + ".weight"] + t[name + ".bias"]


def gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)).astype(np.float64))
