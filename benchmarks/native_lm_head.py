"""Patch 0002 (an embedding pass skips the LM head): process CPU seconds per embedded token,
upstream's llama.cpp against this checkout's, and the KV bytes each pass leaves.

One process cannot load two llama.cpp builds, so each run is a child process of a given
Python: `--upstream` names one whose wheel lacks patch 0002 (a checkout of main's
`.venv/bin/python`), `--patched` one with it (default: this Python). Both children run the
same plain llama-cpp-python calls, nothing of gritdesk's: a context laid out as the app's
embedding pass (embeddings on, pooling NONE, causal attention off, every token an output),
one warm-up pass, then `--passes` timed passes of `--tokens` tokens, each from an empty
cache. A child reports the process CPU seconds (`time.process_time`, all its threads)
and the wall seconds spent in `llama_decode`, the sha256 of the KV state and of the
embeddings its warm-up pass left, whether a logits buffer exists after the pass, and its
peak RSS.

Rounds alternate which build runs first. Printed per model and thread count: each
round's CPU ms per token and their ratio (patched / upstream), the medians, wall tokens/s,
and whether both builds left the same KV bytes and embeddings. The 1-minute load average
is printed before each round (`--quiet-load 0.7` waits for it first): with more threads
than free cores, ggml's workers spin at barriers and CPU time counts the spinning, so take
multi-thread CPU times on quiet cores; one thread's CPU time barely moves with load.

    .venv/bin/python benchmarks/native_lm_head.py --upstream ../main/.venv/bin/python \\
        --model ~/.cache/gritdesk/models/SmolLM2-135M-Instruct.Q4_1.gguf --model 1b \\
        --threads 1 --threads 2 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _models import resolve_model

CHILD = r"""
import ctypes, hashlib, json, sys, time
import llama_cpp as ll

path, threads, n_tokens, passes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])

@ll.llama_log_callback
def quiet(level, text, user):
    pass

ll.llama_log_set(quiet, ctypes.c_void_p(0))
ll.llama_backend_init()
model = ll.llama_model_load_from_file(path.encode(), ll.llama_model_default_params())
params = ll.llama_context_default_params()
params.n_ctx = params.n_batch = params.n_ubatch = n_tokens
params.n_seq_max = 1
params.n_threads = params.n_threads_batch = threads
params.embeddings = True
params.pooling_type = ll.LLAMA_POOLING_TYPE_NONE
params.flash_attn_type = ll.LLAMA_FLASH_ATTN_TYPE_DISABLED
ctx = ll.llama_init_from_model(model, params)
ll.llama_set_causal_attn(ctx, False)
memory = ll.llama_get_memory(ctx)
vocab = ll.llama_model_get_vocab(model)
n_vocab, n_embd = ll.llama_vocab_n_tokens(vocab), ll.llama_model_n_embd(model)
tokens = [ll.llama_vocab_bos(vocab)]
tokens += [100 + (i * 7919) % (n_vocab - 200) for i in range(n_tokens - 1)]  # any ids will do
batch = ll.llama_batch_init(n_tokens, 0, 1)

def one_pass():
    ll.llama_memory_clear(memory, True)
    for i, token in enumerate(tokens):
        batch.token[i], batch.pos[i], batch.n_seq_id[i] = token, i, 1
        batch.seq_id[i][0], batch.logits[i] = 0, True
    batch.n_tokens = n_tokens
    c0, w0 = time.process_time(), time.perf_counter()
    if ll.llama_decode(ctx, batch) != 0:
        raise SystemExit("llama_decode failed")
    return time.process_time() - c0, time.perf_counter() - w0

one_pass()  # warm-up: buffers reach their size, weights are paged in
size = ll.llama_state_seq_get_size(ctx, 0)
state = (ctypes.c_uint8 * size)()
written = ll.llama_state_seq_get_data(ctx, state, size, 0)
embd = ctypes.string_at(ll.llama_get_embeddings(ctx), n_tokens * n_embd * 4)
result = {
    "kv": hashlib.sha256(bytes(state)[:written]).hexdigest(),
    "embd": hashlib.sha256(embd).hexdigest(),
    "logits_buffer": bool(ll.llama_get_logits(ctx)),
    "cpu": [], "wall": [],
}
for _ in range(passes):
    cpu, wall = one_pass()
    result["cpu"].append(cpu)
    result["wall"].append(wall)
