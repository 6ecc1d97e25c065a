"""The least work that answers with llama-cpp-python: the baseline benchmarks compare the
app against. Its own model and context, created with the same settings as the engine's,
plain calls in the order a reader would write them, nothing of gritdesk's in between.

If the app ever beats this loop, the loop is doing more than it must: fix it first.
"""

from __future__ import annotations

import ctypes
import os
import time
from pathlib import Path

import llama_cpp as ll
import numpy as np

from gritdesk.runtime.engine import KV_TYPES, EngineSettings, init_backend


class BareLlama:
    """One model, one context, greedy decoding; used only to measure."""

    def __init__(self, model_path: Path, settings: EngineSettings) -> None:
        init_backend()
        self.model = ll.llama_model_load_from_file(
            str(model_path).encode(), ll.llama_model_default_params()
        )
        if not self.model:
            raise RuntimeError(f"llama.cpp could not load {model_path}")
        threads = settings.n_threads or os.cpu_count() or 2
        params = ll.llama_context_default_params()
        params.n_ctx = params.n_batch = params.n_ubatch = settings.n_ctx
        params.n_seq_max = 1
        params.n_threads = params.n_threads_batch = threads
        params.type_k = params.type_v = KV_TYPES[settings.kv_type]
        params.flash_attn_type = (
            ll.LLAMA_FLASH_ATTN_TYPE_ENABLED
            if settings.resolved_flash_attn()
            else ll.LLAMA_FLASH_ATTN_TYPE_DISABLED
        )
        self.ctx = ll.llama_init_from_model(self.model, params)
        if not self.ctx:
            raise RuntimeError("llama.cpp could not create a context")
        self.n_batch = settings.n_ctx
        self.memory = ll.llama_get_memory(self.ctx)
        self.n_vocab = ll.llama_vocab_n_tokens(ll.llama_model_get_vocab(self.model))
        self.batch = ll.llama_batch_init(self.n_batch, 0, 1)

    def close(self) -> None:
        ll.llama_batch_free(self.batch)
        ll.llama_free(self.ctx)
        ll.llama_model_free(self.model)

    def _decode(self, tokens: list[int], start: int) -> None:
        for begin in range(0, len(tokens), self.n_batch):
            chunk = tokens[begin : begin + self.n_batch]
            for i, tok in enumerate(chunk):
                self.batch.token[i] = tok
                self.batch.pos[i] = start + begin + i
                self.batch.n_seq_id[i] = 1
                self.batch.seq_id[i][0] = 0
                self.batch.logits[i] = begin + i == len(tokens) - 1
            self.batch.n_tokens = len(chunk)
            if ll.llama_decode(self.ctx, self.batch) != 0:
                raise RuntimeError("llama_decode failed")

    def _generate(self, pos: int, n: int, t0: float) -> float:
        first = None
        for _ in range(n):
            logits = np.ctypeslib.as_array(
                ll.llama_get_logits_ith(self.ctx, -1), shape=(self.n_vocab,)
            )
            token = int(np.argmax(logits))
            if first is None:
                first = time.perf_counter() - t0
            self._decode([token], pos)
            pos += 1
        return first if first is not None else 0.0

    def answer(self, prompt: list[int], n: int) -> tuple[float, float]:
        """Plain RAG: prefill the whole prompt causally, then `n` greedy tokens.
        Returns (total seconds, seconds to first token)."""
        t0 = time.perf_counter()
        ll.llama_memory_clear(self.memory, True)
        self._decode(prompt, 0)
        first = self._generate(len(prompt), n, t0)
        return time.perf_counter() - t0, first

    def answer_from_state(
        self, state_file: Path, n_cached: int, suffix: list[int], n: int
    ) -> tuple[float, float]:
        """Doc Caching: read a saved sequence state from disk, restore it, prefill the
        suffix after it, then `n` greedy tokens. Returns (total s, first-token s)."""
        t0 = time.perf_counter()
        ll.llama_memory_clear(self.memory, True)
        data = state_file.read_bytes()
        buf = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
        if ll.llama_state_seq_set_data(self.ctx, buf, len(data), 0) == 0:
            raise RuntimeError("llama.cpp refused the saved state")
        self._decode(suffix, n_cached)
        first = self._generate(n_cached + len(suffix), n, t0)
        return time.perf_counter() - t0, first
