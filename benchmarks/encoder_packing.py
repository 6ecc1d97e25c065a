"""MiniLM (a `bert` GGUF) embedding throughput through gritdesk's Engine: one text per
llama_encode call vs several packed into one call with distinct sequence ids.

Texts are slices of the demo corpus: "chunk" texts as the chunker makes them for MiniLM
(about 250 tokens) and "short" ones (about 25 tokens, like queries or headings). Each
setting runs alternately with the others for `--rounds`, so machine noise is shared.

    .venv/bin/python benchmarks/encoder_packing.py --model PATH.gguf [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from gritdesk.demo import CORPUS
from gritdesk.runtime.engine import Engine, EngineSettings

PACKS = (1, 256, 512, 1024)  # pack_tokens: 1 = one text per call


def corpus_texts(engine: Engine, tokens_each: int, count: int) -> list[str]:
    """`count` consecutive slices of the demo corpus's words, each about `tokens_each` tokens."""
    words = " ".join(p.read_text() for p in sorted(CORPUS.iterdir()) if p.name.endswith(".md"))
    words = words.split() * 50
    texts, start = [], 0
    for _ in range(count):
        end = start + tokens_each // 2
        while engine.count_tokens(" ".join(words[start:end])) < tokens_each:
            end += 1
        texts.append(" ".join(words[start:end]))
        start = end
    return texts


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--model", required=True, type=Path)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--chunks", type=int, default=16)
    ap.add_argument("--shorts", type=int, default=64)
    args = ap.parse_args()

    engines = {p: Engine(args.model, EngineSettings(pack_tokens=p)) for p in PACKS}
    probe = engines[PACKS[0]]
    sets = {
        "chunk": corpus_texts(probe, probe.max_document_tokens - 4, args.chunks),
        "short": corpus_texts(probe, 25, args.shorts),
    }
    for kind, texts in sets.items():
        tokens = sum(len(probe.document_tokens(t)) for t in texts)
        times: dict[int, list[float]] = {p: [] for p in PACKS}
        for engine in engines.values():
            engine.embed_documents(texts[:2])  # warm up
        for _ in range(args.rounds):
            for pack, engine in engines.items():
                t0 = time.perf_counter()
                engine.embed_documents(texts)
                times[pack].append(time.perf_counter() - t0)
        print(f"{kind}: {len(texts)} texts, {tokens} tokens, best of {args.rounds} (median)")
        base = min(times[1])
        for pack in PACKS:
            best = min(times[pack])
            label = "one text per call" if pack == 1 else f"packed up to {pack} tokens"
            print(
                f"  {label:<26} {tokens / best:8.0f} tokens/s  "
                f"({tokens / statistics.median(times[pack]):.0f})  x{base / best:.2f}"
            )


if __name__ == "__main__":
    main()
