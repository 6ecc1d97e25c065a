"""Our llama.cpp patches (native/patches), each shown to make a difference.

The checks run in child processes: without patch 0001 an over-long batch aborts the
process (SIGABRT), which must fail the test, not kill the test runner.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

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


EMBED = textwrap.dedent(
    """
    import json, sys
    from gritdesk.runtime.engine import Engine, EngineSettings
    import llama_cpp as ll
    engine = Engine(sys.argv[1], EngineSettings(n_ctx=512))
    vectors = engine.embed(["a text to embed", "and a second one"]).tolist()
    has_logits = bool(ll.llama_get_logits(engine._ctx))  # NULL when no logits buffer exists
    _, states = engine.embed_documents_with_kv(["a document whose cache is kept"])
    print(json.dumps({"vectors": vectors, "logits_buffer": has_logits,
                      "kv": bytes(states[0].data).hex()}))
    """
)


def test_embeddings_identical_with_and_without_lm_head(tiny_model_path: Path) -> None:
    runs = {}
    for keep in ("0", "1"):
        env = dict(os.environ, GRITDESK_KEEP_LM_HEAD=keep)
        proc = subprocess.run(
            [sys.executable, "-c", EMBED, str(tiny_model_path)],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        assert proc.returncode == 0, proc.stderr[-500:]
        runs[keep] = json.loads(proc.stdout)
    skipped, kept = np.array(runs["0"]["vectors"]), np.array(runs["1"]["vectors"])
    # same hidden states; only float summation order may differ between the two graphs
    assert np.min(np.sum(skipped * kept, axis=1)) > 0.99999
    np.testing.assert_allclose(skipped, kept, atol=1e-3)
    assert runs["1"]["logits_buffer"] is True  # upstream: an n_tokens x n_vocab buffer
    assert runs["0"]["logits_buffer"] is False  # patched: none
    # and the pass leaves the same KV cache: keys/values do not depend on the LM head (the
    # first version of patch 0002 built a graph that never wrote the cache)
    assert runs["0"]["kv"] == runs["1"]["kv"]


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
