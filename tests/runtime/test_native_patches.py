"""Our llama.cpp patches (native/patches), each shown to make a difference.

The checks run in child processes: without patch 0001 an over-long batch aborts the
process (SIGABRT), which must fail the test, not kill the test runner.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

OVERLONG_BATCH = textwrap.dedent(
    """
    import sys, llama_cpp as ll
    from gritdesk.runtime.engine import Engine, EngineSettings
    engine = Engine(sys.argv[1], EngineSettings(n_ctx=256, n_ubatch=64))
    engine._set_mode(embeddings=True, causal=False)
    batch = ll.llama_batch_init(100, 0, 1)
    for i in range(100):                       # 100 tokens > n_ubatch 64
        batch.token[i], batch.pos[i], batch.n_seq_id[i] = 100 + i, i, 1
        batch.seq_id[i][0], batch.logits[i] = 0, True
    batch.n_tokens = 100
    rc = ll.llama_decode(engine._ctx, batch)
    ok = engine.embed(["the process survived"]).shape[0]
    print(rc, ok)
    """
)


def test_overlong_noncausal_batch_returns_error(tiny_model_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", OVERLONG_BATCH, str(tiny_model_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, (
        f"exit {proc.returncode} (negative = killed by signal): {proc.stderr[-500:]}"
    )
    assert proc.stdout.split() == ["-1", "1"]


QUANTIZED_SHIFT = textwrap.dedent(
    """
    import sys
    import numpy as np
    from gritdesk.runtime.engine import Engine, EngineSettings
    engine = Engine(sys.argv[1], EngineSettings(n_ctx=512, kv_type="q8_0"))
    docs = ["The Aurora release ships in March after review.", "Invoices need two signatures."]
    _, states = engine.embed_documents_with_kv(docs)
    engine.reset()
    at = 0
    for state in states:                     # the second one is moved: a K-shift of q8_0 keys
        at += engine.restore_at(state, at)
    engine.prefill(engine.tokenize("\\n<|user|>\\nWhen?\\n<|assistant|>\\n"), at)
    logits = engine.last_logits()
    print("alive", np.isfinite(logits).all())
    """
)


def test_quantized_kv_cache_can_be_shifted(tiny_model_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", QUANTIZED_SHIFT, str(tiny_model_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, f"exit {proc.returncode} (-11 = SIGSEGV): {proc.stderr[-500:]}"
    assert proc.stdout.split() == ["alive", "True"]
