"""MiniLM (a `bert` GGUF) embedding throughput through gritdesk's Engine: one text per
llama_encode call vs several packed into one call with distinct sequence ids.

Texts are slices of the demo corpus: "chunk" texts as the chunker makes them for MiniLM
(about 250 tokens) and "short" ones (about 25 tokens, like queries or headings). Each
setting runs alternately with the others for `--rounds`. Work is measured as CPU time on
one thread (`--threads 1`, the default): on shared cores wall time swings by half.

    .venv/bin/python benchmarks/encoder_packing.py --model PATH.gguf [--rounds 3]
"""

from __future__ import annotations

import argparse
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
    ap.add_argument("--chunks", type=int, default=12)
    ap.add_argument("--shorts", type=int, default=48)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    settings = {p: EngineSettings(pack_tokens=p, n_threads=args.threads) for p in PACKS}
    engines = {p: Engine(args.model, s) for p, s in settings.items()}
    probe = engines[PACKS[0]]
    sets = {
        "chunk": corpus_texts(probe, probe.max_document_tokens - 4, args.chunks),
        "short": corpus_texts(probe, 25, args.shorts),
    }
    print(f"{args.model.name}, {args.threads} thread(s); tokens/s by CPU time (by wall time)")
    for kind, texts in sets.items():
        tokens = sum(len(probe.document_tokens(t)) for t in texts)
        cpu: dict[int, list[float]] = {p: [] for p in PACKS}
        wall: dict[int, list[float]] = {p: [] for p in PACKS}
        for engine in engines.values():
            engine.embed_documents(texts[:2])  # warm up
        for _ in range(args.rounds):
            for pack, engine in engines.items():
                c0, t0 = time.process_time(), time.perf_counter()
                engine.embed_documents(texts)
                cpu[pack].append(time.process_time() - c0)
                wall[pack].append(time.perf_counter() - t0)
        print(f"{kind}: {len(texts)} texts, {tokens} tokens, best of {args.rounds}")
        base = min(cpu[1])
        for pack in PACKS:
            label = "one text per call" if pack == 1 else f"packed up to {pack} tokens"
            print(
                f"  {label:<26} {tokens / min(cpu[pack]):6.0f} ({tokens / min(wall[pack]):4.0f})"
                f"  x{base / min(cpu[pack]):.2f}"
            )


if __name__ == "__main__":
    main()
