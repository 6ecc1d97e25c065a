"""Embedding throughput: gritdesk's Engine.embed vs. a minimal loop of the same
llama-cpp-python calls doing the same work on the same model, in one run.

Target (issue 2): gritdesk >= 0.95 of the minimal loop. Runs alternate to share noise.

    .venv/bin/python benchmarks/embed_throughput.py --model 1b --texts 16 --words 120
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import llama_cpp as ll
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _models import resolve_model
from gritdesk.runtime.engine import Engine, EngineSettings


def minimal_loop(engine: Engine, token_lists: list[list[int]], n_prefix: int) -> np.ndarray:
    """The same work with bare llama-cpp-python calls: one text per decode."""
    ctx, mem, n_embd = engine._ctx, ll.llama_get_memory(engine._ctx), engine.embedding_dim
    ll.llama_set_embeddings(ctx, True)
    ll.llama_set_causal_attn(ctx, False)
    batch = ll.llama_batch_init(max(len(t) for t in token_lists), 0, 1)
    out = np.zeros((len(token_lists), n_embd), dtype=np.float32)
    try:
        for row, tokens in enumerate(token_lists):
            ll.llama_memory_clear(mem, True)
            for i, tok in enumerate(tokens):
                batch.token[i] = tok
                batch.pos[i] = i
                batch.n_seq_id[i] = 1
                batch.seq_id[i][0] = 0
                batch.logits[i] = True
            batch.n_tokens = len(tokens)
            assert ll.llama_decode(ctx, batch) == 0
            ptr = ll.llama_get_embeddings(ctx)
            hidden = np.ctypeslib.as_array(ptr, shape=(len(tokens), n_embd))
            v = hidden[n_prefix:].mean(axis=0)
            out[row] = v / np.linalg.norm(v)
    finally:
        ll.llama_batch_free(batch)
    engine._mode = None  # we changed modes behind the engine's back
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--model", default="1b", help="synthetic shape (tiny, 1b, 7b) or a .gguf path")
    ap.add_argument("--texts", type=int, default=16)
    ap.add_argument("--words", type=int, default=120, help="words per text")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--n-ctx", type=int, default=2048)
    args = ap.parse_args()

    path = resolve_model(args.model)
    rng = np.random.default_rng(0)
    vocab = "invoice report river mountain code function paper table chair light sound".split()
    texts = [" ".join(rng.choice(vocab, args.words)) for _ in range(args.texts)]
    engine = Engine(path, EngineSettings(n_ctx=args.n_ctx, n_seq_max=1))
    prefix = engine.recipe.embedding.document()
    token_lists = [engine.tokenize(prefix + t, add_bos=True) for t in texts]
    n_prefix = len(engine.tokenize(prefix, add_bos=True))
    n_tokens = sum(len(t) for t in token_lists)

    engine.embed(texts[:1])  # warm up both paths
    minimal_loop(engine, token_lists[:1], n_prefix)
    app_times, loop_times = [], []
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        ours = engine.embed(texts)
        app_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        ref = minimal_loop(engine, token_lists, n_prefix)
        loop_times.append(time.perf_counter() - t0)
    assert float(np.min(np.sum(ours * ref, axis=1))) > 0.9999, "the two paths disagree"
    app_tps = n_tokens / statistics.median(app_times)
    loop_tps = n_tokens / statistics.median(loop_times)
    print(f"model: {path.name}  texts: {args.texts}  tokens: {n_tokens}  rounds: {args.rounds}")
    print(f"gritdesk Engine.embed (n_seq_max=1): {app_tps:10.1f} tokens/s")
    print(f"minimal llama-cpp-python loop:       {loop_tps:10.1f} tokens/s")
    print(f"ratio gritdesk / minimal loop: {app_tps / loop_tps:.3f}  (target >= 0.95)")

    # several short texts per decode (queries, titles) vs one decode each
    short = [" ".join(rng.choice(vocab, 12)) for _ in range(32)]
    n_short = sum(len(engine.tokenize(prefix + t, add_bos=True)) for t in short)
    packed = Engine(path, EngineSettings(n_ctx=args.n_ctx, n_seq_max=16))
    packed.embed(short[:2])
    timings = {}
    for label, eng in (("one text per decode", engine), ("packed (pack_tokens=256)", packed)):
        t0 = time.perf_counter()
        eng.embed(short)
        timings[label] = n_short / (time.perf_counter() - t0)
        print(f"32 short texts, {label:26}: {timings[label]:8.1f} tokens/s")
    ratio = timings["packed (pack_tokens=256)"] / timings["one text per decode"]
    print(f"packing short texts: {ratio:.2f}x")


if __name__ == "__main__":
    main()
