"""Smaller KV blobs (issue 13): bytes per token on disk, save and restore time, and answer
drift, for each on-disk format of one document's f16 KV, in one run.

Formats: "raw" (llama.cpp's bytes, today's blobs), "q8_rows" (f16 K/V rows as 8-bit blocks,
runtime/kv_state_codec.py) and, for comparison only, "zlib_shuffled" (lossless: the f16
bytes split into high and low planes, then stdlib zlib level 1). Restore = read the blob
file (warm page cache), check it, decode, hand it to llama.cpp; median of --repeat runs.
Drift = max |logit difference| after the same suffix against restoring the raw blob, as a
share of the largest logit (the reference tests allow f16 0.005, q8_0 0.03).

    .venv/bin/python benchmarks/kv_blob_formats.py --model 1b --tokens 1000
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _models import resolve_model
from gritdesk.ingest.chunk import text_digest
from gritdesk.runtime.engine import Engine, EngineSettings, KvState
from gritdesk.runtime.kv_state_codec import Q8RowsCodec
from gritdesk.store.connection import open_database
from gritdesk.store.kv_cache import BlobCodec, KvCacheStore
from index_overhead import WORDS

SUFFIX = "\n<|user|>\nWhich team reviewed the release?\n\nAnswer the prior query while " \
    "optionally using the context prior to it\n<|assistant|>\n"


class ZlibShuffled:
    """Lossless: byte planes of the whole state (f16 high bytes compress, low bytes barely)."""

    name = "zlib_shuffled"

    def encode(self, payload: bytes | bytearray) -> bytes:
        data = np.frombuffer(payload, np.uint8)
        even = len(data) - len(data) % 2
        planes = data[:even].reshape(-1, 2).T.tobytes() + data[even:].tobytes()
        return len(payload).to_bytes(8, "little") + zlib.compress(planes, 1)

    def decode(self, stored: bytearray) -> bytearray:
        n = int.from_bytes(stored[:8], "little")
        planes = np.frombuffer(zlib.decompress(stored[8:]), np.uint8)
        even = n - n % 2
        out = bytearray(n)
        out[:even] = planes[:even].reshape(2, -1).T.tobytes()
        out[even:] = planes[even:].tobytes()
        return out


def suffix_logits(engine: Engine, state: KvState) -> np.ndarray:
    engine.reset()
    n = engine.restore_at(state, 0)
    engine.prefill(engine.tokenize(SUFFIX), n)
    return engine.last_logits().astype(np.float64)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--model", default="1b")
    ap.add_argument("--tokens", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    path = resolve_model(args.model)
    engine = Engine(path, EngineSettings(n_ctx=max(2048, args.tokens + 256)))
    rng = random.Random(0)
    words: list[str] = []
    while engine.count_tokens(" ".join(words)) < args.tokens:
        words += [rng.choice(WORDS) for _ in range(50)]
    text = " ".join(words)
    _, states = engine.embed_documents_with_kv([text])
    state, sig, key = states[0], engine.kv_signature, text_digest(text)
    n_tokens = len(state.tokens)
    reference = suffix_logits(engine, state)
    scale = float(np.abs(reference).max())
    codecs: list[tuple[str, BlobCodec | None]] = [
        ("raw", None), ("q8_rows", Q8RowsCodec()), ("zlib_shuffled", ZlibShuffled())
    ]
    print(f"model {path.name}; one document of {n_tokens} tokens, f16 KV "
          f"({len(state.data) / n_tokens / 1024:.1f} KiB/token in memory)")
    print(f"{'format':15}{'KiB/token':>10}{'vs raw':>8}{'save ms':>9}{'restore ms':>11}"
          f"{'vs raw':>8}{'drift':>9}")
    base: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, codec in codecs:
            store = KvCacheStore(
                open_database(Path(tmp) / f"{name}.db"), Path(tmp) / name, 1 << 40, codec
            )
            t0 = time.perf_counter()
            store.put(key, sig, state.tokens, state.data)
            saved = time.perf_counter() - t0
            size = store.stats().bytes
            times = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                payload = store.get(key, sig, state.tokens)
                assert payload is not None
                engine.reset()
                engine.restore_at(KvState(state.tokens, payload), 0)
                times.append(time.perf_counter() - t0)
            restore = statistics.median(times)
            drift = float(np.abs(suffix_logits(engine, KvState(state.tokens, payload))
                                 - reference).max()) / scale
            base.setdefault("size", size)
            base.setdefault("restore", restore)
            print(f"{name:15}{size / n_tokens / 1024:10.2f}{size / base['size']:8.3f}"
                  f"{saved * 1000:9.1f}{restore * 1000:11.1f}{restore / base['restore']:8.2f}"
                  f"{drift:9.5f}")


if __name__ == "__main__":
    main()
