"""A chat's second turn: time to first token when it continues the first turn's KV, against
the suffix alone prefilled on that same KV, and against reading the conversation again
(the behaviour before issue 13), all in one run through the app's Answerer.

    .venv/bin/python benchmarks/chat_turns.py [--model 1b] [--doc-tokens 250] [--repeats 3]

Indexes three synthetic files with the real CLI (each chunk's KV saved), then per cache
mode (doc, off) and repeat: turn one from scratch; turn two continuing its KV (`kept`);
the same follow-up tokens prefilled alone on the same KV with bare engine calls
(`suffix only`, the floor); turn two with nothing kept (`re-prefill`). Times are from the
start of the answer phase to the first token (retrieval is before it in every case).
Target: kept / suffix only <= 1.2.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _models import resolve_model
from gritdesk.rag.answer import Answerer, AskOptions, PreparedAnswer
from gritdesk.rag.layouts import CacheMode
from gritdesk.runtime.engine import ChatTurn, GenerationOptions, GenerationStats
from gritdesk.session import open_session
from gritdesk.settings import Settings

TOPICS = {
    "harbour.txt": "the harbour office letters about cargo ships grain prices storms repairs",
    "lighthouse.txt": "the lighthouse keeper daily notes about fog lamps oil visitors birds",
    "market.txt": "the market square stalls selling bread cheese wool lanterns on saturdays",
}
FIRST = "What did the lighthouse keeper write in his daily notes?"
SECOND = "And what did he write about the fog and the lamps?"


def write_corpus(folder: Path, doc_tokens: int) -> None:
    rng = np.random.default_rng(0)
    for name, words in TOPICS.items():
        vocab = words.split()
        # about 1.3 tokens a word for these words
        (folder / name).write_text(" ".join(rng.choice(vocab, int(doc_tokens / 1.3))) + "\n")


def answer(answerer: Answerer, prepared: PreparedAnswer) -> tuple[str, float]:
    """The answer text and seconds from the start of the answer phase to the first token."""
    text = "".join(answerer.stream(prepared))
    first = prepared.timings.first_token_ms
    return text, (first if first is not None else prepared.timings.total_ms) / 1000


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--model", default="1b", help="synthetic shape (tiny, 1b, 7b) or a .gguf path")
    ap.add_argument("--doc-tokens", type=int, default=250, help="tokens per file (one chunk)")
    ap.add_argument("--gen-tokens", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--modes", default="doc,off", help="cache modes to run, comma-separated")
    args = ap.parse_args()
    model = resolve_model(args.model)
    work = Path(tempfile.mkdtemp(prefix="gritdesk-chat-bench-"))
    try:
        run(args, model, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace, model: Path, work: Path) -> None:
    os.environ["GRITDESK_DATA_DIR"] = str(work / "data")  # no user config, no user index
    corpus, db = work / "corpus", work / "index.db"
    corpus.mkdir()
    write_corpus(corpus, args.doc_tokens)
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", "from gritdesk.cli import main; main()", "index", str(corpus),
         "--db", str(db), "--model", str(model)],
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    print(f"model {model.name}; indexed {len(TOPICS)} files in {time.perf_counter() - t0:.0f} s")
    session = open_session(Settings(db=db, model=model, context=2048))
    engine = session.engine
    assert engine is not None
    answerer = Answerer(session.db, engine, session.kv_store)
    gen = GenerationOptions(max_tokens=args.gen_tokens)
    for mode in (CacheMode(m) for m in args.modes.split(",")):
        options = AskOptions(k=len(TOPICS), cache_mode=mode, generation=gen)
        kept_s: list[float] = []
        suffix_s: list[float] = []
        again_s: list[float] = []
        for _ in range(args.repeats):
            answerer.kept = None
            first = answerer.prepare(FIRST, options)
            first_text, _ = answer(answerer, first)
            history = [ChatTurn(FIRST, first_text)]
            kept = answerer.kept
            assert kept is not None

            follow = answerer.prepare(SECOND, options, history, [FIRST])
            if follow.kept is None:
                sys.exit(f"turn two did not continue the KV: {follow.reprefill_reason}")
            _, seconds = answer(answerer, follow)
            kept_s.append(seconds)
            kept_prefill = follow.timings.prompt_tokens_computed

            # the floor: the same follow-up tokens alone on the same KV, bare engine calls
            engine.keep_until(kept.end)
            stats = GenerationStats()
            for _ in engine.stream(
                follow.follow_up_tokens, position=kept.end, options=gen, stats=stats
            ):
                break
            suffix_s.append(stats.seconds_to_first_token or 0.0)

            answerer.kept = None  # what every turn did before: lay the whole prompt out again
            again = answerer.prepare(SECOND, options, history, [FIRST])
            _, seconds = answer(answerer, again)
            again_s.append(seconds)
            again_prefill = again.timings.prompt_tokens_computed
        kept_m, suffix_m, again_m = (statistics.median(x) for x in (kept_s, suffix_s, again_s))
        print(
            f"cache {mode.value}: turn two time to first token (median of {args.repeats}): "
            f"kept {kept_m * 1000:.0f} ms ({kept_prefill} tokens computed), "
            f"suffix only {suffix_m * 1000:.0f} ms, "
            f"re-prefill {again_m * 1000:.0f} ms ({again_prefill} tokens computed); "
            f"kept / suffix only {kept_m / suffix_m:.2f} (target <= 1.2), "
            f"re-prefill / kept {again_m / kept_m:.2f}"
        )
    session.close()


if __name__ == "__main__":
    main()
