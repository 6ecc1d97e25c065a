"""Our llama.cpp patches (native/patches), each shown to make a difference.

The checks run in child processes: without patch 0001 an over-long batch aborts the
process (SIGABRT), which must fail the test, not kill the test runner.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

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


# Patch 0002: the app's embedding pass (embeddings on: no LM head) against upstream's pass
# over the same batch. Upstream computes the head in an embedding pass as in any other, and
# the head is downstream of every KV write, so the same batch decoded with embeddings off
# (the head built and computed for every token, attention as the recipe says) leaves the
# cache upstream's embedding pass leaves. The saved states must be equal byte for byte: a
# graph that skipped the cache (the first version of 0002, llama-embed's graph<true>) leaves
# zeros there, and one that computed anything else in another order leaves other bits.
KV_IDENTITY = textwrap.dedent(
    """
    import hashlib, json, sys
    import llama_cpp as ll
    from gritdesk.runtime.engine import SCRATCH_SEQ, Engine, EngineSettings
    from gritdesk.runtime.errors import RuntimeFailure
    def digest(data): return hashlib.sha256(data).hexdigest()
    def engine(): return Engine(sys.argv[1], EngineSettings(n_ctx=512, n_threads=2))
    docs = ["The Aurora project ships its first release on the ninth of March.",
            "Invoices above five thousand euros need two signatures from finance."]
    question = "When does the Aurora project ship its first release?"
    app = engine()
    _, states = app.embed_documents_with_kv(docs)          # one decode, seq ids 1 and 2
    logits_after_embedding = bool(ll.llama_get_logits_ith(app._ctx, -1))
    try:
        app.last_logits()
        refused = False
    except RuntimeFailure:
        refused = True
    # embeddings off again: the head is back (a reranking score, a generation)
    after_flip = app.next_token_logits(app.tokenize(question, add_bos=True))
    fresh = engine().next_token_logits(app.tokenize(question, add_bos=True))
    # upstream's pass: the same batch into the same empty cells, LM head computed
    app._clear_scratch()
    app._set_mode(embeddings=False, causal=app.recipe.embedding.attention == "causal")
    n = 0
    for seq, doc in enumerate(docs, SCRATCH_SEQ):
        for pos, token in enumerate(app.document_tokens(doc)):
            app._fill(n, token, pos, seq, True)
            n += 1
    app._decode(n)
    with_head = [app._save_seq(seq) for seq in range(SCRATCH_SEQ, SCRATCH_SEQ + len(docs))]
    print(json.dumps({
        "tokens": n,
        "kv_bytes": [len(s.data) for s in states],
        "embedding_pass": [digest(s.data) for s in states],
        "upstream_pass": [digest(data) for data in with_head],
        "nonzero": [any(s.data[-256:]) for s in states],
        "logits_after_embedding": logits_after_embedding,
        "last_logits_refused": refused,
        "flip_logits_equal_fresh": bool((after_flip == fresh).all()),
    }))
    """
)


@pytest.mark.parametrize("model", ["tiny", "tiny-qwen2", "tiny-qwen3", "tiny-gemma3", "tiny-phi3"])
def test_embedding_pass_leaves_upstreams_kv_without_lm_head(model: str) -> None:
    from gritdesk.models.synthetic import synthetic_model_path

    proc = subprocess.run(
        [sys.executable, "-c", KV_IDENTITY, str(synthetic_model_path(model))],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr[-800:]}"
    run = json.loads(proc.stdout)
    assert run["tokens"] > 20 and min(run["kv_bytes"]) > 1000
    assert run["embedding_pass"] == run["upstream_pass"]  # KV byte for byte
    assert all(run["nonzero"])  # and not two empty caches (the first 0002 left zeros)
    assert run["logits_after_embedding"] is False  # patched: no head, no logits buffer
    assert run["last_logits_refused"] is True  # the engine says so instead of reading NULL
    assert run["flip_logits_equal_fresh"] is True  # embeddings off: logits as if never embedded


def test_logits_read_after_an_embedding_pass_is_an_error_not_a_null_read(
    tiny_model_path: Path,
) -> None:
    """With patch 0002 an embedding pass leaves no logits buffer: reading one must raise a
    clear error (not dereference NULL); a causal pass after it has logits again."""
    from gritdesk.runtime.engine import Engine, EngineSettings
    from gritdesk.runtime.errors import RuntimeFailure

    with Engine(tiny_model_path, EngineSettings(n_ctx=256)) as engine:
        engine.embed_documents(["a short text to embed"])
        with pytest.raises(RuntimeFailure, match="no logits"):
            engine.last_logits()
        engine.prefill(engine.tokenize("hello there", add_bos=True), 0)
        assert np.isfinite(engine.last_logits()).all()