print(json.dumps(result))
"""


def run_child(python: str, model: Path, threads: int, tokens: int, passes: int) -> dict:
    """One build's run in its own process; peak RSS from wait4's rusage."""
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(
            [python, "-c", CHILD, str(model), str(threads), str(tokens), str(passes)],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
        assert proc.stdout is not None
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            err.seek(0)
            raise SystemExit(f"{python} failed on {model.name}: {err.read()[-800:]}")
    result = json.loads(out)
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    result["peak_rss_mib"] = usage.ru_maxrss * scale / 2**20
    result["cpu_ms_per_token"] = 1000 * sum(result["cpu"]) / (passes * tokens)
    result["tokens_per_s"] = passes * tokens / sum(result["wall"])
    return result


def wait_for_load(below: float, at_most: int) -> None:
    """Sleep until the 1-minute load average is below `below` (our own last round counts
    too, so this also lets it decay), or `at_most` seconds have passed."""
    waited = 0
    while os.getloadavg()[0] >= below and waited < at_most:
        time.sleep(20)
        waited += 20
    if os.getloadavg()[0] >= below:
        print(f"  load still {os.getloadavg()[0]:.2f} after {waited} s: timing under load")


def median_of(pairs: list[dict[str, dict]], build: str, key: str) -> float:
    return statistics.median(pair[build][key] for pair in pairs)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--upstream", required=True, help="a Python whose wheel lacks patch 0002")
    ap.add_argument("--patched", default=sys.executable, help="a Python with it (default: this)")
    ap.add_argument(
        "--model", action="append", help="synthetic shape (1b, 7b) or a .gguf path; repeatable"
    )
    ap.add_argument("--threads", type=int, action="append", help="repeatable (default: 1 and 2)")
    ap.add_argument("--tokens", type=int, default=512, help="tokens in one pass")
    ap.add_argument("--passes", type=int, default=3, help="timed passes per run")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", type=Path, help="write every run here")
    ap.add_argument(
        "--quiet-load",
        type=float,
        help="before each round, wait until the 1-minute load average is below this",
    )
    ap.add_argument("--quiet-wait", type=int, default=1800, help="seconds to wait for it at most")
    args = ap.parse_args()
    models = [resolve_model(str(Path(m).expanduser())) for m in args.model or ["1b"]]
    threads = args.threads or [1, 2]
    builds = {"upstream": args.upstream, "patched": args.patched}

    runs: dict[tuple[str, int], list[dict[str, dict]]] = {}
    loads: list[float] = []
    for r in range(args.rounds):
        if args.quiet_load is not None:
            wait_for_load(args.quiet_load, args.quiet_wait)
        loads.append(os.getloadavg()[0])
        print(f"round {r + 1}: load average {loads[-1]:.2f}", flush=True)
        order = ["upstream", "patched"] if r % 2 == 0 else ["patched", "upstream"]
        for model in models:
            for t in threads:
                pair = {
                    name: run_child(builds[name], model, t, args.tokens, args.passes)
                    for name in order
                }
                runs.setdefault((model.name, t), []).append(pair)
                up, pa = pair["upstream"], pair["patched"]
                print(
                    f"  {model.name} {t} thr: CPU ms/token upstream {up['cpu_ms_per_token']:.3f}"
                    f" patched {pa['cpu_ms_per_token']:.3f}"
                    f" ratio {pa['cpu_ms_per_token'] / up['cpu_ms_per_token']:.3f}",
                    flush=True,
                )
    print(f"\nafter: load average {os.getloadavg()[0]:.2f}")
    print(f"{args.tokens}-token bidirectional embedding pass, {args.passes} timed passes per run")
    header = (
        f"{'model':44}{'thr':>4}{'CPU ms/tok up':>15}{'patched':>9}{'ratio':>7}"
        f"{'wall tok/s up':>15}{'patched':>9}{'RSS MiB up':>12}{'patched':>9}  same KV, embd"
    )
    print(header)
    for (name, t), pairs in runs.items():
        med = partial(median_of, pairs)
        ratios = [
            p["patched"]["cpu_ms_per_token"] / p["upstream"]["cpu_ms_per_token"] for p in pairs
        ]
        same_kv = all(p["patched"]["kv"] == p["upstream"]["kv"] for p in pairs)
        same_embd = all(p["patched"]["embd"] == p["upstream"]["embd"] for p in pairs)
        print(
            f"{name:44}{t:>4}{med('upstream', 'cpu_ms_per_token'):15.3f}"
            f"{med('patched', 'cpu_ms_per_token'):9.3f}{statistics.median(ratios):7.3f}"
            f"{med('upstream', 'tokens_per_s'):15.1f}{med('patched', 'tokens_per_s'):9.1f}"
            f"{med('upstream', 'peak_rss_mib'):12.0f}{med('patched', 'peak_rss_mib'):9.0f}"
            f"  {same_kv}, {same_embd}"
        )
        print(f"{'':48}per-round ratios: {', '.join(f'{x:.3f}' for x in ratios)}")
    logits = {b: {p[b]["logits_buffer"] for ps in runs.values() for p in ps} for b in builds}
    print(f"logits buffer after an embedding pass: {logits}")
    if args.json:
        rows = [
            {"model": name, "threads": t, "round": i + 1, "load": loads[i], **pair}
            for (name, t), pairs in runs.items()
            for i, pair in enumerate(pairs)
        ]
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
