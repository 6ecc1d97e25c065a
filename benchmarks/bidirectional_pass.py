"""Bidirectional embedding pass vs causal prefill of the same tokens (issue 13).

Both passes run through the app's Engine on one context (the app's settings): the
embedding pass is `Engine.embed` (embeddings on, causal attention off, every token an
output, one decode), the causal prefill is `Engine.next_token_logits` over the very same
tokens (causal, one output row). Runs alternate (the order swaps every round) so both see
the same machine load; the medians of wall seconds and of process CPU seconds are printed
with their ratios. Target: bidirectional / causal <= 1.05.

On a machine whose cores are shared with other work, wall time measures the load as much
as the pass; with `--threads 1` the process CPU time is the pass's own work and barely
moves with load (ggml's worker threads spin at barriers, so with more threads CPU time
counts spinning too).

    .venv/bin/python benchmarks/bidirectional_pass.py --model 1b --tokens 4000 --rounds 3
    .venv/bin/python benchmarks/bidirectional_pass.py --model 1b --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _models import resolve_model
from gritdesk.rag.bench import make_document
from gritdesk.runtime.engine import Engine, EngineSettings


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of one call."""
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--model", default="1b", help="synthetic shape (tiny, 1b, 7b) or a .gguf path")
    ap.add_argument("--tokens", type=int, default=4000, help="tokens in the pass (format included)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="default: the engine's")
    ap.add_argument("--flash-attn", action="store_true")
    ap.add_argument("--kv-type", default="f16")
    ap.add_argument("--no-warmup", action="store_true", help="skip one untimed run of each")
    args = ap.parse_args()

    path = resolve_model(args.model)
    settings = EngineSettings(
        n_ctx=args.tokens + 64,
        n_seq_max=1,
        n_threads=args.threads,
        kv_type=args.kv_type,
        flash_attn=args.flash_attn,
    )
    engine = Engine(path, settings)
    overhead = len(engine.document_tokens("x")) - 1
    doc = make_document(engine, args.tokens - overhead)
    while len(engine.document_tokens(doc + " river")) <= args.tokens:
        doc += " river"  # make_document stops short of the count; fill up to it
    tokens = engine.document_tokens(doc)
    passes: dict[str, Callable[[], object]] = {
        "bidirectional embedding pass": lambda: engine.embed([doc]),
        "causal prefill": lambda: engine.next_token_logits(tokens),
    }
    print(
        f"model {path.name}; {len(tokens)} tokens; n_ubatch {engine.n_ubatch}; threads "
        f"{settings.n_threads or 'default'}; KV {settings.kv_type}; flash attention "
        f"{'on' if settings.resolved_flash_attn() else 'off'}; {args.rounds} rounds"
    )
    if not args.no_warmup:
        for fn in passes.values():
            fn()  # graphs and output buffers reach their sizes once
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in passes}
    names = list(passes)
    for r in range(args.rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            runs[name].append(timed(passes[name]))
            wall, cpu = runs[name][-1]
            print(f"  round {r + 1}: {name:30} wall {wall:7.2f} s  cpu {cpu:7.2f} s", flush=True)
    med = {
        name: (statistics.median(w for w, _ in t), statistics.median(c for _, c in t))
        for name, t in runs.items()
    }
    for name, (wall, cpu) in med.items():
        print(f"{name:30} median wall {wall:7.2f} s  cpu {cpu:7.2f} s")
    (bw, bc), (cw, cc) = med[names[0]], med[names[1]]
    print(f"bidirectional / causal: wall {bw / cw:.3f}, cpu {bc / cc:.3f} (target <= 1.05)")
    engine.close()


if __name__ == "__main__":
    main()
