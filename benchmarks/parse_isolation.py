"""Cost of parsing in the bounded worker process (issue 11) vs. parsing in-process.

Indexes the same trees twice per round, once as gritdesk does (ParserProcess: one
long-lived child process, a pipe round trip per file) and once with the parser called
directly in the indexing process (the old way, no bounds), and prints the ratio of the
medians. Two trees: 200 small generated files with a hashing embedder (the worst case:
embedding is nearly free, so the worker's cost shows in full), and the demo corpus
with the synthetic tiny model.

    .venv/bin/python benchmarks/parse_isolation.py [--rounds 3] [--files 200]
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

import gritdesk.ingest.indexer as indexer
from gritdesk.ingest.parse import parse_document
from gritdesk.ingest.parser_process import ParseLimits, ParserProcess
from gritdesk.store.connection import open_database

DEMO_CORPUS = Path(indexer.__file__).resolve().parents[1] / "demo_corpus"
WORDS = "ledger harbour invoice river budget travel policy engine folder report".split()


class InProcessParser:
    """The parser called directly, as before the worker: no time or memory bound."""

    def __init__(self, limits: ParseLimits) -> None:
        self.limits = limits

    def __enter__(self) -> InProcessParser:
        return self

    def __exit__(self, *_: object) -> None:
        pass

    def start(self) -> None:
        pass

    def parse(self, rel_path: str, data: bytes, **_: object):
        return parse_document(rel_path, data, max_output_bytes=self.limits.output_bytes)


class HashEmbedder:
    """Words are tokens; a vector is a hash of the text: embedding costs almost nothing."""

    fingerprint = "hash-embedder-64"
    embedding_dim = 64
    max_document_tokens = 256
    model_path = "/models/hash.gguf"

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def embed_documents(self, texts):
        out = np.zeros((len(texts), 64), dtype=np.float32)
        for row, text in enumerate(texts):
            out[row, hashlib.blake2b(text.encode()).digest()[0] % 64] = 1.0
        return out


def make_tree(root: Path, n_files: int) -> None:
    rng = random.Random(0)
    for i in range(n_files):
        folder = root / f"d{i % 10}"
        folder.mkdir(parents=True, exist_ok=True)
        lines = [" ".join(rng.choice(WORDS) for _ in range(12)) for _ in range(rng.randint(5, 40))]
        suffix = ".md" if i % 2 else ".txt"
        (folder / f"note{i}{suffix}").write_text("# Note\n\n" + "\n".join(lines) + "\n")


def timed_index(embedder, root: Path, parser_class, work: Path) -> float:
    indexer.ParserProcess = parser_class
    db_path = work / f"{parser_class.__name__}-{time.monotonic_ns()}.db"
    db = open_database(db_path)
    started = time.perf_counter()
    report = indexer.index_paths(db, embedder, [root])
    elapsed = time.perf_counter() - started
    db.close()
    assert not report.errors, report.errors
    return elapsed


def compare(name: str, embedder, root: Path, rounds: int, work: Path) -> None:
    times: dict[type, list[float]] = {ParserProcess: [], InProcessParser: []}
    for _ in range(rounds):
        for parser_class in times:  # alternate, so load on the machine hits both alike
            times[parser_class].append(timed_index(embedder, root, parser_class, work))
    worker = statistics.median(times[ParserProcess])
    direct = statistics.median(times[InProcessParser])
    print(
        f"{name}: in-process {direct:.3f} s, worker process {worker:.3f} s, "
        f"ratio {worker / direct:.2f} (median of {rounds})"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--files", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        tree = work / "tree"
        make_tree(tree, args.files)
        compare(f"{args.files} small files, hash embedder", HashEmbedder(), tree, args.rounds, work)

        from gritdesk.models.synthetic import synthetic_model_path
        from gritdesk.runtime.engine import Engine, EngineSettings

        engine = Engine(synthetic_model_path("tiny"), EngineSettings(n_ctx=1024, n_seq_max=8))
        try:
            compare("demo corpus, tiny model", engine, DEMO_CORPUS, args.rounds, work)
        finally:
            engine.close()


if __name__ == "__main__":
    main()
