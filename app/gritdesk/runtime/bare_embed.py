"""The least work that embeds with llama-cpp-python: the baseline an index run is compared
against (`benchmarks/index_throughput.py`). Its own model and context per layout, plain
calls in the order a reader would write them, nothing of gritdesk's in between.

A layout is what a user of plain llama-cpp-python would tune: threads, the micro-batch
size (`n_ubatch`), and whether each text gets its own decode or several share one (each
at positions 0.. of its own sequence id). A causal model may split one text over several
micro-batches; a bidirectional one (an encoder) needs the whole call in one.

If the app ever beats the best layout, the loop is doing more than it must: fix it first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import llama_cpp as ll
import numpy as np

from gritdesk.runtime.engine import init_backend

# One text to embed: its tokens (format included) and the [start, end) span it pools.
Prepared = tuple[list[int], int, int]


@dataclass(frozen=True)
class BareLayout:
    threads: int
    n_ubatch: int
    pack_tokens: int  # 0: one text per decode; else texts share a decode up to this many

    @property
    def label(self) -> str:
        packing = f"packed <= {self.pack_tokens}" if self.pack_tokens else "one text per call"
        return f"{self.threads} thr, ubatch {self.n_ubatch:4}, {packing}"


class BareEmbedder:
    """One model and one context laid out as `layout`; embeds prepared texts, mean pooled."""

    def __init__(self, model_path: str, layout: BareLayout, longest: int, causal: bool) -> None:
        init_backend()
        self.layout, self.causal = layout, causal
        self.model = ll.llama_model_load_from_file(
            str(model_path).encode(), ll.llama_model_default_params()
        )
        if not self.model:
            raise RuntimeError(f"llama.cpp could not load {model_path}")
        self.n_batch = max(layout.pack_tokens, longest)
        params = ll.llama_context_default_params()
        params.n_ctx = self.n_batch
        params.n_batch = self.n_batch
        params.n_ubatch = layout.n_ubatch if causal else self.n_batch
        params.n_seq_max = 64 if layout.pack_tokens else 1
        params.kv_unified = True
        params.n_threads = params.n_threads_batch = layout.threads
        params.embeddings = True
        params.pooling_type = ll.LLAMA_POOLING_TYPE_NONE
        params.flash_attn_type = ll.LLAMA_FLASH_ATTN_TYPE_DISABLED
        self.ctx = ll.llama_init_from_model(self.model, params)
        if not self.ctx:
            ll.llama_model_free(self.model)
            raise RuntimeError("llama.cpp could not create a context")
        ll.llama_set_causal_attn(self.ctx, causal)
        self.memory = ll.llama_get_memory(self.ctx)  # NULL for an encoder
        self.n_embd = ll.llama_model_n_embd(self.model)
        self.batch = ll.llama_batch_init(self.n_batch, 0, 1)

    def close(self) -> None:
        ll.llama_batch_free(self.batch)
        ll.llama_free(self.ctx)
        ll.llama_model_free(self.model)

    def _groups(self, texts: Sequence[Prepared]) -> list[list[int]]:
        if not self.layout.pack_tokens:
            return [[i] for i in range(len(texts))]
        groups: list[list[int]] = [[]]
        used = 0
        for i, (tokens, _, _) in enumerate(texts):
            if groups[-1] and (
                used + len(tokens) > self.layout.pack_tokens or len(groups[-1]) == 64
            ):
                groups.append([])
                used = 0
            groups[-1].append(i)
            used += len(tokens)
        return groups

    def embed(self, texts: Sequence[Prepared]) -> np.ndarray:
        out = np.zeros((len(texts), self.n_embd), dtype=np.float32)
        for group in self._groups(texts):
            if self.memory:
                ll.llama_memory_clear(self.memory, True)
            n = 0
            for seq, index in enumerate(group):
                for pos, token in enumerate(texts[index][0]):
                    self.batch.token[n] = token
                    self.batch.pos[n] = pos
                    self.batch.n_seq_id[n] = 1
                    self.batch.seq_id[n][0] = seq
                    self.batch.logits[n] = True
                    n += 1
            self.batch.n_tokens = n
            rc = ll.llama_decode(self.ctx, self.batch) if self.memory else None
            if rc is None:
                rc = ll.llama_encode(self.ctx, self.batch)
            if rc != 0:
                raise RuntimeError(f"llama.cpp failed to embed ({rc})")
            hidden = np.ctypeslib.as_array(
                ll.llama_get_embeddings(self.ctx), shape=(n, self.n_embd)
            )
            row = 0
            for index in group:
                tokens, start, end = texts[index]
                pooled = hidden[row + start : row + end].mean(axis=0)
                out[index] = pooled / np.linalg.norm(pooled)
                row += len(tokens)
        return out


def layouts_to_try(causal: bool, longest: int, threads: Sequence[int]) -> list[BareLayout]:
    """The layouts a user would try: one text per decode at a few micro-batch sizes (a causal
    model can split a text; an encoder cannot), and calls packed up to 256, 512 and 1024
    tokens (a longer text goes alone). Packing short texts saves per-call work; packing
    long ones costs attention over the whole call, so several budgets are tried."""
    found: list[BareLayout] = []
    for t in threads:
        splits = [ub for ub in (128,) if ub < longest] if causal else []
        found += [BareLayout(t, ub, 0) for ub in [*splits, longest]]
        found += [BareLayout(t, p, p) for p in (256, 512, 1024)]
    return found
