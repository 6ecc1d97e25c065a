"""Patch 0002 (embedding passes skip the LM head): peak memory and throughput before/after
on a 2048-token bidirectional embedding pass, in one run of one build.

"Before" is the same build with GRITDESK_KEEP_LM_HEAD=1, which restores upstream's graph
and logits buffer. Each variant runs in its own process so peak RSS is its own.

    .venv/bin/python benchmarks/native_lm_head.py --model 1b --tokens 2048
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _models import resolve_model

CHILD = r"""
import json, sys, time
from gritdesk.runtime.engine import Engine, EngineSettings
path, n_tokens, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
engine = Engine(path, EngineSettings(n_ctx=n_tokens + 64, n_seq_max=1))
words = "alpha beta gamma delta epsilon zeta eta theta iota kappa".split()
text, i = "", 0
while engine.count_tokens(text) < n_tokens - 16:
    text += words[i % len(words)] + " "
    i += 1
engine.embed([text])  # warm-up: graphs and buffers reach their size
times = []
for _ in range(reps):
    t0 = time.perf_counter()
    vec = engine.embed([text])[0]
    times.append(time.perf_counter() - t0)
times.sort()
print(json.dumps({"tokens": len(engine.tokenize(text, add_bos=True)) + 5,
                  "seconds": times[len(times) // 2], "first": [float(x) for x in vec[:4]]}))
"""


def run(path: Path, tokens: int, reps: int, keep_head: bool) -> dict:
    """Run one variant in a child; its own peak RSS comes from wait4's rusage."""
    env = dict(os.environ, GRITDESK_KEEP_LM_HEAD="1" if keep_head else "0")
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(path), str(tokens), str(reps)],
            stdout=subprocess.PIPE,
            stderr=err,
            env=env,
            text=True,
        )
        assert proc.stdout is not None
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            raise SystemExit(f"child failed ({proc.returncode}): {err.read()[-800:]}")
    result = json.loads(out)
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    result["peak_rss_mib"] = usage.ru_maxrss * scale / 2**20
    return result


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--model", default="1b")
    ap.add_argument("--tokens", type=int, default=2048)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    path = resolve_model(args.model)
    after = run(path, args.tokens, args.reps, keep_head=False)
    before = run(path, args.tokens, args.reps, keep_head=True)
    n = after["tokens"]
    print(f"model: {path.name}  input: {n} tokens, bidirectional, pooling over sample tokens")
    print(f"{'':28}{'peak RSS MiB':>14}{'tokens/s':>12}")
    for label, r in (("upstream (LM head kept)", before), ("patched (LM head skipped)", after)):
        print(f"{label:28}{r['peak_rss_mib']:14.0f}{n / r['seconds']:12.1f}")
    print(
        f"peak RSS saved: {before['peak_rss_mib'] - after['peak_rss_mib']:.0f} MiB "
        f"({after['peak_rss_mib'] / before['peak_rss_mib']:.2f}x); "
        f"throughput: {before['seconds'] / after['seconds']:.2f}x"
    )
    same = all(abs(a - b) < 1e-4 for a, b in zip(before["first"], after["first"], strict=True))
    print(f"embeddings identical: {same}")


if __name__ == "__main__":
    main()
