"""Time a re-index of an unchanged tree of small files (target: <= 2 s for 10k files).

    .venv/bin/python benchmarks/reindex_unchanged.py [--files 10000] [--repeat 3]

Builds a tree of small Markdown and text files in nested folders (with a .gitignore
and a node_modules folder to skip), indexes it once with a stand-in embedder (this
measures the walk and the bookkeeping, not the model), then times index runs over the
unchanged tree. It also reports the first run's throughput and a run after touching
1% of the files (a stat change: they are hashed, not re-embedded).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from gritdesk.ingest.indexer import index_paths
from gritdesk.store.connection import open_database


class HashedWordsEmbedder:
    """Cheap deterministic vectors, so the benchmark measures indexing, not embedding."""

    fingerprint = "benchmark-hashed-words"
    embedding_dim = 64
    max_document_tokens = 512

    def count_tokens(self, text: str) -> int:
        return len(text.split()) + text.count("\n")

    def embed_documents(self, texts):
        rows = np.zeros((len(texts), self.embedding_dim), dtype=np.float32)
        for i, text in enumerate(texts):
            digest = hashlib.blake2b(text.encode(), digest_size=self.embedding_dim).digest()
            rows[i] = np.frombuffer(digest, dtype=np.uint8) - 127.5
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)

    def embed_queries(self, texts, instruction):
        return self.embed_documents(texts)


def build_tree(root: Path, n_files: int) -> list[Path]:
    rng = random.Random(0)
    words = "alpha beta gamma delta river stone cloud ember frost grove harbor".split()
    paths = []
    for i in range(n_files):
        folder = root / f"dir{i % 50:02}" / f"sub{i % 7}"
        folder.mkdir(parents=True, exist_ok=True)
        suffix = ".md" if i % 2 else ".txt"
        body = "\n".join(" ".join(rng.choices(words, k=12)) for _ in range(rng.randint(1, 6)))
        path = folder / f"file{i:05}{suffix}"
        path.write_text(f"# File {i}\n\n{body}\n" if suffix == ".md" else body + "\n")
        paths.append(path)
    (root / ".gitignore").write_text("*.tmp\nscratch/\n")
    (root / "node_modules" / "pkg").mkdir(parents=True)
    (root / "node_modules" / "pkg" / "index.js").write_text("module.exports = 1\n")
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "tree"
        paths = build_tree(root, args.files)
        db = open_database(Path(tmp) / "index.db")
        embedder = HashedWordsEmbedder()

        started = time.perf_counter()
        first = index_paths(db, embedder, [root])
        seconds = time.perf_counter() - started
        print(
            f"first index: {first.indexed:,} files, {first.chunks_written:,} chunks in "
            f"{seconds:.1f} s ({first.indexed / seconds:,.0f} files/s, stand-in embedder)"
        )

        timings = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            report = index_paths(db, embedder, [root])
            timings.append(time.perf_counter() - started)
            assert report.unchanged == args.files and report.indexed == 0, report
        print(
            f"re-index of the unchanged tree ({args.files:,} files): "
            f"median {statistics.median(timings):.2f} s, best {min(timings):.2f} s "
            f"(target <= 2 s for 10k)"
        )

        for path in paths[::100]:
            info = path.stat()
            os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000_000))
        started = time.perf_counter()
        report = index_paths(db, embedder, [root])
        print(
            f"after touching {len(paths[::100])} files: {time.perf_counter() - started:.2f} s "
            f"({report.indexed} re-embedded, {report.unchanged:,} unchanged)"
        )


if __name__ == "__main__":
    main()
