"""The GritLM paper's Table 4 on this machine (issue 4): a 4000-token document, a short query,
16 generated tokens; latency and time to first token of no RAG, plain RAG and every cache
mode through the app, against bare llama-cpp-python calls doing the same, in one run.

    .venv/bin/python benchmarks/rag_cache.py --model 1b                      # f16 KV
    .venv/bin/python benchmarks/rag_cache.py --model 1b --kv-type q8_0       # q8_0 KV + flash attn

The same runs as `gritdesk bench rag`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _models import resolve_model
from gritdesk.models.catalog import load_catalog
from gritdesk.rag.bench import run_rag_bench
from gritdesk.runtime.recipes import get_recipe


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--model", default="1b", help="synthetic shape (tiny, 1b, 7b) or a .gguf path")
    ap.add_argument("--doc-tokens", type=int, default=4000)
    ap.add_argument("--gen-tokens", type=int, default=16)
    ap.add_argument("--kv-type", default="f16", choices=["f16", "q8_0", "q4_0"])
    ap.add_argument("--flash-attn", action="store_true")
    ap.add_argument("--repeats", type=int, default=3, help="runs of each short measurement")
    ap.add_argument("--recipe", help="default: a known build's recipe (SmolLM2: smollm2)")
    args = ap.parse_args()
    model = resolve_model(args.model)
    known = load_catalog().by_filename(model.name)
    recipe = args.recipe or (known.recipe if known else None)
    run_rag_bench(
        model,
        recipe=get_recipe(recipe) if recipe else None,
        doc_tokens=args.doc_tokens,
        gen_tokens=args.gen_tokens,
        kv_type=args.kv_type,
        flash_attn=args.flash_attn,
        repeats=args.repeats,
    )


if __name__ == "__main__":
    main()
